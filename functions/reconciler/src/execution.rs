//! What Step Functions says about an execution (`DescribeExecution`), and its ARN.
//!
//! A closed task token is not a stopped run: a Task attempt that failed after storing its token
//! (`Lambda.ServiceException`, a crash, a timeout) is retried, and the retry re-attaches to the
//! same statement with a new token. So before the reconciler cancels a statement because its token
//! is closed, or gives back an execution's run lock slot on an execution-ended event (which may
//! be late: the execution may have been redriven since), it asks here whether the execution still
//! runs.

use std::error::Error as StdError;

use aws_sdk_sfn::types::ExecutionStatus;
use etl_callback::throttle::Throttling;
use thiserror::Error;

type BoxError = Box<dyn StdError + Send + Sync>;

/// What Step Functions says about an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionState {
    /// RUNNING, or PENDING_REDRIVE (about to run again): not ended.
    Live(String),
    /// SUCCEEDED, FAILED, TIMED_OUT, ABORTED (or a status this build does not know): ended.
    Ended(String),
    /// `ExecutionDoesNotExist` (never started, or its history expired): ended.
    DoesNotExist,
}

impl ExecutionState {
    /// The status for logs and the item's `executionStatus`; empty when it does not exist.
    pub fn status(&self) -> &str {
        match self {
            Self::Live(status) | Self::Ended(status) => status,
            Self::DoesNotExist => "",
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, Self::Live(_))
    }
}

/// `DescribeExecution`'s answer, the parts the reconciler decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub state: ExecutionState,
    /// `redriveDate` in epoch seconds: when the execution was last redriven; `None` if never.
    pub redriven_at: Option<i64>,
    /// `redriveCount`: how often it was redriven (0 if never), the attempt that runs or ran last.
    pub redrive_count: u32,
}

#[derive(Debug, Error)]
pub enum DescribeError {
    #[error("Step Functions throttled DescribeExecution")]
    Throttled(#[source] BoxError),
    #[error("DescribeExecution failed")]
    Failed(#[source] BoxError),
}

impl DescribeError {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Throttled(_) => "DescribeExecutionThrottled",
            Self::Failed(_) => "DescribeExecutionFailed",
        }
    }

    /// Throttling (or a timeout): skipped this round, the next scheduled run asks again.
    pub fn is_throttling(&self) -> bool {
        matches!(self, Self::Throttled(_))
    }
}

/// `DescribeExecution` of `execution_arn`.
pub async fn describe(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<Execution, DescribeError> {
    match sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
    {
        Ok(out) => Ok(Execution {
            state: match out.status() {
                ExecutionStatus::Running | ExecutionStatus::PendingRedrive => {
                    ExecutionState::Live(out.status().as_str().to_owned())
                }
                status => ExecutionState::Ended(status.as_str().to_owned()),
            },
            redriven_at: out.redrive_date().map(|date| date.secs()),
            redrive_count: out
                .redrive_count()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
        }),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_execution_does_not_exist()) =>
        {
            Ok(Execution {
                state: ExecutionState::DoesNotExist,
                redriven_at: None,
                redrive_count: 0,
            })
        }
        Err(err) => {
            if Throttling::STEP_FUNCTIONS_DESCRIBE.matches(&err) {
                Err(DescribeError::Throttled(Box::new(err)))
            } else {
                Err(DescribeError::Failed(Box::new(err)))
            }
        }
    }
}

