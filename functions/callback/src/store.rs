//! The rendezvous: one DynamoDB item per statement id where the submitter's task token and the
//! completer's status event meet. Every write is a single atomic `UpdateItem` returning the whole
//! item, so whichever side writes second sees both halves and completes the task; a lease
//! (`claimedUntil`) and a `completedAt` mark make sure a duplicate event never completes it twice.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use thiserror::Error;

use crate::event::{StatementState, StatementStatusChange};
use crate::task::{Task, TaskToken};

/// How long a claim on completing a task lasts; after that another delivery may take over. Longer
/// than the functions' 30 s timeout (a live holder is never overtaken), shorter than the 1 minute
/// before Lambda retries a failed asynchronous invocation (the retry of a crashed holder takes over).
pub const CLAIM_SECONDS: i64 = 45;

type UpdateError = SdkError<UpdateItemError, aws_smithy_runtime_api::http::Response>;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("DynamoDB throttled the token table request")]
    Throttled(#[source] Box<UpdateError>),
    #[error("the token table request failed")]
    Failed(#[source] Box<UpdateError>),
    #[error("a task token is already stored for statement {statement_id}")]
    TokenAlreadyStored { statement_id: String },
    #[error("the token table item for statement {statement_id} is malformed: {reason}")]
    Corrupt {
        statement_id: String,
        reason: String,
    },
}

impl StoreError {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Throttled(_) => "TokenStoreThrottled",
            Self::Failed(_) => "TokenStoreFailed",
            Self::TokenAlreadyStored { .. } => "TokenAlreadyStored",
            Self::Corrupt { .. } => "TokenStoreCorrupt",
        }
    }
}

fn is_throttling(err: &UpdateError) -> bool {
    match err {
        SdkError::ServiceError(e) => {
            let e = e.err();
            e.is_provisioned_throughput_exceeded_exception()
                || e.is_request_limit_exceeded()
                || matches!(e.code(), Some("ThrottlingException"))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        _ => false,
    }
}

fn is_condition_failed(err: &UpdateError) -> bool {
    err.as_service_error()
        .is_some_and(|e| e.is_conditional_check_failed_exception())
}

fn classify(err: UpdateError) -> StoreError {
    if is_throttling(&err) {
        StoreError::Throttled(Box::new(err))
    } else {
        StoreError::Failed(Box::new(err))
    }
}

/// Which half of the rendezvous wrote second and therefore closed the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The event was there first; the submitter closed the task after storing the token.
    Submitter,
    /// The token was there first; the completer closed the task on the event.
    Completer,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitter => "submitter",
            Self::Completer => "completer",
        }
    }
}

/// The terminal state the event reported, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    pub state: StatementState,
    pub rows: Option<i64>,
}

/// What the submitter recorded about the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedTask {
    pub token: TaskToken,
    pub step: String,
    pub run_date: String,
}

/// The rendezvous item as it stands after a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendezvous {
    pub statement_id: String,
    pub task: Option<RecordedTask>,
    pub event: Option<RecordedEvent>,
    pub completed: bool,
}

