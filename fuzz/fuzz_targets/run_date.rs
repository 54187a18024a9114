//! The run date (`RunDate::parse`, `RunDate::resolve`): a run date that passes is a calendar
//! date in 1900-9999 whose only text is `YYYY-MM-DD` (so its SQL literal is safe); anything else
//! is a named error echoing the value.
#![no_main]

use etl_callback::run_date::{RunDate, RunDateError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Run dates and start times arrive as JSON strings: always UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RunDate::parse(text) {
        Ok(date) => {
            assert_eq!(date.to_string(), text);
            assert_eq!(date.sql_literal(), format!("'{text}'"));
            let year: i32 = text[..4].parse().unwrap();
            assert!((1900..=9999).contains(&year));
        }
        Err(error) => {
            match &error {
                RunDateError::NotADate { value } | RunDateError::OutOfRange { value } => {
                    assert_eq!(value, text)
                }
                RunDateError::BadStartTime { .. } | RunDateError::StartTimeOutOfRange { .. } => {
                    panic!("parse reports a start time")
                }
            }
            assert!(error.is_given_date());
            let _ = error.from_origin("s3://bucket/key");
        }
    }
    // The same text as the execution start time (no run date given).
    match RunDate::resolve(None, text) {
        Ok(date) => {
            let shown = date.to_string();
            assert_eq!(RunDate::parse(&shown), Ok(date), "{text:?} gave {shown}");
        }
        Err(error) => {
            assert!(
                matches!(
                    error,
                    RunDateError::BadStartTime { .. } | RunDateError::StartTimeOutOfRange { .. }
                ),
                "{error:?}"
            );
            assert!(!error.is_given_date());
        }
    }
});
