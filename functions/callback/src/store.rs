//! The rendezvous: one DynamoDB item per statement id where the submitter's task token and the
//! completer's status event meet. Every write is a single atomic `UpdateItem` returning the whole
//! item, so whichever side writes second sees both halves and completes the task; a lease
//! (`claimedUntil`) and a `completedAt` mark make sure a duplicate event never completes it twice.
//!
//! A retried Task gets a new token but, through the Data API `ClientToken`, the same statement: the
//! retry's token replaces the stored one when it belongs to a later attempt of the same execution
//! and step, even when the statement's task is already completed (the retry then gets the recorded
//! outcome with its own token). While a token waits, the item carries `pending = "PENDING"`, the hash key of a sparse
//! index (range key `submittedAt`) through which the reconciler finds waiting tasks without a scan.

use std::collections::HashMap;
use std::error::Error as StdError;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use thiserror::Error;
use tracing::info;

use crate::aws;
use crate::check::StoredCheck;
use crate::event::{StatementState, StatementStatusChange};
use crate::task::{ErrorNames, Task, TaskToken};
use crate::throttle::{Throttling, ThrottlingVariants};

/// The most calls a claim holder makes between taking the claim and marking the task completed:
/// closing a task is `DescribeStatement` then `SendTaskSuccess`/`SendTaskFailure`
/// ([`TaskClients::settle`](crate::complete::TaskClients::settle)); closing an abandoned one is
/// `CancelStatement`, failing a lost statement is `SendTaskFailure`. A new call under a claim
/// must be counted here, or the lease may end while its holder still works.
pub const CALLS_UNDER_CLAIM: u64 = 2;

/// The longest an invocation can hold a claim, as the SDK's operation timeouts bound it
/// ([`crate::aws`]): the claim's own `UpdateItem` (its lease is counted from before it is sent),
/// [`CALLS_UNDER_CLAIM`] calls to the Data API or Step Functions, and the `UpdateItem` that marks
/// the task completed. 5 + 2 × 10 + 5 = 30 s.
pub const CLAIM_WINDOW_SECONDS: i64 = (aws::DYNAMODB.operation_seconds
    + CALLS_UNDER_CLAIM
        * max(
            aws::REDSHIFT_DATA.operation_seconds,
            aws::STEP_FUNCTIONS.operation_seconds,
        )
    + aws::DYNAMODB.operation_seconds) as i64;

/// Added to the holding time: the clocks of two Lambda hosts, and a request still on the wire
/// when its timeout fired.
pub const CLAIM_MARGIN_SECONDS: i64 = 2;

/// How long Lambda waits before retrying a failed asynchronous invocation (the completer's status
/// events, the reconciler's schedule and execution-ended events): about 1 minute before the first
/// retry, 2 before the second. A lease shorter than this lets the retry of a holder that crashed
/// or timed out take over instead of finding the claim still held and dropping the event.
pub const ASYNC_RETRY_DELAY_SECONDS: i64 = 60;

/// How long a claim on completing a task lasts in a function whose timeout is
/// `function_timeout` seconds (`FUNCTION_TIMEOUT_SECONDS`; `None` when unknown); after that
/// another delivery may take over.
///
/// One invocation holds a claim at most until its SDK calls time out ([`CLAIM_WINDOW_SECONDS`])
/// and at most until Lambda ends the invocation (its timeout: the claim cannot be older than the
/// invocation). The lease is the shorter of the two plus [`CLAIM_MARGIN_SECONDS`], so a live
/// holder is never overtaken and a second callback is never sent; and it is always shorter than
/// [`ASYNC_RETRY_DELAY_SECONDS`], so a retry takes over from a holder that died.
/// `tests/template_limits.rs` checks the template's timeouts against these figures.
pub const fn claim_seconds(function_timeout: Option<i64>) -> i64 {
    let hold = match function_timeout {
        Some(timeout) if timeout > 0 && timeout < CLAIM_WINDOW_SECONDS => timeout,
        _ => CLAIM_WINDOW_SECONDS,
    };
    hold + CLAIM_MARGIN_SECONDS
}

/// The longest lease, whatever the function's timeout: 32 s.
pub const CLAIM_SECONDS: i64 = claim_seconds(None);
const _: () = assert!(CLAIM_SECONDS < ASYNC_RETRY_DELAY_SECONDS);

const fn max(a: u64, b: u64) -> u64 {
    if a > b {
        a
    } else {
        b
    }
}

