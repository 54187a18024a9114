//! The limits the code derives its leases and TTL from, checked against what `template.yaml` and
//! the state machine actually set: a change to a function's `Timeout`, a step limit or an event's
//! retry window that breaks a relation fails here (docs/how-it-works.md, "Correct under failure").
//!
//! The template is read with a small indentation parser (mappings and `- ` list items, enough for
//! the keys looked up here), so the check needs no YAML crate and ignores CloudFormation tags.

use std::collections::BTreeMap;
use std::path::Path;

use etl_callback::aws;
use etl_callback::store::{
    claim_seconds, ASYNC_RETRY_DELAY_SECONDS, CLAIM_MARGIN_SECONDS, CLAIM_WINDOW_SECONDS,
    LATE_EVENT_SECONDS, MAX_WAIT_SECONDS, TOKEN_TTL_SECONDS,
};

/// Every `key: value` of the template by its path (`Resources/X/Properties/Timeout`); a `- `
/// list item is the path segment `-`.
struct Template(BTreeMap<String, String>);

fn template_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml"))
        .expect("template.yaml")
}

impl Template {
    fn read() -> Self {
        Self::parse(&template_text())
    }

    fn parse(text: &str) -> Self {
        let mut values = BTreeMap::new();
        let mut stack: Vec<(usize, String)> = Vec::new();
        let mut block: Option<usize> = None; // inside a `>-` / `|` scalar indented deeper than this
        for raw in text.lines() {
            let indent = raw.len() - raw.trim_start().len();
            let line = raw.trim();
            if let Some(level) = block {
                if line.is_empty() || indent > level {
                    continue;
                }
                block = None;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (indent, line) = match line.strip_prefix("- ") {
                Some(rest) => {
                    stack.retain(|(i, _)| *i < indent);
                    stack.push((indent, "-".to_owned()));
                    (indent + 2, rest.trim())
                }
                None => (indent, line),
            };
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim().trim_matches('"').to_owned();
            let value = value.split(" #").next().unwrap_or("").trim();
            stack.retain(|(i, _)| *i < indent);
            stack.push((indent, key));
            let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
            if matches!(value, ">-" | ">" | "|" | "|-") {
                block = Some(indent);
            } else if !value.is_empty() {
                values.insert(path.join("/"), value.trim_matches('"').to_owned());
            }
        }
        Self(values)
    }

    fn get(&self, path: &str) -> Option<&str> {
        self.0.get(path).map(String::as_str)
    }

    fn number(&self, path: &str) -> i64 {
        self.get(path)
            .unwrap_or_else(|| panic!("template.yaml has no {path}"))
            .parse()
            .unwrap_or_else(|_| panic!("{path} is not a whole number"))
    }

    fn functions(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(path, value)| {
                path.starts_with("Resources/")
                    && path.ends_with("/Type")
                    && path.matches('/').count() == 2
                    && value.as_str() == "AWS::Serverless::Function"
            })
            .map(|(path, _)| path.split('/').nth(1).unwrap().to_owned())
            .collect()
    }

    /// A function's property, or the Globals' when it sets none (as SAM merges them).
    fn function_value(&self, function: &str, property: &str) -> Option<&str> {
        self.get(&format!("Resources/{function}/Properties/{property}"))
            .or_else(|| self.get(&format!("Globals/Function/{property}")))
    }
}

#[test]
fn the_parser_reads_the_template() {
    let template = Template::read();
    let functions = template.functions();
    for name in [
        "SubmitterFunction",
        "CompleterFunction",
        "ReconcilerFunction",
    ] {
        assert!(functions.iter().any(|f| f == name), "{functions:?}");
    }
    assert_eq!(
        template.get("Globals/Function/Runtime"),
        Some("provided.al2023")
    );
}

