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

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt::Debug;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
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
    pub async fn execution_state(&self, execution_arn: &str) -> Result<ExecutionState, LockError> {
        Ok(execution::describe(self.sfn, execution_arn).await?.state)
    }
}

/// The `holders` of a lock item, sorted by execution name.
pub fn holders_of(item: &HashMap<String, AttributeValue>) -> Vec<Holder> {
    let Some(AttributeValue::Ss(arns)) = item.get(HOLDERS) else {
        return Vec::new();
    };
    let mut holders: Vec<Holder> = arns
        .iter()
        .map(|arn| {
            let is_execution = arn.starts_with("arn:") && arn.contains(":execution:");
            Holder {
                execution_name: if is_execution {
                    arn.rsplit(':').next().unwrap_or(arn).to_owned()
                } else {
                    arn.clone()
                },
                execution_arn: is_execution.then(|| arn.clone()),
            }
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
            AttributeValue::Ss(vec![arn("b.2021-06-26"), "not-an-arn".into(), arn("a")]),
        );
        assert_eq!(
            holders_of(&item),
            vec![
                Holder {
                    execution_name: "a".into(),
                    execution_arn: Some(arn("a"))
                },
                Holder {
                    execution_name: "b.2021-06-26".into(),
                    execution_arn: Some(arn("b.2021-06-26")),
                },
                Holder {
                    execution_name: "not-an-arn".into(),
                    execution_arn: None
                },
            ]
        );
    }
}
