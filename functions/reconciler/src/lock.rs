//! The run lock (the Step Functions semaphore pattern): one DynamoDB item per pipeline whose string
//! set `holders` holds the ARN of every execution that has a slot; the set's size is the count, so
//! the two cannot drift, and adding or deleting an element twice changes nothing (a retried
//! acquire or release counts once). The state machine acquires and releases it through its direct
//! DynamoDB integration (`ADD holders :me` while `size(holders) < RunConcurrency` or it is already
//! a member; `DELETE holders :me`); the reconciler releases what a run that ended without its
//! release step left behind:
//!
//! - when its execution-ended event arrives ([`RunLock::release`]);
//! - on the schedule, for every holder whose execution is no longer running or no longer exists
//!   (its execution-ended event was lost) ([`RunLock::holders`], [`RunLock::execution_state`]).
//!
//! The release is the state machine's own, conditional on membership, so whoever releases second
//! changes nothing.
//!
//! A redriven attempt holds its slot under its own element, `<execution ARN>#<redrive count>`
//! ([`etl_callback::task::run_lock_holder`]; the submitter takes it before the attempt submits
//! anything). An element is released when its attempt is over: the execution ended, or it was
//! redriven since ([`attempt_over`]). So the release of a failed attempt, however late, never
//! takes the slot of the redriven attempt that runs after it.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt::Debug;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use etl_callback::task::parse_run_lock_holder;
use etl_callback::throttle::{Throttling, ThrottlingVariants};
use thiserror::Error;

pub use crate::execution::ExecutionState;
use crate::execution::{self, DescribeError};

/// The lock item's key attribute.
pub const LOCK_KEY: &str = "lockName";
/// The string set of holding execution ARNs.
pub const HOLDERS: &str = "holders";
/// The lock name when `RUN_LOCK_NAME` is unset.
pub const DEFAULT_LOCK_NAME: &str = "etl";
/// The state machine's release, byte for byte (`:me` = the execution ARN as a one-element set,
/// `:id` = the ARN).
pub const RELEASE_EXPRESSION: &str = "DELETE holders :me";
pub const RELEASE_CONDITION: &str = "contains(holders, :id)";

type BoxError = Box<dyn StdError + Send + Sync>;

/// `RUN_LOCK_TABLE` and `RUN_LOCK_NAME`: where the run lock lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLockSettings {
    pub table: String,
    pub name: String,
}

#[derive(Debug, Error)]
pub enum LockError {
    #[error("DynamoDB throttled {operation} on the run lock")]
    Throttled {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("the run lock request {operation} failed")]
    Failed {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("Step Functions throttled DescribeExecution")]
    DescribeThrottled(#[source] BoxError),
    #[error("DescribeExecution failed")]
    DescribeFailed(#[source] BoxError),
}

impl From<DescribeError> for LockError {
    fn from(err: DescribeError) -> Self {
        match err {
            DescribeError::Throttled(source) => Self::DescribeThrottled(source),
            DescribeError::Failed(source) => Self::DescribeFailed(source),
        }
    }
}

impl LockError {
    /// The stable error name in the logs and the async invocation's failure record.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Throttled { .. } => "RunLockThrottled",
            Self::Failed { .. } => "RunLockFailed",
            Self::DescribeThrottled(_) => "DescribeExecutionThrottled",
            Self::DescribeFailed(_) => "DescribeExecutionFailed",
        }
    }

    /// Throttling (or a timeout): skipped this round, the next scheduled run takes it.
    pub fn is_throttling(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::DescribeThrottled(_))
    }
}

/// What a release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// This call removed the holder and decremented the count.
    Released,
    /// The holder was already gone: the run (or an earlier delivery) released it.
    AlreadyReleased,
}

/// One element of the lock item's `holders`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The execution name (the ARN's last part), for logs; the whole element when it is not an
    /// execution ARN.
    pub execution_name: String,
    /// The execution ARN; `None` when the element is not an execution ARN (nothing to ask about).
    pub execution_arn: Option<String>,
    /// The attempt (redrive count) that holds the slot: 0 for the first.
    pub attempt: u32,
    /// The element itself, what a release removes.
    pub element: String,
}

/// Whether attempt `attempt` of an execution is over: the execution ended (or does not exist), or
/// it was redriven since (`redriveCount` above the attempt), so its slot is to be given back.
pub fn attempt_over(attempt: u32, execution: &execution::Execution) -> bool {
    !execution.state.is_live() || execution.redrive_count > attempt
}

/// The lock item and the clients to release it.
pub struct RunLock<'a> {
    pub dynamodb: &'a aws_sdk_dynamodb::Client,
    pub sfn: &'a aws_sdk_sfn::Client,
    pub settings: &'a RunLockSettings,
}