/// What breaks the claim lease's relations to the functions' timeouts, one line each.
fn lease_problems(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for function in template.functions() {
        let Some(timeout) = template.function_value(&function, "Timeout") else {
            problems.push(format!("{function} has no Timeout"));
            continue;
        };
        // The lease is derived from what the function is told, which must be its Timeout.
        let told =
            template.function_value(&function, "Environment/Variables/FUNCTION_TIMEOUT_SECONDS");
        if told != Some(timeout) {
            problems.push(format!(
                "{function}: Timeout {timeout} but FUNCTION_TIMEOUT_SECONDS {told:?}"
            ));
        }
        let timeout: i64 = timeout.parse().expect("a whole number of seconds");
        let lease = claim_seconds(Some(timeout));
        // One invocation holds a claim no longer than it runs, nor longer than its SDK calls take.
        let longest_hold = timeout.min(CLAIM_WINDOW_SECONDS);
        if lease < longest_hold + CLAIM_MARGIN_SECONDS {
            problems.push(format!(
                "{function}: lease {lease} s, but a holder may take {longest_hold} s"
            ));
        }
        // The completer and the reconciler are invoked asynchronously: the retry of a holder that
        // died must find its claim expired.
        if lease >= ASYNC_RETRY_DELAY_SECONDS {
            problems.push(format!(
                "{function}: lease {lease} s is not shorter than Lambda's {ASYNC_RETRY_DELAY_SECONDS} s retry delay"
            ));
        }
        // A holder that runs into every SDK timeout still ends (and gives its claim back) before
        // Lambda ends the invocation; a stalled call fails with its own timeout, not Lambda's.
        if timeout < CLAIM_WINDOW_SECONDS || timeout <= aws::LONGEST_OPERATION_SECONDS as i64 {
            problems.push(format!(
                "{function}: Timeout {timeout} s is shorter than the {CLAIM_WINDOW_SECONDS} s the SDK timeouts allow under a claim"
            ));
        }
    }
    problems
}

#[test]
fn the_claim_lease_fits_every_functions_timeout() {
    assert_eq!(lease_problems(&Template::read()), Vec::<String>::new());
}

#[test]
fn a_timeout_the_lease_does_not_know_or_an_sdk_window_it_cannot_cover_is_found() {
    let cases: [(&[(&str, &str)], &str); 2] = [
        // The reconciler's Timeout changed without telling it.
        (
            &[("      Timeout: 60\n", "      Timeout: 120\n")],
            "ReconcilerFunction: Timeout 120 but FUNCTION_TIMEOUT_SECONDS",
        ),
        // Every function shorter than the SDK window (and told so).
        (
            &[
                ("    Timeout: 30\n", "    Timeout: 20\n"),
                (
                    "FUNCTION_TIMEOUT_SECONDS: \"30\"",
                    "FUNCTION_TIMEOUT_SECONDS: \"20\"",
                ),
            ],
            "CompleterFunction: Timeout 20 s is shorter than the 30 s",
        ),
    ];
    for (edits, expected) in cases {
        let mut broken = template_text();
        for (from, to) in edits {
            assert_eq!(broken.matches(from).count(), 1, "{from:?}");
            broken = broken.replace(from, to);
        }
        let problems = lease_problems(&Template::parse(&broken));
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{expected}: {problems:?}"
        );
    }
}

/// What breaks the submitter's relation to its wait: the template's `SubmitWaitSeconds` reaches
/// the submitter, cannot ask the Data API for more than it allows, and the submitter's `Timeout`
/// covers the longest wait on top of the SDK window every function covers.
fn submit_wait_problems(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let max_wait = template.number("Parameters/SubmitWaitSeconds/MaxValue");
    if max_wait > aws::REDSHIFT_DATA_MAX_WAIT_SECONDS as i64 {
        problems.push(format!(
            "SubmitWaitSeconds MaxValue {max_wait} is more than the Data API's {} s",
            aws::REDSHIFT_DATA_MAX_WAIT_SECONDS
        ));
    }
    if template.number("Parameters/SubmitWaitSeconds/MinValue") != 0 {
        problems.push("SubmitWaitSeconds must allow 0 (no wait)".to_owned());
    }
    let told = template.function_value(
        "SubmitterFunction",
        "Environment/Variables/SUBMIT_WAIT_SECONDS",
    );
    if told != Some("!Ref SubmitWaitSeconds") {
        problems.push(format!(
            "SubmitterFunction: SUBMIT_WAIT_SECONDS is {told:?}, not !Ref SubmitWaitSeconds"
        ));
    }
    let timeout: i64 = template
        .function_value("SubmitterFunction", "Timeout")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let needed =
        CLAIM_WINDOW_SECONDS + aws::submit_wait_extra_seconds(max_wait.max(0) as u64) as i64;
    if timeout < needed {
        problems.push(format!(
            "SubmitterFunction: Timeout {timeout} s is shorter than the {needed} s a submit waiting \
             {max_wait} s may take (the {CLAIM_WINDOW_SECONDS} s SDK window under a claim, the wait, \
             and the plain submit a failed wait falls back to)"
        ));
    }
    problems
}

