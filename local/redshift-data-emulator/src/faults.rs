//! Fault injection for tests. Everything is off by default.
//!
//! The active set is read once when a statement is submitted, so flipping faults at run time
//! (admin endpoint `POST /_emulator/faults`) never changes a statement already in flight.
//!
//! A fault set ([`FaultSet`]) is either one [`Faults`] object (the original shape) or
//! `{"rules": [<Faults>, ...]}`: for each submission the FIRST rule whose
//! `statement_name_contains` filter matches applies, and no rule matching means no faults.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

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
    /// Publish the status-change event twice (one extra copy).
    pub duplicate_event: bool,
    /// Publish this many EXTRA copies of the status-change event (N+1 events in all); wins over
    /// `duplicate_event`. 0: `duplicate_event` decides (one extra copy or none).
    pub duplicate_event_count: u32,
    /// Run the statement and publish its event before ExecuteStatement/BatchExecuteStatement
    /// answers with the id (the caller sees the event first).
    pub event_before_response: bool,
    /// Wait this long after the terminal state before publishing the event.
    pub event_delay_ms: u64,
    /// Wait this long before ExecuteStatement/BatchExecuteStatement answers. With
    /// `event_before_response` this makes sure the event has reached its consumer first.
    pub response_delay_ms: u64,
    /// With `response_delay_ms`: the answer goes out as soon as `POST /_emulator/release` names the
    /// statement, at the latest after `response_delay_ms`. A test releases it when what it waits
    /// for has happened (the event recorded by its consumer) instead of sleeping a fixed time.
    pub hold_response: bool,
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
    /// Make the statement FAIL like a SQL error with `Error` = `ERROR: <message>`: every
    /// statement runs, then PostgreSQL raises this message inside the same transaction right
    /// after the last one, so nothing is committed; the last sub-statement is the failing one.
    pub fail_statement: Option<String>,
}

/// The most extra copies `duplicate_event_count` may ask for.
pub const MAX_DUPLICATE_EVENT_COUNT: u32 = 100;

/// A fault set that cannot be applied.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultsError {
    #[error("fail_response_after_submit and reject_response_after_submit exclude each other")]
    ConflictingResponseFaults,
    #[error(
        "response_fault_times needs fail_response_after_submit or reject_response_after_submit"
    )]
    TimesWithoutResponseFault,
    #[error("duplicate_event_count must be at most {MAX_DUPLICATE_EVENT_COUNT}")]
    TooManyDuplicates,
    #[error("fail_statement needs a non-empty message without NUL characters")]
    BadFailMessage,
    #[error("hold_response needs response_delay_ms, the longest the answer is held")]
    HoldWithoutBound,
    #[error("rules[{index}]: {source}")]
    InRule {
        index: usize,
        #[source]
        source: Box<FaultsError>,
    },
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
    /// Whether this fault set's filter matches a statement with this name.
    pub fn matches(&self, statement_name: Option<&str>) -> bool {
        match (&self.statement_name_contains, statement_name) {
            (None, _) => true,
            (Some(needle), Some(name)) => name.contains(needle.as_str()),
            (Some(_), None) => false,
        }
    }

    /// The faults that apply to a statement with this name (all off when the filter does not match).
    pub fn for_statement(&self, statement_name: Option<&str>) -> Faults {
        if self.matches(statement_name) {
            self.clone()
        } else {
            Faults::default()
        }
    }

    /// How many extra copies of the status-change event to publish.
    pub fn extra_event_copies(&self) -> u32 {
        if self.duplicate_event_count > 0 {
            self.duplicate_event_count
        } else {
            u32::from(self.duplicate_event)
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
            (true, true) => return Err(FaultsError::ConflictingResponseFaults),
            (false, false) if self.response_fault_times > 0 => {
                return Err(FaultsError::TimesWithoutResponseFault)
            }
            _ => {}
        }
        if self.duplicate_event_count > MAX_DUPLICATE_EVENT_COUNT {
            return Err(FaultsError::TooManyDuplicates);
        }
        if let Some(message) = &self.fail_statement {
            if message.is_empty() || message.contains('\0') {
                return Err(FaultsError::BadFailMessage);
            }
        }
        if self.hold_response && self.response_delay_ms == 0 {
            return Err(FaultsError::HoldWithoutBound);
        }
        Ok(())
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

/// What `POST /_emulator/faults` and `--faults` accept, and `GET` shows: either one [`Faults`]
/// object (serialized as that object) or an ordered list of rules (serialized as
/// `{"rules": [...]}`), of which the first whose filter matches a statement applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FaultSet {
    Single(Faults),
    Rules { rules: Vec<Faults> },
}

impl Default for FaultSet {
    fn default() -> Self {
        FaultSet::Single(Faults::default())
    }
}