/// The longest a task token can wait: the execution's own timeout (`TimeoutSeconds` of
/// `statemachine/etl.asl.json`). Every step's timeout is at most this (the template's
/// `StepTimeoutSeconds` `MaxValue`, the generator's check of per-step `timeout_seconds`).
pub const MAX_WAIT_SECONDS: i64 = 21_600;

/// How late a status event can still reach the completer after its statement ended:
/// EventBridge retries the delivery for up to 24 hours (the rule target's
/// `MaximumEventAgeInSeconds`), then Lambda's asynchronous retries for up to 1 hour
/// (`EventInvokeConfig` `MaximumEventAgeInSeconds`).
pub const LATE_EVENT_SECONDS: i64 = 86_400 + 3_600;

/// Rendezvous items expire (`expiresAt`) this long after their first write, derived from the
/// step limits: an item outlives the longest wait of its token, and then the latest its status
/// event can arrive, so a late duplicate finds `completedAt`. 6 h + 25 h = 31 hours.
/// `TOKEN_TTL_SECONDS` may lengthen it, never shorten it below [`MAX_WAIT_SECONDS`].
pub const TOKEN_TTL_SECONDS: i64 = MAX_WAIT_SECONDS + LATE_EVENT_SECONDS;

/// The value of `pending` while a token waits: the hash key of the sparse pending index.
pub const PENDING: &str = "PENDING";
/// The pending index's name when `PENDING_INDEX` is unset.
pub const DEFAULT_PENDING_INDEX: &str = "PendingBySubmittedAt";

type HttpResponse = aws_smithy_runtime_api::http::Response;
type BoxError = Box<dyn StdError + Send + Sync>;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("DynamoDB throttled the token table request")]
    Throttled(#[source] BoxError),
    #[error("the token table request failed")]
    Failed(#[source] BoxError),
    #[error("a task token is already stored for statement {statement_id}")]
    TokenAlreadyStored { statement_id: String },
    #[error("statement {statement_id} is already attached to attempt {stored_attempt} of its Task; attempt {attempt} is older or the same")]
    SupersededAttempt {
        statement_id: String,
        attempt: u32,
        stored_attempt: u32,
    },
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
            Self::SupersededAttempt { .. } => "SupersededAttempt",
            Self::Corrupt { .. } => "TokenStoreCorrupt",
        }
    }

    pub fn is_throttling(&self) -> bool {
        matches!(self, Self::Throttled(_))
    }
}

fn classify<E>(err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ThrottlingVariants + StdError + Send + Sync + 'static,
{
    if Throttling::DYNAMODB.matches(&err) {
        StoreError::Throttled(Box::new(err))
    } else {
        StoreError::Failed(Box::new(err))
    }
}

fn is_condition_failed(err: &SdkError<UpdateItemError, HttpResponse>) -> bool {
    err.as_service_error()
        .is_some_and(|e| e.is_conditional_check_failed_exception())
}

/// A conditional write whose refused condition means "nothing to do here" (the token was replaced,
/// or the task completed meanwhile): `Ok` then, its other errors classified.
fn unless_condition_failed<T>(
    result: Result<T, SdkError<UpdateItemError, HttpResponse>>,
) -> Result<(), StoreError> {
    match result {
        Ok(_) => Ok(()),
        Err(err) if is_condition_failed(&err) => Ok(()),
        Err(err) => Err(classify(err)),
    }
}

/// Which side closed the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The event was there first; the submitter closed the task after storing the token.
    Submitter,
    /// The submitter's own `BatchExecuteStatement` wait (`WaitTimeSeconds`) saw the statement end:
    /// it recorded the outcome as the event would and closed the task after storing the token.
    SubmitterWait,
    /// The token was there first; the completer closed the task on the event.
    Completer,
    /// The event never came (or the execution ended); the reconciler closed the task.
    Reconciler,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitter => "submitter",
            Self::SubmitterWait => "submitter-wait",
            Self::Completer => "completer",
            Self::Reconciler => "reconciler",
        }
    }
}

/// What the submitter's wait writes with the first token when it saw the statement end
/// ([`TokenTable::record_task_settled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitWrite {
    /// The completion claim: the caller reads what decides the outcome (a check's result), then
    /// calls back and marks the task completed.
    Claim,
    /// The completion mark itself, with the outcome the statement's state decides (an ordinary
    /// step: FINISHED succeeds, FAILED and ABORTED fail): the caller calls back, and only a failed
    /// or refused callback writes again ([`TokenTable::unmark`], or the `TASK_CLOSED` mark).
    Mark(Outcome),
}

