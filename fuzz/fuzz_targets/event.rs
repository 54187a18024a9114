//! The completer's event parsing (`etl_callback::event::parse_event`, what `completer::handle`
//! calls first): any bytes EventBridge could deliver. Only a well-formed status change of this
//! project's kind passes; everything else is `MalformedEvent` or `UnexpectedEvent`.
#![no_main]

use etl_callback::event::{parse_event, EventError, EVENT_DETAIL_TYPE, EVENT_SOURCE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The Lambda runtime hands the handler a JSON value; bytes that are no JSON never reach it.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let source = value.get("source").cloned();
    let detail_type = value.get("detail-type").cloned();
    match parse_event(value) {
        Ok(detail) => {
            assert!(!detail.statement_id.trim().is_empty());
            assert_eq!(source.as_ref().and_then(|v| v.as_str()), Some(EVENT_SOURCE));
            assert_eq!(
                detail_type.as_ref().and_then(|v| v.as_str()),
                Some(EVENT_DETAIL_TYPE)
            );
            // What the completer records and logs is one of the three terminal states.
            assert!(["FINISHED", "FAILED", "ABORTED"].contains(&detail.state.as_str()));
        }
        Err(error) => {
            let name = error.name();
            assert!(
                matches!(name, "MalformedEvent" | "UnexpectedEvent"),
                "{name}"
            );
            if let EventError::UnexpectedEvent {
                event_source,
                detail_type,
            } = &error
            {
                assert!(event_source != EVENT_SOURCE || detail_type != EVENT_DETAIL_TYPE);
            }
            assert!(!error.to_string().is_empty());
        }
    }
});
