//! Fault injection for tests. Everything is off by default.
//!
//! The active set is read once when a statement is submitted, so flipping faults at run time
//! (admin endpoint `POST /_emulator/faults`) never changes a statement already in flight.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Restrict every fault below to statements whose StatementName contains this text
    /// (statements without a name never match a filter). `None`: all statements.
    pub statement_name_contains: Option<String>,
    /// Keep the statement SUBMITTED this long before it runs (CancelStatement still works).
    pub delay_ms: u64,
    /// Do not publish the status-change event at all.
    pub drop_event: bool,
    /// Publish the status-change event twice.
    pub duplicate_event: bool,
    /// Run the statement and publish its event before ExecuteStatement/BatchExecuteStatement
    /// answers with the id (the caller sees the event first).
    pub event_before_response: bool,
    /// Wait this long after the terminal state before publishing the event.
    pub event_delay_ms: u64,
    /// Wait this long before ExecuteStatement/BatchExecuteStatement answers. With
    /// `event_before_response` this makes sure the event has reached its consumer first.
    pub response_delay_ms: u64,
}

impl Faults {
    /// The faults that apply to a statement with this name (all off when the filter does not match).
    pub fn for_statement(&self, statement_name: Option<&str>) -> Faults {
        let applies = match (&self.statement_name_contains, statement_name) {
            (None, _) => true,
            (Some(needle), Some(name)) => name.contains(needle.as_str()),
            (Some(_), None) => false,
        };
        if applies {
            self.clone()
        } else {
            Faults::default()
        }
    }

    pub fn is_off(&self) -> bool {
        *self == Faults::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_all_off() {
        let faults: Faults = serde_json::from_str("{}").expect("parse");
        assert!(faults.is_off());
    }

    #[test]
    fn filter_limits_faults_to_matching_statement_names() {
        let faults = Faults {
            statement_name_contains: Some("LoadItem".into()),
            delay_ms: 500,
            ..Faults::default()
        };
        assert_eq!(
            faults.for_statement(Some("stack/exec/LoadItem")).delay_ms,
            500
        );
        assert!(faults.for_statement(Some("stack/exec/LoadStore")).is_off());
        assert!(faults.for_statement(None).is_off());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<Faults>(r#"{"dealy_ms": 1}"#).is_err());
    }
}