/// How a task ended, as recorded in `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    /// Step Functions had already closed the task (timed out, gone, token invalid, execution over).
    TaskClosed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TaskClosed => "TASK_CLOSED",
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
    /// Absent only on items written before executions were recorded.
    pub execution_name: Option<String>,
    /// The Task attempt (`$$.State.RetryCount`) whose token is stored; 0 when not recorded.
    pub attempt: u32,
    /// The step's replacements for its error names (`errorNames`); empty when not recorded.
    pub error_names: ErrorNames,
    /// The step's OpenLineage run (`lineage`), stored only while lineage is on.
    pub lineage: Option<crate::lineage::StepRun>,
    /// A check step's settings and SQL (`check`, JSON): the closer reads the statement's result
    /// and decides the outcome with them ([`crate::check`]). `None` for an ordinary step.
    pub check: Option<StoredCheck>,
}

/// The rendezvous item as it stands after a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendezvous {
    pub statement_id: String,
    pub task: Option<RecordedTask>,
    pub event: Option<RecordedEvent>,
    pub completed: bool,
    /// SUCCEEDED, FAILED or TASK_CLOSED once completed.
    pub outcome: Option<String>,
    pub submitted_at: Option<i64>,
}

/// How the submitter's token got into the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The first token for this statement.
    Stored,
    /// A later attempt of the same Task entry re-attached to the statement its first attempt
    /// started; its token replaced the previous attempt's.
    Reattached,
    /// The same token again (a redelivered invocation): nothing changed.
    Redelivered,
}

/// Which pending items a query returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingFilter {
    /// Tokens stored before this epoch second, oldest first.
    SubmittedBefore(i64),
    /// Every pending token of one execution.
    Execution(String),
}

impl Rendezvous {
    /// The item DynamoDB returned (`ALL_NEW` after a write, or a read), checked.
    pub fn from_item(
        statement_id: &str,
        item: HashMap<String, AttributeValue>,
    ) -> Result<Self, StoreError> {
        parse_item(statement_id, item)
    }
}

/// The token table and the clock: everything the rendezvous needs.
#[derive(Debug, Clone)]
pub struct TokenTable {
    pub client: Client,
    pub table: String,
    pub ttl_seconds: i64,
    /// The completion claim's lease ([`claim_seconds`] of this function's timeout).
    pub claim_seconds: i64,
}

impl TokenTable {
    /// The token table `settings` name, through `client`.
    pub fn new(client: Client, settings: crate::config::TableSettings) -> Self {
        Self {
            client,
            table: settings.table,
            ttl_seconds: settings.ttl_seconds,
            claim_seconds: settings.claim_seconds,
        }
    }
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

/// The attribute holding a step's error-name mapping (a map of strings), written with its token.
pub const ERROR_NAMES: &str = "errorNames";
/// The attribute holding a check step's [`StoredCheck`] (a JSON string), written with its token.
pub const CHECK: &str = "check";

type UpdateItem = aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;

/// Binds `:errorNames` when the step has error names to store, and `:check` for a check step.
fn with_names(
    request: UpdateItem,
    names: Option<&AttributeValue>,
    check: Option<&AttributeValue>,
) -> UpdateItem {
    let request = match names {
        Some(names) => request.expression_attribute_values(":errorNames", names.clone()),
        None => request,
    };
    match check {
        Some(check) => request.expression_attribute_values(":check", check.clone()),
        None => request,
    }
}

/// What a token's write stores beside the token: the step's error names and a check step's
/// settings, with the `SET` clause that writes them.
struct TaskFields {
    names: Option<AttributeValue>,
    check: Option<AttributeValue>,
    set_names: &'static str,
}

impl TaskFields {
    fn new(task: &Task, check: Option<&StoredCheck>) -> Self {
        // The step's error names travel with its token; without any, the requests are unchanged.
        let names = error_names(&task.error_names);
        let check = check.map(|c| s(serde_json::to_string(c).expect("a check serializes")));
        let set_names = match (names.is_some(), check.is_some()) {
            (true, true) => ", errorNames = :errorNames, #check = :check",
            (true, false) => ", errorNames = :errorNames",
            (false, true) => ", #check = :check",
            (false, false) => "",
        };
        Self {
            names,
            check,
            set_names,
        }
    }