/// The pipeline an execution ran: the `lineage.pipeline` of its definition's SQL Tasks (the
/// generator puts `lineage: {pipeline, reads, writes}` into every step's payload), read with
/// `DescribeStateMachineForExecution` (the definition that execution ran, also after a
/// redeploy). `None` when the definition names none.
pub async fn pipeline_of(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<Option<String>, BoxError> {
    let out = sfn
        .describe_state_machine_for_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(|err| Box::new(err) as BoxError)?;
    Ok(pipeline_in_definition(out.definition()))
}

/// The first `lineage.pipeline` string in an Amazon States Language definition.
pub fn pipeline_in_definition(definition: &str) -> Option<String> {
    fn find(value: &serde_json::Value) -> Option<&str> {
        match value {
            serde_json::Value::Object(fields) => fields
                .get("lineage")
                .and_then(|l| l.get("pipeline"))
                .and_then(serde_json::Value::as_str)
                .filter(|p| !p.is_empty())
                .or_else(|| fields.values().find_map(find)),
            serde_json::Value::Array(items) => items.iter().find_map(find),
            _ => None,
        }
    }
    let definition: serde_json::Value = serde_json::from_str(definition).ok()?;
    find(&definition).map(str::to_owned)
}

/// A Standard state machine's ARN, `arn:<partition>:states:<region>:<account>:stateMachine:<name>`
/// (not a version or alias ARN): the name, or `None` when `arn` is not one.
pub fn state_machine_name(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "states", region, account, "stateMachine", name]
            if !partition.is_empty()
                && !region.is_empty()
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && !name.is_empty()
                && name.chars().count() <= 80
                && arn.chars().all(|c| c.is_ascii_graphic()) =>
        {
            Some(name)
        }
        _ => None,
    }
}

/// The ARN of execution `name` of the Standard state machine `state_machine_arn`:
/// `arn:…:execution:<state machine name>:<execution name>`.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    let prefix = state_machine_arn
        .rsplit_once(":stateMachine:")
        .map_or(state_machine_arn, |(prefix, _)| prefix);
    let machine = state_machine_name(state_machine_arn).unwrap_or_default();
    format!("{prefix}:execution:{machine}:{name}")
}

/// The state machine ARN and execution name an execution ARN names, when it is one.
pub fn split_execution_arn(arn: &str) -> Option<(String, &str)> {
    let parts: Vec<&str> = arn.splitn(8, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "states", region, account, "execution", machine, name]
            if !name.is_empty() && !name.contains(':') =>
        {
            let state_machine =
                format!("arn:{partition}:states:{region}:{account}:stateMachine:{machine}");
            let valid = state_machine_name(&state_machine).is_some();
            valid.then_some((state_machine, *name))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:etl-etl";

    #[test]
    fn an_execution_arn_is_built_from_the_state_machine_arn_and_split_back() {
        let arn = execution_arn(MACHINE, "daily-2021.06.26-日本");
        assert_eq!(
            arn,
            "arn:aws:states:us-east-1:123456789012:execution:etl-etl:daily-2021.06.26-日本"
        );
        assert_eq!(
            split_execution_arn(&arn),
            Some((MACHINE.to_owned(), "daily-2021.06.26-日本"))
        );
        let china = "arn:aws-cn:states:cn-north-1:123456789012:stateMachine:m";
        assert_eq!(
            execution_arn(china, "x"),
            "arn:aws-cn:states:cn-north-1:123456789012:execution:m:x"
        );
    }

    #[test]
    fn the_pipeline_is_read_from_the_generated_definition() {
        let asl = include_str!("../../../statemachine/etl.asl.json");
        assert_eq!(pipeline_in_definition(asl).as_deref(), Some("SalesEtl"));
        assert_eq!(
            pipeline_in_definition(r#"{"States": {"A": {"Type": "Pass"}}}"#),
            None
        );
        assert_eq!(pipeline_in_definition("not json"), None);
    }

    #[test]
    fn only_standard_state_machine_arns_are_state_machine_arns() {
        assert_eq!(state_machine_name(MACHINE), Some("etl-etl"));
        for bad in [
            "",
            "etl-etl",
            "arn:aws:states:us-east-1:123456789012:stateMachine:",
            "arn:aws:states:us-east-1:123456789012:stateMachine:etl:1",
            "arn:aws:states:us-east-1:123456789012:execution:etl:run",
            "arn:aws:lambda:us-east-1:123456789012:stateMachine:etl",
            "arn:aws:states:us-east-1:1234:stateMachine:etl",
            "arn:aws:states:us-east-1:123456789012:stateMachine:e tl",
        ] {
            assert_eq!(state_machine_name(bad), None, "{bad}");
        }
        for bad in [
            MACHINE,
            "arn:aws:states:us-east-1:123456789012:execution:etl-etl:",
            "arn:aws:states:us-east-1:123456789012:execution:etl-etl:a:b",
            "arn:aws:states:us-east-1:123456789012:express:etl-etl:a:b",
        ] {
            assert_eq!(split_execution_arn(bad), None, "{bad}");
        }
    }
}