#[test]
fn the_submitters_timeout_covers_its_longest_wait() {
    let template = Template::read();
    assert_eq!(submit_wait_problems(&template), Vec::<String>::new());
    // The wait happens before any claim is taken: the lease stays what the SDK window needs.
    let timeout: i64 = template
        .function_value("SubmitterFunction", "Timeout")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        claim_seconds(Some(timeout)),
        CLAIM_WINDOW_SECONDS + CLAIM_MARGIN_SECONDS
    );
    // The default wait is the one `make bench` measured and docs/benchmarks.md explains ("The
    // submitter's wait: the default"): 1 s, within 5% of the callback design's cost at every length.
    assert_eq!(
        template.get("Parameters/SubmitWaitSeconds/Default"),
        Some("1")
    );
}

#[test]
fn a_submit_wait_the_submitters_timeout_or_the_data_api_cannot_cover_is_found() {
    let cases: [(&str, &str, &str); 3] = [
        (
            "    MaxValue: 30\n    Description: >-\n      How long the submitter waits",
            "    MaxValue: 31\n    Description: >-\n      How long the submitter waits",
            "SubmitWaitSeconds MaxValue 31 is more than",
        ),
        (
            "      Timeout: 70\n",
            "      Timeout: 60\n",
            "SubmitterFunction: Timeout 60 s is shorter than the 70 s",
        ),
        (
            "SUBMIT_WAIT_SECONDS: !Ref SubmitWaitSeconds",
            "SUBMIT_WAIT_SECONDS: \"5\"",
            "SubmitterFunction: SUBMIT_WAIT_SECONDS is Some(\"5\")",
        ),
    ];
    for (from, to, expected) in cases {
        let text = template_text();
        assert_eq!(text.matches(from).count(), 1, "{from:?}");
        let problems = submit_wait_problems(&Template::parse(&text.replace(from, to)));
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{expected}: {problems:?}"
        );
    }
}

#[test]
fn the_token_ttl_is_derived_from_the_step_limits_in_one_place() {
    let template = Template::read();
    let text = template_text();
    assert!(
        !text.contains("TOKEN_TTL_SECONDS:"),
        "template.yaml sets TOKEN_TTL_SECONDS; it is derived (etl_callback::store::TOKEN_TTL_SECONDS)"
    );
    // The longest wait is the execution's own timeout, and no step may be given more.
    let asl: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../statemachine/etl.asl.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(asl["TimeoutSeconds"].as_i64(), Some(MAX_WAIT_SECONDS));
    assert_eq!(
        template.number("Parameters/StepTimeoutSeconds/MaxValue"),
        MAX_WAIT_SECONDS
    );
    assert!(template.number("Parameters/StepHeartbeatSeconds/MaxValue") < MAX_WAIT_SECONDS);
    // A late event: EventBridge's retries to the completer, then Lambda's asynchronous retries.
    let eventbridge = template.number(
        "Resources/StatementStatusChangeRule/Properties/Targets/-/RetryPolicy/MaximumEventAgeInSeconds",
    );
    let lambda = template.number(
        "Resources/CompleterFunction/Properties/EventInvokeConfig/MaximumEventAgeInSeconds",
    );
    assert_eq!(LATE_EVENT_SECONDS, eventbridge + lambda);
    assert_eq!(TOKEN_TTL_SECONDS, MAX_WAIT_SECONDS + LATE_EVENT_SECONDS);
}