    /// Binds the values (and `#check`'s name) of [`Self::set_names`].
    fn bind(&self, request: UpdateItem) -> UpdateItem {
        // `check` is not a DynamoDB reserved word today; the name placeholder keeps it safe anyway.
        let request = match self.check {
            Some(_) => request.expression_attribute_names("#check", CHECK),
            None => request,
        };
        with_names(request, self.names.as_ref(), self.check.as_ref())
    }
}

/// `errorNames` as DynamoDB stores it; `None` for no mapping (the attribute is then not written).
fn error_names(names: &ErrorNames) -> Option<AttributeValue> {
    (!names.is_empty()).then(|| {
        AttributeValue::M(
            names
                .iter()
                .map(|(from, to)| (from.to_owned(), s(to)))
                .collect(),
        )
    })
}

impl TokenTable {
    fn update(&self, statement_id: &str) -> UpdateItem {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("statementId", s(statement_id))
    }

    /// The submitter's half: stores the token of the task that started `statement_id`.
    ///
    /// A retry of the same Task entry gets the same statement back (same `ClientToken`) with a new
    /// token. That token replaces the stored one when execution and step match and the stored
    /// attempt is older, whatever the item's completion: the completion mark (`completedAt`,
    /// `outcome`, `completedBy`) is removed and the event half kept, so
    /// [`settle`](crate::complete::TaskClients::settle) closes the new token with the statement's
    /// recorded outcome (the same output, or the same error and cause after the step's `errors`
    /// mapping). A retry exists only because Step Functions did not take the earlier attempt's
    /// outcome as that attempt's (its token was closed first: `TASK_CLOSED`, or an emulator that
    /// let both happen: `SUCCEEDED`/`FAILED`), so the recorded outcome is delivered again with the
    /// new token, which completes each token at most once. An older or the same attempt
    /// (`SupersededAttempt`) changes nothing; the same token again changes nothing.
    pub async fn record_task(
        &self,
        statement_id: &str,
        task: &Task,
        statement_name: &str,
        lineage: Option<&crate::lineage::StepRun>,
        check: Option<&StoredCheck>,
    ) -> Result<(Rendezvous, Recorded), StoreError> {
        let fields = TaskFields::new(task, check);
        let first = self
            .first_token(statement_id, task, statement_name, lineage, &fields, None)
            .send()
            .await;
        match first {
            Ok(out) => {
                return Ok((
                    parse_item(statement_id, out.attributes.unwrap_or_default())?,
                    Recorded::Stored,
                ))
            }
            Err(err) if is_condition_failed(&err) => {}
            Err(err) => return Err(classify(err)),
        }
        let now = now();
        let set_names = fields.set_names;
        let replaced = self
            .update(statement_id)
            .update_expression(format!(
                "SET taskToken = :token, attempt = :attempt, stateEnteredTime = :entered, \
                 submittedAt = :now, pending = :pending{set_names} \
                 REMOVE completedAt, outcome, completedBy, claimedUntil, executionStatus",
            ))
            .condition_expression(
                "executionName = :execution AND step = :step \
                 AND (attribute_not_exists(attempt) OR attempt < :attempt)",
            )
            .expression_attribute_values(":token", s(task.token.expose()))
            .expression_attribute_values(":attempt", n(i64::from(task.attempt)))
            .expression_attribute_values(":entered", s(&task.state_entered_time))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":pending", s(PENDING))
            .expression_attribute_values(":execution", s(&task.execution_name))
            .expression_attribute_values(":step", s(&task.step))
            .return_values(ReturnValue::AllNew);
        let replaced = fields.bind(replaced).send().await;
        match replaced {
            Ok(out) => {
                info!(statement_id, step = %task.step, attempt = task.attempt,
                      token = %task.token.fingerprint(), "retry re-attached to the statement of its first attempt");
                Ok((
                    parse_item(statement_id, out.attributes.unwrap_or_default())?,
                    Recorded::Reattached,
                ))
            }
            Err(err) if is_condition_failed(&err) => {
                let current = self.read(statement_id).await?;
                refused(statement_id, task, current)
            }
            Err(err) => Err(classify(err)),
        }
    }

