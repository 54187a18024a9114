//! The run lock of a redriven attempt.
//!
//! A redrive continues a failed execution from its unsuccessful state, and succeeded states are
//! not run again (<https://docs.aws.amazon.com/step-functions/latest/dg/redrive-executions.html>):
//! `AcquireRunLock`, which succeeded in the first attempt, does not run again, and the failed
//! attempt's slot was given back when it ended (the reconciler, on its execution-ended event or
//! the schedule). So before a redriven attempt (`$$.Execution.RedriveCount` > 0) submits anything,
//! the submitter makes sure the attempt holds a slot: it takes one under the attempt's own
//! `holders` element ([`etl_callback::task::run_lock_holder`]) with the state machine's condition
//! (`size(holders) < RunConcurrency`, or already a member), and fails with `RunLockTaken` while
//! the lock is full; the Task's `Retry` waits and tries again like `AcquireRunLock`'s. Every step
//! of the redriven attempt passes here; after the first, the attempt is a member already and the
//! call changes nothing. The state machine's `ReleaseRunLock` gives the slot back when the
//! pipeline succeeds; when the redriven attempt fails again, the reconciler does, as for any run.
//!
//! First attempts are not touched here: they took their slot in `AcquireRunLock`.

use aws_sdk_dynamodb::types::AttributeValue;
use etl_callback::config::Vars;
use etl_callback::task::run_lock_holder;
use etl_callback::throttle::Throttling;
use thiserror::Error;

/// The lock item's key attribute and its string set of holders (as the state machine writes them).
pub const LOCK_KEY: &str = "lockName";
/// The take: what `AcquireRunLock` does, under the attempt's own element.
pub const ACQUIRE_EXPRESSION: &str = "ADD holders :me";
pub const ACQUIRE_CONDITION: &str =
    "attribute_not_exists(holders) OR contains(holders, :id) OR size(holders) < :limit";
/// The elements of the execution's earlier attempts, which are over: removed first, so that a slot
/// the reconciler has not given back yet does not keep this attempt waiting for itself.
pub const DROP_EARLIER_EXPRESSION: &str = "DELETE holders :earlier";
pub const DROP_EARLIER_CONDITION: &str = "attribute_exists(holders)";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `RUN_LOCK_TABLE`, `RUN_LOCK_NAME` and `RUN_CONCURRENCY`: the lock a redriven attempt takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLockSettings {
    pub table: String,
    pub name: String,
    pub concurrency: usize,
}

impl RunLockSettings {
    /// Unset `RUN_LOCK_TABLE`: no run lock (nothing to take). Set, the other two are required.
    pub fn read<F: Fn(&str) -> Option<String>>(vars: &mut Vars<F>) -> Option<Self> {
        let table = vars.optional("RUN_LOCK_TABLE")?;
        let name = vars.required("RUN_LOCK_NAME");
        let concurrency = vars.optional("RUN_CONCURRENCY").map(|v| v.parse::<usize>());
        let concurrency = match concurrency {
            Some(Ok(n)) if (1..=100).contains(&n) => n,
            _ => {
                vars.problem("RUN_CONCURRENCY must be set with RUN_LOCK_TABLE: a whole number from 1 to 100 (the template's RunConcurrency)");
                1
            }
        };
        Some(Self {
            table,
            name,
            concurrency,
        })
    }
}

#[derive(Debug, Error)]
pub enum RunLockError {
    #[error("the run lock {lock} is full: RunConcurrency ({limit}) runs hold it; this redriven run waits for a slot before it submits anything")]
    Taken { lock: String, limit: usize },
    #[error("DynamoDB throttled the run lock request")]
    Throttled(#[source] BoxError),
    #[error("the run lock request failed")]
    Failed(#[source] BoxError),
}

impl RunLockError {
    /// The stable error name: the SQL Tasks retry `RunLockTaken` like `AcquireRunLock` retries a
    /// full lock, and `RunLockThrottled` with the other throttling errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Taken { .. } => "RunLockTaken",
            Self::Throttled(_) => "RunLockThrottled",
            Self::Failed(_) => "RunLockFailed",
        }
    }
}

/// Makes sure attempt `redrive` (> 0) of execution `execution_arn` holds a slot of the lock.
pub async fn hold(
    dynamodb: &aws_sdk_dynamodb::Client,
    settings: &RunLockSettings,
    execution_arn: &str,
    redrive: u32,
) -> Result<(), RunLockError> {
    let key = AttributeValue::S(settings.name.clone());
    let earlier: Vec<String> = (0..redrive)
        .map(|attempt| run_lock_holder(execution_arn, attempt))
        .collect();
    let dropped = dynamodb
        .update_item()
        .table_name(&settings.table)
        .key(LOCK_KEY, key.clone())
        .update_expression(DROP_EARLIER_EXPRESSION)
        .condition_expression(DROP_EARLIER_CONDITION)
        .expression_attribute_values(":earlier", AttributeValue::Ss(earlier))
        .send()
        .await;
    match dropped {
        Ok(_) => {}
        // No holders at all: nothing to drop.
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
        Err(err) => return Err(classify(err)),
    }
    let me = run_lock_holder(execution_arn, redrive);
    let taken = dynamodb
        .update_item()
        .table_name(&settings.table)
        .key(LOCK_KEY, key)
        .update_expression(ACQUIRE_EXPRESSION)
        .condition_expression(ACQUIRE_CONDITION)
        .expression_attribute_values(":me", AttributeValue::Ss(vec![me.clone()]))
        .expression_attribute_values(":id", AttributeValue::S(me))
        .expression_attribute_values(
            ":limit",
            AttributeValue::N(settings.concurrency.to_string()),
        )
        .send()
        .await;
    match taken {
        Ok(_) => Ok(()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Err(RunLockError::Taken {
                lock: settings.name.clone(),
                limit: settings.concurrency,
            })
        }
        Err(err) => Err(classify(err)),
    }
}

fn classify<E, R>(err: aws_sdk_dynamodb::error::SdkError<E, R>) -> RunLockError
where
    E: etl_callback::throttle::ThrottlingVariants + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if Throttling::RUN_LOCK.matches(&err) {
        RunLockError::Throttled(Box::new(err))
    } else {
        RunLockError::Failed(Box::new(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The take is the state machine's `AcquireRunLock`, under another element: one lock, one rule.
    #[test]
    fn the_take_is_the_state_machine_s_acquire_run_lock() {
        let asl: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../statemachine/etl.asl.json"
        )))
        .unwrap();
        let acquire = &asl["States"]["AcquireRunLock"]["Parameters"];
        assert_eq!(acquire["UpdateExpression"], ACQUIRE_EXPRESSION);
        assert_eq!(acquire["ConditionExpression"], ACQUIRE_CONDITION);
        assert_eq!(acquire["Key"][LOCK_KEY]["S"], "${RunLockName}");
    }
}