impl From<Faults> for FaultSet {
    fn from(faults: Faults) -> Self {
        FaultSet::Single(faults)
    }
}

impl<'de> Deserialize<'de> for FaultSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        FaultSet::from_value(value).map_err(D::Error::custom)
    }
}

impl FaultSet {
    /// Reads either shape; a rule that cannot be read is named by its index (`rules[3]: ...`).
    fn from_value(value: serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::Object(mut object) if object.contains_key("rules") => {
                let rules = object.remove("rules").unwrap_or_default();
                if let Some(other) = object.keys().next() {
                    return Err(format!(
                        "unknown field `{other}` next to `rules` (a rule set has only `rules`)"
                    ));
                }
                let serde_json::Value::Array(rules) = rules else {
                    return Err("`rules` must be an array of fault objects".into());
                };
                let rules = rules
                    .into_iter()
                    .enumerate()
                    .map(|(index, rule)| {
                        serde_json::from_value::<Faults>(rule)
                            .map_err(|e| format!("rules[{index}]: {e}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(FaultSet::Rules { rules })
            }
            other => serde_json::from_value::<Faults>(other)
                .map(FaultSet::Single)
                .map_err(|e| e.to_string()),
        }
    }

    /// The rules in order (a single object is one rule).
    pub fn rules(&self) -> &[Faults] {
        match self {
            FaultSet::Single(faults) => std::slice::from_ref(faults),
            FaultSet::Rules { rules } => rules,
        }
    }

    pub fn is_off(&self) -> bool {
        self.rules().iter().all(Faults::is_off)
    }

    /// Checks every rule; the first invalid one rejects the whole set (with its index for rules).
    pub fn validate(&self) -> Result<(), FaultsError> {
        match self {
            FaultSet::Single(faults) => faults.validate(),
            FaultSet::Rules { rules } => rules.iter().enumerate().try_for_each(|(index, rule)| {
                rule.validate().map_err(|source| FaultsError::InRule {
                    index,
                    source: Box::new(source),
                })
            }),
        }
    }
}

/// The installed fault set and how often each rule's response fault has hit.
#[derive(Debug, Default)]
pub struct ActiveFaults {
    set: FaultSet,
    response_faults_used: Vec<u32>,
}

impl ActiveFaults {
    pub fn new(set: impl Into<FaultSet>) -> Self {
        let set = set.into();
        Self {
            response_faults_used: vec![0; set.rules().len()],
            set,
        }
    }

    /// The installed set, as posted.
    pub fn faults(&self) -> &FaultSet {
        &self.set
    }

    /// The faults for one new submission: the first matching rule (none: all off), spending one
    /// use of that rule's limited response fault.
    pub fn for_submission(&mut self, statement_name: Option<&str>) -> Faults {
        let Some(index) = self
            .set
            .rules()
            .iter()
            .position(|rule| rule.matches(statement_name))
        else {
            return Faults::default();
        };
        let faults = self.set.rules()[index].clone();
        if faults.response_fault().is_none() || faults.response_fault_times == 0 {
            return faults;
        }
        let Some(used) = self.response_faults_used.get_mut(index) else {
            return faults;
        };
        if *used >= faults.response_fault_times {
            return faults.without_response_fault();
        }
        *used += 1;
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

    fn rule(filter: &str) -> Faults {
        Faults {
            statement_name_contains: Some(filter.into()),
            ..Faults::default()
        }
    }

    #[test]
    fn single_object_still_parses_as_one_set_and_round_trips() {
        let set: FaultSet =
            serde_json::from_str(r#"{"statement_name_contains": "Load", "delay_ms": 5}"#)
                .expect("parse");
        let FaultSet::Single(faults) = &set else {
            panic!("expected a single object, got {set:?}")
        };
        assert_eq!(faults.delay_ms, 5);
        let json = serde_json::to_value(&set).expect("json");
        assert_eq!(json["delay_ms"], 5);
        assert!(json.get("rules").is_none());
        let empty: FaultSet = serde_json::from_str("{}").expect("parse");
        assert!(empty.is_off());
        assert_eq!(empty, FaultSet::default());
    }

    #[test]
    fn rules_parse_and_serialize_in_the_posted_shape() {
        let text = r#"{"rules": [
            {"statement_name_contains": "A", "drop_event": true},
            {"statement_name_contains": "B", "fail_statement": "boom"}
        ]}"#;
        let set: FaultSet = serde_json::from_str(text).expect("parse");
        assert_eq!(set.rules().len(), 2);
        assert_eq!(set.rules()[1].fail_statement.as_deref(), Some("boom"));
        let json = serde_json::to_value(&set).expect("json");
        assert_eq!(json["rules"].as_array().map(Vec::len), Some(2));
        let back: FaultSet = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, set);
    }

    #[test]
    fn unreadable_rule_is_named_by_index() {
        let error =
            serde_json::from_str::<FaultSet>(r#"{"rules": [{"delay_ms": 1}, {"dealy_ms": 1}]}"#)
                .expect_err("unknown field");
        assert!(error.to_string().contains("rules[1]"), "{error}");
        assert!(serde_json::from_str::<FaultSet>(r#"{"rules": {}}"#).is_err());
        assert!(serde_json::from_str::<FaultSet>(r#"{"rules": [], "delay_ms": 1}"#).is_err());
    }

    #[test]
    fn invalid_rule_rejects_the_set_with_its_index() {
        let set = FaultSet::Rules {
            rules: vec![
                rule("A"),
                Faults {
                    fail_response_after_submit: true,
                    reject_response_after_submit: true,
                    ..rule("B")
                },
            ],
        };
        let error = set.validate().expect_err("invalid");
        assert_eq!(
            error,
            FaultsError::InRule {
                index: 1,
                source: Box::new(FaultsError::ConflictingResponseFaults)
            }
        );
        assert!(error.to_string().starts_with("rules[1]: "), "{error}");
    }

    #[test]
    fn first_matching_rule_applies_and_no_match_means_no_faults() {
        let mut active = ActiveFaults::new(FaultSet::Rules {
            rules: vec![
                Faults {
                    delay_ms: 1,
                    ..rule("Load")
                },
                Faults {
                    delay_ms: 2,
                    ..rule("LoadItem")
                },
                Faults {
                    delay_ms: 3,
                    ..rule("Store")
                },
            ],
        });
        assert_eq!(active.for_submission(Some("x/LoadItem")).delay_ms, 1);
        assert_eq!(active.for_submission(Some("x/Store")).delay_ms, 3);
        assert!(active.for_submission(Some("x/Other")).is_off());
        assert!(active.for_submission(None).is_off());
        let mut empty = ActiveFaults::new(FaultSet::Rules { rules: vec![] });
        assert!(empty.for_submission(Some("x")).is_off());
    }

    #[test]
    fn each_rule_counts_its_response_faults_separately() {
        let limited = |filter: &str, times| Faults {
            reject_response_after_submit: true,
            response_fault_times: times,
            ..rule(filter)
        };
        let mut active = ActiveFaults::new(FaultSet::Rules {
            rules: vec![limited("A", 1), limited("B", 2)],
        });
        let hit = |active: &mut ActiveFaults, name| {
            active.for_submission(Some(name)).response_fault().is_some()
        };
        assert!(hit(&mut active, "A"));
        assert!(!hit(&mut active, "A"), "rule 0 is spent");
        assert!(hit(&mut active, "B"), "rule 1 has its own count");
        assert!(hit(&mut active, "B"));
        assert!(!hit(&mut active, "B"));
    }

    #[test]
    fn a_thousand_rules_are_fine() {
        let rules: Vec<Faults> = (0..1000)
            .map(|i| Faults {
                delay_ms: i,
                ..rule(&format!("stmt-{i:04}/"))
            })
            .collect();
        let set = FaultSet::Rules { rules };
        set.validate().expect("valid");
        let mut active = ActiveFaults::new(set);
        assert_eq!(active.for_submission(Some("run/stmt-0999/x")).delay_ms, 999);
    }

    #[test]
    fn duplicate_count_wins_over_the_flag() {
        assert_eq!(Faults::default().extra_event_copies(), 0);
        let flag = Faults {
            duplicate_event: true,
            ..Faults::default()
        };
        assert_eq!(flag.extra_event_copies(), 1);
        let count = Faults {
            duplicate_event_count: 3,
            ..flag
        };
        assert_eq!(count.extra_event_copies(), 3);
        let too_many = Faults {
            duplicate_event_count: MAX_DUPLICATE_EVENT_COUNT + 1,
            ..Faults::default()
        };
        assert_eq!(too_many.validate(), Err(FaultsError::TooManyDuplicates));
    }

    #[test]
    fn a_held_response_needs_its_bound() {
        let unbounded = Faults {
            hold_response: true,
            ..Faults::default()
        };
        assert_eq!(unbounded.validate(), Err(FaultsError::HoldWithoutBound));
        let bounded = Faults {
            response_delay_ms: 3000,
            ..unbounded
        };
        assert_eq!(bounded.validate(), Ok(()));
    }

    #[test]
    fn fail_statement_needs_a_message() {
        for bad in ["", "a\0b"] {
            let faults = Faults {
                fail_statement: Some(bad.into()),
                ..Faults::default()
            };
            assert_eq!(faults.validate(), Err(FaultsError::BadFailMessage));
        }
        let ok = Faults {
            fail_statement: Some("it's 100% $$ broken".into()),
            ..Faults::default()
        };
        assert_eq!(ok.validate(), Ok(()));
    }
}