    /// The first token's write (`attribute_not_exists(taskToken)`): the token, the step's record
    /// and the pending index key. With `settled`, the same write also records the terminal state the
    /// submitter's wait saw, as [`record_event`](Self::record_event) would (the first state recorded
    /// stays), and takes the completion claim, as [`claim`](Self::claim) would: one request where
    /// the general path makes three.
    fn first_token(
        &self,
        statement_id: &str,
        task: &Task,
        statement_name: &str,
        lineage: Option<&crate::lineage::StepRun>,
        fields: &TaskFields,
        settled: Option<(StatementState, WaitWrite)>,
    ) -> UpdateItem {
        let now = now();
        // So does its lineage run, only while lineage is on (the first token's: a retry of the
        // same Task entry is the same run).
        let set_lineage = if lineage.is_some() {
            ", lineage = :lineage"
        } else {
            ""
        };
        // Waiting for its event (`pending`), claimed for the caller's close, or already marked
        // completed by it.
        let set_pending = match settled {
            None | Some((_, WaitWrite::Claim)) => " pending = :pending,",
            Some((_, WaitWrite::Mark(_))) => "",
        };
        let set_settled = match settled {
            None => "",
            Some((_, WaitWrite::Claim)) => {
                ", eventState = if_not_exists(eventState, :state), \
                 eventAt = if_not_exists(eventAt, :now), eventRows = if_not_exists(eventRows, :rows), \
                 claimedUntil = :until"
            }
            Some((_, WaitWrite::Mark(_))) => {
                ", eventState = if_not_exists(eventState, :state), \
                 eventAt = if_not_exists(eventAt, :now), eventRows = if_not_exists(eventRows, :rows), \
                 completedAt = :now, outcome = :outcome, completedBy = :side"
            }
        };
        let set_names = fields.set_names;
        let first = self
            .update(statement_id)
            .update_expression(format!(
                "SET taskToken = :token, step = :step, runDate = :runDate, statementName = :name, \
                 executionName = :execution, attempt = :attempt, stateEnteredTime = :entered, \
                 submittedAt = :now,{set_pending} expiresAt = if_not_exists(expiresAt, :expires)\
                 {set_names}{set_lineage}{set_settled}",
            ))
            .condition_expression("attribute_not_exists(taskToken)")
            .expression_attribute_values(":token", s(task.token.expose()))
            .expression_attribute_values(":step", s(&task.step))
            .expression_attribute_values(":runDate", s(task.run_date.to_string()))
            .expression_attribute_values(":name", s(statement_name))
            .expression_attribute_values(":execution", s(&task.execution_name))
            .expression_attribute_values(":attempt", n(i64::from(task.attempt)))
            .expression_attribute_values(":entered", s(&task.state_entered_time))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":expires", n(now + self.ttl_seconds))
            .return_values(ReturnValue::AllNew);
        let first = match lineage {
            Some(run) => first.expression_attribute_values(":lineage", s(run.to_json())),
            None => first,
        };
        let first = match settled {
            None => first.expression_attribute_values(":pending", s(PENDING)),
            Some((state, write)) => {
                let first = first
                    .expression_attribute_values(":state", s(state.as_str()))
                    // The wait does not report rows; the event's own write stores the same -1 then.
                    .expression_attribute_values(":rows", n(-1));
                match write {
                    WaitWrite::Claim => first
                        .expression_attribute_values(":pending", s(PENDING))
                        .expression_attribute_values(":until", n(now + self.claim_seconds)),
                    WaitWrite::Mark(outcome) => first
                        .expression_attribute_values(":outcome", s(outcome.as_str()))
                        .expression_attribute_values(":side", s(Side::SubmitterWait.as_str())),
                }
            }
        };
        fields.bind(first)
    }

    /// The submitter's wait saw `statement_id` end in `state`: stores the first token with that
    /// state and, as `write` says, the completion claim or the completion mark, in one conditional
    /// write ([`first_token`](Self::first_token)), so the caller closes the task at once
    /// ([`settle_claimed`](crate::complete::TaskClients::settle_claimed),
    /// [`settle_premarked`](crate::complete::TaskClients::settle_premarked)). A status event
    /// recorded before it keeps its state; one recorded after it finds the claim held or the task
    /// completed and changes nothing.
    /// `Ok(None)` when a token is already stored (a retry re-attaching, or a redelivered
    /// invocation): the caller takes the general path, [`record_event`](Self::record_event) then
    /// [`record_task`](Self::record_task), which knows those cases.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_task_settled(
        &self,
        statement_id: &str,
        task: &Task,
        statement_name: &str,
        lineage: Option<&crate::lineage::StepRun>,
        check: Option<&StoredCheck>,
        state: StatementState,
        write: WaitWrite,
    ) -> Result<Option<Rendezvous>, StoreError> {
        let fields = TaskFields::new(task, check);
        let written = self
            .first_token(
                statement_id,
                task,
                statement_name,
                lineage,
                &fields,
                Some((state, write)),
            )
            .send()
            .await;
        match written {
            Ok(out) => Ok(Some(parse_item(
                statement_id,
                out.attributes.unwrap_or_default(),
            )?)),
            Err(err) if is_condition_failed(&err) => Ok(None),
            Err(err) => Err(classify(err)),
        }
    }

    /// The whole item, read consistently; `None` when there is none.
    pub async fn read(&self, statement_id: &str) -> Result<Option<Rendezvous>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("statementId", s(statement_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item
            .map(|item| parse_item(statement_id, item))
            .transpose()
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
        parse_item(&event.statement_id, out.attributes.unwrap_or_default())
    }

    /// Takes the exclusive right to complete the task holding `token` for `claim_seconds`.
    /// `Ok(false)` when it is already completed, another delivery holds a live claim, or a retry's
    /// token has replaced this one.
    pub async fn claim(&self, statement_id: &str, token: &TaskToken) -> Result<bool, StoreError> {
        let now = now();
        let result = self
            .update(statement_id)
            .update_expression("SET claimedUntil = :until")
            .condition_expression(
                "taskToken = :token AND attribute_not_exists(completedAt) \
                 AND (attribute_not_exists(claimedUntil) OR claimedUntil < :now)",
            )
            .expression_attribute_values(":until", n(now + self.claim_seconds))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":token", s(token.expose()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(classify(err)),
        }
    }

    /// Gives a claim back after a failure that a retry may fix (unless the token was replaced).
    pub async fn release(&self, statement_id: &str, token: &TaskToken) -> Result<(), StoreError> {
        let result = self
            .update(statement_id)
            .update_expression("REMOVE claimedUntil")
            .condition_expression("attribute_not_exists(completedAt) AND taskToken = :token")
            .expression_attribute_values(":token", s(token.expose()))
            .send()
            .await;
        unless_condition_failed(result)
    }

    /// Takes back a completion mark written before its callback ([`WaitWrite::Mark`]) when the
    /// callback failed: the task waits again (`pending`), for its event, the reconciler or the
    /// Task's retry. Nothing when a retry's token replaced `token` meanwhile.
    pub async fn unmark(&self, statement_id: &str, token: &TaskToken) -> Result<(), StoreError> {
        let result = self
            .update(statement_id)
            .update_expression("SET pending = :pending REMOVE completedAt, outcome, completedBy")
            .condition_expression("taskToken = :token")
            .expression_attribute_values(":pending", s(PENDING))
            .expression_attribute_values(":token", s(token.expose()))
            .send()
            .await;
        unless_condition_failed(result)
    }

    /// Marks the task holding `token` completed with `outcome` by `side`, and takes it out of the
    /// pending index. `execution_status` notes why the reconciler closed it when its execution
    /// ended. `Ok(false)` when a retry's token replaced `token` meanwhile: the item then belongs to
    /// the new attempt and is left alone.
    pub async fn mark_completed(
        &self,
        statement_id: &str,
        token: &TaskToken,
        outcome: Outcome,
        side: Side,
        execution_status: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut expression =
            "SET completedAt = :now, outcome = :outcome, completedBy = :side".to_owned();
        if execution_status.is_some() {
            expression.push_str(", executionStatus = :executionStatus");
        }
        expression.push_str(" REMOVE claimedUntil, pending");
        let mut request = self
            .update(statement_id)
            .update_expression(expression)
            .condition_expression("taskToken = :token")
            .expression_attribute_values(":now", n(now()))
            .expression_attribute_values(":outcome", s(outcome.as_str()))
            .expression_attribute_values(":side", s(side.as_str()))
            .expression_attribute_values(":token", s(token.expose()));
        if let Some(status) = execution_status {
            request = request.expression_attribute_values(":executionStatus", s(status));
        }
        let result = request.send().await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(classify(err)),
        }
    }

    /// Pending items (a token waiting, not completed) from the sparse index `index`, at most
    /// `max_items`, following pages. Never a scan: the index holds only pending items. An item
    /// that does not parse comes back as its error.
    pub async fn pending(
        &self,
        index: &str,
        filter: &PendingFilter,
        max_items: usize,
    ) -> Result<Vec<Result<Rendezvous, StoreError>>, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let remaining = max_items.saturating_sub(found.len());
            if remaining == 0 {
                break;
            }
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .expression_attribute_values(":pending", s(PENDING))
                .set_exclusive_start_key(start.take());
            let query = match filter {
                PendingFilter::SubmittedBefore(cutoff) => query
                    .key_condition_expression("pending = :pending AND submittedAt < :cutoff")
                    .expression_attribute_values(":cutoff", n(*cutoff))
                    .scan_index_forward(true)
                    .limit(i32::try_from(remaining).unwrap_or(i32::MAX)),
                PendingFilter::Execution(name) => query
                    .key_condition_expression("pending = :pending")
                    .filter_expression("executionName = :execution")
                    .expression_attribute_values(":execution", s(name)),
            };
            let out = query.send().await.map_err(classify)?;
            for item in out.items.unwrap_or_default() {
                if found.len() == max_items {
                    break;
                }
                let id = item
                    .get("statementId")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                found.push(parse_item(&id, item));
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(found)
    }
}

