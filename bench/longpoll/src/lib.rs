//! Benchmark code, not part of the product: the one Lambda of the long-polling baseline that
//! `bench/compare.py` runs next to the callback state machine and the 2021 polling baseline. It is
//! what a data engineer would build in 2026 with the Data API's long polling (`WaitTimeSeconds`,
//! since 2026-07-29): submit the batch, then `DescribeStatement` with `WaitTimeSeconds` in a loop
//! until the statement ends or the invocation's time is nearly up, all inside one synchronous
//! `lambda:invoke` Task. The SQL is the product's: read from the same bucket and prepared by
//! `etl_callback::script::prepare` (the polling baseline's submit code, reused).

pub mod asl;

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The Data API's long-polling range (seconds).
pub const MAX_WAIT_SECONDS: u64 = 30;

/// Kept free at the end of an invocation: the last long poll ends this long before the Lambda's
/// deadline, so the function always answers (with the in-progress status) instead of timing out.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// Step function input (the state machine's `Payload`): the polling baseline's submit input, plus
/// the statement to keep polling when the Choice invokes the function again.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepInput {
    #[serde(flatten)]
    pub submit: polling_baseline::SubmitInput,
    #[serde(default)]
    pub statement_id: Option<String>,
}

/// Step function output: what the Choice reads, and the Data API calls this invocation made.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StepOutput {
    pub statement_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `BatchExecuteStatement` calls (0 or 1).
    pub submit_calls: u32,
    /// `DescribeStatement` calls, each with `WaitTimeSeconds`.
    pub describe_calls: u32,
}

/// The `WaitTimeSeconds` of the next long poll with `remaining` time left in the invocation:
/// 30 s, or less near the deadline; `None` when less than a second would be left after the margin
/// (then the invocation answers and the state machine invokes it again).
pub fn next_wait(remaining: Duration) -> Option<i32> {
    let usable = remaining.checked_sub(DEADLINE_MARGIN)?.as_secs();
    (usable >= 1).then(|| usable.min(MAX_WAIT_SECONDS) as i32)
}

/// A statement status that ends the long poll.
pub fn is_terminal(status: &str) -> bool {
    matches!(status, "FINISHED" | "FAILED" | "ABORTED")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_wait_is_30_s_then_shrinks_to_the_deadline() {
        assert_eq!(next_wait(Duration::from_secs(900)), Some(30));
        assert_eq!(next_wait(Duration::from_secs(35)), Some(30));
        assert_eq!(next_wait(Duration::from_millis(20_900)), Some(15));
        assert_eq!(next_wait(Duration::from_secs(6)), Some(1));
        assert_eq!(next_wait(Duration::from_millis(5_999)), None);
        assert_eq!(next_wait(Duration::from_secs(1)), None);
    }

    #[test]
    fn the_first_invocation_has_no_statement_and_a_repeat_has_one() {
        let first: StepInput = serde_json::from_value(json!({
            "step": "LoadItem", "script": "load_item.sql", "scriptsVersion": "0123456789abcdef",
            "runDate": "2021-06-26", "executionName": "run-1"}))
        .unwrap();
        assert_eq!(first.statement_id, None);
        assert_eq!(first.submit.step, "LoadItem");
        let again: StepInput = serde_json::from_value(json!({
            "step": "LoadItem", "script": "load_item.sql", "runDate": "2021-06-26",
            "executionName": "run-1", "statementId": "d9b6c0c9-0747-4bf4-b142-e8883122f766"}))
        .unwrap();
        assert_eq!(
            again.statement_id.as_deref(),
            Some("d9b6c0c9-0747-4bf4-b142-e8883122f766")
        );
        assert!(is_terminal("ABORTED") && !is_terminal("STARTED"));
    }
}