impl RunLock<'_> {
    fn key(&self) -> AttributeValue {
        AttributeValue::S(self.settings.name.clone())
    }

    /// The state machine's release for `execution_arn`: `ConditionalCheckFailed` means the
    /// holder is already gone, deliberately not an error.
    pub async fn release(&self, execution_arn: &str) -> Result<Release, LockError> {
        let result = self
            .dynamodb
            .update_item()
            .table_name(&self.settings.table)
            .key(LOCK_KEY, self.key())
            .update_expression(RELEASE_EXPRESSION)
            .condition_expression(RELEASE_CONDITION)
            .expression_attribute_values(":me", AttributeValue::Ss(vec![execution_arn.to_owned()]))
            .expression_attribute_values(":id", AttributeValue::S(execution_arn.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Release::Released),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(Release::AlreadyReleased)
            }
            Err(err) => Err(store_error("UpdateItem", err)),
        }
    }

    /// Every holder recorded on the lock item (a consistent read), by execution name; none when
    /// the item or its `holders` do not exist.
    pub async fn holders(&self) -> Result<Vec<Holder>, LockError> {
        let result = self
            .dynamodb
            .get_item()
            .table_name(&self.settings.table)
            .key(LOCK_KEY, self.key())
            .consistent_read(true)
            .send()
            .await;
        let item = match result {
            Ok(out) => out.item.unwrap_or_default(),
            Err(err) => {
                return Err(store_error("GetItem", err));
            }
        };
        Ok(holders_of(&item))
    }

    /// `DescribeExecution` of a holder's execution.
    pub async fn execution(&self, execution_arn: &str) -> Result<execution::Execution, LockError> {
        Ok(execution::describe(self.sfn, execution_arn).await?)
    }
}

/// The `holders` of a lock item, sorted by execution name.
pub fn holders_of(item: &HashMap<String, AttributeValue>) -> Vec<Holder> {
    let Some(AttributeValue::Ss(arns)) = item.get(HOLDERS) else {
        return Vec::new();
    };
    let mut holders: Vec<Holder> = arns
        .iter()
        .map(|element| match parse_run_lock_holder(element) {
            Some((arn, attempt)) => Holder {
                execution_name: arn.rsplit(':').next().unwrap_or(arn).to_owned(),
                execution_arn: Some(arn.to_owned()),
                attempt,
                element: element.clone(),
            },
            None => Holder {
                execution_name: element.clone(),
                execution_arn: None,
                attempt: 0,
                element: element.clone(),
            },
        })
        .collect();
    holders.sort_by(|a, b| a.execution_name.cmp(&b.execution_name));
    holders
}

fn store_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> LockError
where
    E: ThrottlingVariants + StdError + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    if Throttling::RUN_LOCK.matches(&err) {
        LockError::Throttled {
            operation,
            source: Box::new(err),
        }
    } else {
        LockError::Failed {
            operation,
            source: Box::new(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_is_over_when_its_execution_ended_or_was_redriven_since() {
        let execution = |state: ExecutionState, redrive_count| execution::Execution {
            state,
            redriven_at: None,
            redrive_count,
        };
        let running = |n| execution(ExecutionState::Live("RUNNING".into()), n);
        assert!(!attempt_over(0, &running(0)));
        assert!(!attempt_over(1, &running(1)));
        assert!(
            attempt_over(0, &running(1)),
            "the failed attempt before a redrive"
        );
        assert!(attempt_over(1, &running(3)));
        assert!(attempt_over(
            1,
            &execution(ExecutionState::Ended("FAILED".into()), 1)
        ));
        assert!(attempt_over(0, &execution(ExecutionState::DoesNotExist, 0)));
        assert!(!attempt_over(
            0,
            &execution(ExecutionState::Live("PENDING_REDRIVE".into()), 0)
        ));
    }

    #[test]
    fn holders_are_the_execution_arns_of_the_holders_set_and_nothing_else() {
        let arn =
            |name: &str| format!("arn:aws:states:us-east-1:123456789012:execution:etl:{name}");
        let mut item = HashMap::from([
            (LOCK_KEY.to_owned(), AttributeValue::S("etl".into())),
            // what a state machine before the holders set wrote: not a holder any more
            ("runCount".to_owned(), AttributeValue::N("1".into())),
            ("holder:old".to_owned(), AttributeValue::S(arn("old"))),
        ]);
        assert!(holders_of(&item).is_empty());
        item.insert(
            HOLDERS.to_owned(),
            AttributeValue::Ss(vec![
                arn("b.2021-06-26"),
                "not-an-arn".into(),
                arn("a"),
                format!("{}#2", arn("c")),
                format!("{}#x", arn("d")),
            ]),
        );
        assert_eq!(
            holders_of(&item),
            vec![
                Holder {
                    execution_name: "a".into(),
                    execution_arn: Some(arn("a")),
                    attempt: 0,
                    element: arn("a"),
                },
                Holder {
                    execution_name: format!("{}#x", arn("d")),
                    execution_arn: None,
                    attempt: 0,
                    element: format!("{}#x", arn("d")),
                },
                Holder {
                    execution_name: "b.2021-06-26".into(),
                    execution_arn: Some(arn("b.2021-06-26")),
                    attempt: 0,
                    element: arn("b.2021-06-26"),
                },
                Holder {
                    execution_name: "c".into(),
                    execution_arn: Some(arn("c")),
                    attempt: 2,
                    element: format!("{}#2", arn("c")),
                },
                Holder {
                    execution_name: "not-an-arn".into(),
                    execution_arn: None,
                    attempt: 0,
                    element: "not-an-arn".into(),
                },
            ]
        );
    }
}