/// Why a retry's token could not replace the stored one, or `Ok` for the same token again.
fn refused(
    statement_id: &str,
    task: &Task,
    current: Option<Rendezvous>,
) -> Result<(Rendezvous, Recorded), StoreError> {
    let already = || StoreError::TokenAlreadyStored {
        statement_id: statement_id.to_owned(),
    };
    let current = current.ok_or_else(already)?;
    let stored = current.task.as_ref().ok_or_else(already)?;
    if stored.token == task.token {
        info!(statement_id, step = %task.step, attempt = task.attempt, "the same token again; nothing to change");
        return Ok((current, Recorded::Redelivered));
    }
    if stored.step != task.step || stored.execution_name.as_deref() != Some(&task.execution_name) {
        return Err(already());
    }
    if stored.attempt >= task.attempt {
        return Err(StoreError::SupersededAttempt {
            statement_id: statement_id.to_owned(),
            attempt: task.attempt,
            stored_attempt: stored.attempt,
        });
    }
    // Same execution and step, an older attempt stored: the condition holds for such an item,
    // and attempts only grow, so an item that refused it is not one this store wrote.
    Err(StoreError::Corrupt {
        statement_id: statement_id.to_owned(),
        reason: format!(
            "the re-attach of attempt {} was refused although attempt {} is stored",
            task.attempt, stored.attempt
        ),
    })
}

