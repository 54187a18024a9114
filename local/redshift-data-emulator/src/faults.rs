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
    /// Submit and run the statement normally, then answer ExecuteStatement /
    /// BatchExecuteStatement with HTTP 500 `InternalServerException`. SDKs retry 5xx answers
    /// (with the same `ClientToken`, so the retry gets the statement already started).
    pub fail_response_after_submit: bool,
    /// Submit and run the statement normally, then answer with HTTP 400 `ValidationException`
    /// ("injected fault"), which SDKs do not retry: the caller fails although its statement runs.
    pub reject_response_after_submit: bool,
    /// How many matching submissions the two response faults above hit, counted from when the
    /// fault set was set; then they are spent. 0: every matching submission.
    pub response_fault_times: u32,
}

/// A fault set that cannot be applied.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultsError {
    #[error("fail_response_after_submit and reject_response_after_submit exclude each other")]
    ConflictingResponseFaults,
    #[error(
        "response_fault_times needs fail_response_after_submit or reject_response_after_submit"
    )]
    TimesWithoutResponseFault,
}

/// How the answer to a submission is replaced after the statement was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFault {
    /// HTTP 500 `InternalServerException` (retried by SDKs).
    InternalServerError,
    /// HTTP 400 `ValidationException` (not retried).
    Validation,
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

    /// Checks a fault set before it is installed.
    pub fn validate(&self) -> Result<(), FaultsError> {
        match (
            self.fail_response_after_submit,
            self.reject_response_after_submit,
        ) {
            (true, true) => Err(FaultsError::ConflictingResponseFaults),
            (false, false) if self.response_fault_times > 0 => {
                Err(FaultsError::TimesWithoutResponseFault)
            }
            _ => Ok(()),
        }
    }

    /// The response fault of this (already filtered) set, if any.
    pub fn response_fault(&self) -> Option<ResponseFault> {
        if self.reject_response_after_submit {
            Some(ResponseFault::Validation)
        } else if self.fail_response_after_submit {
            Some(ResponseFault::InternalServerError)
        } else {
            None
        }
    }

    fn without_response_fault(mut self) -> Faults {
        self.fail_response_after_submit = false;
        self.reject_response_after_submit = false;
        self.response_fault_times = 0;
        self
    }
}

/// The installed fault set and how often its response fault has hit.
#[derive(Debug, Default)]
pub struct ActiveFaults {
    faults: Faults,
    response_faults_used: u32,
}

impl ActiveFaults {
    pub fn new(faults: Faults) -> Self {
        Self {
            faults,
            response_faults_used: 0,
        }
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The faults for one new submission, spending one use of a limited response fault.
    pub fn for_submission(&mut self, statement_name: Option<&str>) -> Faults {
        let faults = self.faults.for_statement(statement_name);
        if faults.response_fault().is_none() || faults.response_fault_times == 0 {
            return faults;
        }
        if self.response_faults_used >= faults.response_fault_times {
            return faults.without_response_fault();
        }
        self.response_faults_used += 1;
        faults
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
    fn limited_response_fault_hits_matching_submissions_then_is_spent() {
        let mut active = ActiveFaults::new(Faults {
            statement_name_contains: Some("Load".into()),
            reject_response_after_submit: true,
            response_fault_times: 2,
            delay_ms: 5,
            ..Faults::default()
        });
        assert_eq!(active.for_submission(Some("Other")).response_fault(), None);
        for _ in 0..2 {
            assert_eq!(
                active.for_submission(Some("x/Load")).response_fault(),
                Some(ResponseFault::Validation)
            );
        }
        let spent = active.for_submission(Some("x/Load"));
        assert_eq!(spent.response_fault(), None);
        assert_eq!(spent.delay_ms, 5, "other faults stay on");
    }

    #[test]
    fn unlimited_response_fault_hits_every_time() {
        let mut active = ActiveFaults::new(Faults {
            fail_response_after_submit: true,
            ..Faults::default()
        });
        for _ in 0..5 {
            assert_eq!(
                active.for_submission(None).response_fault(),
                Some(ResponseFault::InternalServerError)
            );
        }
    }

    #[test]
    fn contradictory_response_faults_are_rejected() {
        let both = Faults {
            fail_response_after_submit: true,
            reject_response_after_submit: true,
            ..Faults::default()
        };
        assert_eq!(both.validate(), Err(FaultsError::ConflictingResponseFaults));
        let times_only = Faults {
            response_fault_times: 1,
            ..Faults::default()
        };
        assert_eq!(
            times_only.validate(),
            Err(FaultsError::TimesWithoutResponseFault)
        );
        assert_eq!(Faults::default().validate(), Ok(()));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<Faults>(r#"{"dealy_ms": 1}"#).is_err());
    }
}