/// The token table and the clock: everything the rendezvous needs.
#[derive(Debug, Clone)]
pub struct TokenTable {
    pub client: Client,
    pub table: String,
    pub ttl_seconds: i64,
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl TokenTable {
    fn update(
        &self,
        statement_id: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("statementId", s(statement_id))
    }

    /// The submitter's half: stores the token of the task that started `statement_id`.
    pub async fn record_task(
        &self,
        statement_id: &str,
        task: &Task,
        statement_name: &str,
    ) -> Result<Rendezvous, StoreError> {
        let now = now();
        let out = self
            .update(statement_id)
            .update_expression(
                "SET taskToken = :token, step = :step, runDate = :runDate, statementName = :name, \
                 executionName = :execution, submittedAt = :now, expiresAt = if_not_exists(expiresAt, :expires)",
            )
            .condition_expression("attribute_not_exists(taskToken)")
            .expression_attribute_values(":token", s(task.token.expose()))
            .expression_attribute_values(":step", s(&task.step))
            .expression_attribute_values(":runDate", s(task.run_date.to_string()))
            .expression_attribute_values(":name", s(statement_name))
            .expression_attribute_values(":execution", s(&task.execution_name))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":expires", n(now + self.ttl_seconds))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|err| {
                if is_condition_failed(&err) {
                    StoreError::TokenAlreadyStored {
                        statement_id: statement_id.to_owned(),
                    }
                } else {
                    classify(err)
                }
            })?;
        parse_item(statement_id, out)
    }

    /// The completer's half: records the event's terminal state (the first delivery wins; a
    /// duplicate changes nothing).
    pub async fn record_event(
        &self,
        event: &StatementStatusChange,
    ) -> Result<Rendezvous, StoreError> {
        let now = now();
        let out = self
            .update(&event.statement_id)
            .update_expression(
                "SET eventState = if_not_exists(eventState, :state), eventAt = if_not_exists(eventAt, :now), \
                 eventRows = if_not_exists(eventRows, :rows), expiresAt = if_not_exists(expiresAt, :expires)",
            )
            .expression_attribute_values(":state", s(event.state.as_str()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":rows", n(event.rows.unwrap_or(-1)))
            .expression_attribute_values(":expires", n(now + self.ttl_seconds))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(classify)?;
        parse_item(&event.statement_id, out)
    }

    /// Takes the exclusive right to complete the task for `CLAIM_SECONDS`. `Ok(false)` when it is
    /// already completed or another delivery holds a live claim.
    pub async fn claim(&self, statement_id: &str) -> Result<bool, StoreError> {
        let now = now();
        let result = self
            .update(statement_id)
            .update_expression("SET claimedUntil = :until")
            .condition_expression(
                "attribute_exists(taskToken) AND attribute_not_exists(completedAt) \
                 AND (attribute_not_exists(claimedUntil) OR claimedUntil < :now)",
            )
            .expression_attribute_values(":until", n(now + CLAIM_SECONDS))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(classify(err)),
        }
    }

    /// Gives a claim back after a failure that a retry may fix.
    pub async fn release(&self, statement_id: &str) -> Result<(), StoreError> {
        self.update(statement_id)
            .update_expression("REMOVE claimedUntil")
            .condition_expression("attribute_not_exists(completedAt)")
            .send()
            .await
            .map(|_| ())
            .or_else(|err| {
                if is_condition_failed(&err) {
                    Ok(())
                } else {
                    Err(classify(err))
                }
            })
    }

    /// Marks the task as completed with `outcome` (SUCCEEDED, FAILED or TASK_CLOSED) by `side`.
    pub async fn mark_completed(
        &self,
        statement_id: &str,
        outcome: &str,
        side: Side,
    ) -> Result<(), StoreError> {
        self.update(statement_id)
            .update_expression(
                "SET completedAt = :now, outcome = :outcome, completedBy = :side REMOVE claimedUntil",
            )
            .expression_attribute_values(":now", n(now()))
            .expression_attribute_values(":outcome", s(outcome))
            .expression_attribute_values(":side", s(side.as_str()))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

fn parse_item(statement_id: &str, out: UpdateItemOutput) -> Result<Rendezvous, StoreError> {
    let item = out.attributes.unwrap_or_default();
    let corrupt = |reason: &str| StoreError::Corrupt {
        statement_id: statement_id.to_owned(),
        reason: reason.to_owned(),
    };
    let text = |item: &HashMap<String, AttributeValue>, key: &str| {
        item.get(key).and_then(|v| v.as_s().ok()).cloned()
    };
    let task = match text(&item, "taskToken") {
        None => None,
        Some(token) => Some(RecordedTask {
            token: TaskToken::new(token),
            step: text(&item, "step").ok_or_else(|| corrupt("taskToken without step"))?,
            run_date: text(&item, "runDate").ok_or_else(|| corrupt("taskToken without runDate"))?,
        }),
    };
    let event = match text(&item, "eventState") {
        None => None,
        Some(state) => Some(RecordedEvent {
            state: StatementState::parse(&state).ok_or_else(|| corrupt("unknown eventState"))?,
            rows: item
                .get("eventRows")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|rows| *rows >= 0),
        }),
    };
    Ok(Rendezvous {
        statement_id: statement_id.to_owned(),
        task,
        event,
        completed: item.contains_key("completedAt"),
    })
}