fn parse_item(
    statement_id: &str,
    item: HashMap<String, AttributeValue>,
) -> Result<Rendezvous, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        statement_id: statement_id.to_owned(),
        reason: reason.to_owned(),
    };
    let text = |key: &str| item.get(key).and_then(|v| v.as_s().ok()).cloned();
    let number = |key: &str| {
        item.get(key)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let task = match text("taskToken") {
        None => None,
        Some(token) => Some(RecordedTask {
            token: TaskToken::new(token),
            step: text("step").ok_or_else(|| corrupt("taskToken without step"))?,
            run_date: text("runDate").ok_or_else(|| corrupt("taskToken without runDate"))?,
            execution_name: text("executionName"),
            attempt: number("attempt")
                .map(u32::try_from)
                .transpose()
                .map_err(|_| corrupt("attempt is not a retry count"))?
                .unwrap_or(0),
            error_names: match item.get(ERROR_NAMES) {
                None => ErrorNames::default(),
                Some(names) => names
                    .as_m()
                    .ok()
                    .and_then(|names| {
                        names
                            .iter()
                            .map(|(from, to)| Some((from.clone(), to.as_s().ok()?.clone())))
                            .collect::<Option<ErrorNames>>()
                    })
                    .ok_or_else(|| corrupt("errorNames is not a map of strings"))?,
            },
            // Only lineage reads it; one that does not parse means no lineage for this step.
            lineage: text(crate::lineage::ITEM_ATTRIBUTE)
                .and_then(|run| serde_json::from_str(&run).ok()),
            check: match text(CHECK) {
                None => None,
                Some(json) => Some(
                    serde_json::from_str(&json)
                        .map_err(|_| corrupt("check is not a stored check"))?,
                ),
            },
        }),
    };
    let event = match text("eventState") {
        None => None,
        Some(state) => Some(RecordedEvent {
            state: StatementState::parse(&state).ok_or_else(|| corrupt("unknown eventState"))?,
            rows: number("eventRows").filter(|rows| *rows >= 0),
        }),
    };
    Ok(Rendezvous {
        statement_id: statement_id.to_owned(),
        task,
        event,
        completed: item.contains_key("completedAt"),
        outcome: text("outcome"),
        submitted_at: number("submittedAt"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_item() -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("taskToken".to_owned(), s("token")),
            ("step".to_owned(), s("LoadItem")),
            ("runDate".to_owned(), s("2021-06-26")),
        ])
    }

    fn names(pairs: &[(&str, &str)]) -> AttributeValue {
        AttributeValue::M(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), s(*v)))
                .collect(),
        )
    }

    #[test]
    fn the_lease_outlasts_every_holder_and_ends_before_lambda_retries() {
        // The SDK bounds a holder: claim, two calls, mark.
        assert_eq!(CLAIM_WINDOW_SECONDS, 30);
        assert_eq!(CLAIM_SECONDS, 32);
        for timeout in [1, 3, 10, 29, 30, 31, 60, 900] {
            let lease = claim_seconds(Some(timeout));
            let hold = timeout.min(CLAIM_WINDOW_SECONDS);
            assert!(lease > hold, "timeout {timeout}: lease {lease}");
            assert!(lease < ASYNC_RETRY_DELAY_SECONDS, "timeout {timeout}");
        }
        // A function shorter than the SDK window cannot hold the claim longer than it runs.
        assert_eq!(claim_seconds(Some(10)), 12);
        assert_eq!(claim_seconds(None), CLAIM_SECONDS);
        assert_eq!(claim_seconds(Some(0)), CLAIM_SECONDS);
    }

    #[test]
    fn items_outlive_the_longest_wait_and_the_latest_event() {
        assert_eq!(TOKEN_TTL_SECONDS, 111_600);
    }

    #[test]
    fn a_stored_check_is_read_with_the_token_and_a_bad_one_is_corrupt() {
        assert_eq!(
            parse_item("id", token_item()).unwrap().task.unwrap().check,
            None
        );
        let stored = StoredCheck {
            severity: crate::check::Severity::Warn,
            max_rows: 5,
            sql: "select 1 where false".into(),
        };
        let mut item = token_item();
        item.insert(CHECK.into(), s(serde_json::to_string(&stored).unwrap()));
        let task = parse_item("id", item.clone()).unwrap().task.unwrap();
        assert_eq!(task.check, Some(stored));
        item.insert(CHECK.into(), s("{\"severity\": \"loud\"}"));
        let err = parse_item("id", item).unwrap_err();
        assert_eq!(err.name(), "TokenStoreCorrupt", "{err}");
    }

    #[test]
    fn an_item_without_error_names_maps_nothing() {
        let task = parse_item("id", token_item()).unwrap().task.unwrap();
        assert!(task.error_names.is_empty());
    }

    #[test]
    fn the_stored_error_names_are_read_with_the_token() {
        let mut item = token_item();
        item.insert(
            ERROR_NAMES.to_owned(),
            names(&[("Redshift.StatementFailed", "Validation.NoSalesLoaded")]),
        );
        let task = parse_item("id", item).unwrap().task.unwrap();
        assert_eq!(
            task.error_names.apply("Redshift.StatementFailed"),
            "Validation.NoSalesLoaded"
        );
        assert_eq!(
            task.error_names.apply("Redshift.StatementAborted"),
            "Redshift.StatementAborted"
        );
    }

    #[test]
    fn error_names_that_are_not_a_map_of_strings_make_the_item_corrupt() {
        for bad in [
            s("Validation.NoSalesLoaded"),
            AttributeValue::M(HashMap::from([(
                "Redshift.StatementFailed".to_owned(),
                n(1),
            )])),
        ] {
            let mut item = token_item();
            item.insert(ERROR_NAMES.to_owned(), bad);
            let err = parse_item("id", item).unwrap_err();
            assert_eq!(err.name(), "TokenStoreCorrupt");
            assert!(err.to_string().contains("errorNames"), "{err}");
        }
    }

    #[test]
    fn error_names_are_stored_as_a_map_of_strings_and_not_at_all_when_empty() {
        assert_eq!(error_names(&ErrorNames::default()), None);
        let mapping: ErrorNames = [(
            "Redshift.StatementFailed".to_owned(),
            "Validation.NoSalesLoaded".to_owned(),
        )]
        .into_iter()
        .collect();
        assert_eq!(
            error_names(&mapping),
            Some(names(&[(
                "Redshift.StatementFailed",
                "Validation.NoSalesLoaded"
            )]))
        );
    }
}
