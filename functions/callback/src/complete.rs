//! Closing a waiting task once its token and its statement's terminal event have met: describe the
//! statement, then `SendTaskSuccess` or `SendTaskFailure`, exactly once in effect. The
//! reconciler's primitives built on it are in [`crate::statement`].

use std::error::Error as StdError;

use aws_sdk_redshiftdata::operation::describe_statement::{
    DescribeStatementError, DescribeStatementOutput,
};
use aws_sdk_redshiftdata::operation::get_statement_result::GetStatementResultOutput;
use aws_sdk_redshiftdata::types::StatementStatusString;
use aws_sdk_sfn::error::SdkError;
use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureError;
use aws_sdk_sfn::operation::send_task_heartbeat::SendTaskHeartbeatError;
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;
use thiserror::Error;
use tracing::{info, warn};

use crate::check::{self, CheckRecord, ResultPage, CHECK_FAILED, CHECK_RESULT_UNAVAILABLE};
use crate::config::TableSettings;
use crate::event::StatementState;
use crate::lineage::{End, Lineage};
use crate::store::{
    Outcome, RecordedEvent, RecordedTask, Rendezvous, Side, StoreError, TokenTable,
};
use crate::task::{StepFailure, StepResult};
use crate::throttle::{Throttling, ThrottlingVariants};

/// Step Functions' limits on `SendTaskFailure`.
pub const MAX_ERROR_CHARS: usize = 256;
pub use crate::check::MAX_CAUSE_CHARS;
// The error names and `truncate` live with the task input (which checks a step's `errors` mapping
// against them) so that the parsers build without the SDK (`--no-default-features`, the fuzz targets).
pub use crate::task::{truncate, STATEMENT_ABORTED, STATEMENT_FAILED, STATEMENT_NOT_FOUND};

type HttpResponse = aws_smithy_runtime_api::http::Response;
/// A statement's `DescribeStatement` answer, fetched before the claim or under it.
pub type Described =
    Result<DescribeStatementOutput, SdkError<DescribeStatementError, HttpResponse>>;
type BoxError = Box<dyn StdError + Send + Sync>;

#[derive(Debug, Error)]
pub enum CompleteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the Data API throttled {operation}")]
    RedshiftThrottled {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("the Data API refused {operation}")]
    RedshiftFailed {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("Step Functions throttled the task callback")]
    CallbackThrottled(#[source] BoxError),
    #[error("the task callback to Step Functions failed")]
    CallbackFailed(#[source] BoxError),
}

impl CompleteError {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Store(e) => e.name(),
            Self::RedshiftThrottled { .. } => "RedshiftThrottled",
            Self::RedshiftFailed { .. } => "RedshiftRequestFailed",
            Self::CallbackThrottled(_) => "CallbackThrottled",
            Self::CallbackFailed(_) => "CallbackFailed",
        }
    }

    /// Throttling (or a timeout) of DynamoDB, the Data API or Step Functions: worth trying later.
    pub fn is_throttling(&self) -> bool {
        match self {
            Self::Store(e) => e.is_throttling(),
            Self::RedshiftThrottled { .. } | Self::CallbackThrottled(_) => true,
            Self::RedshiftFailed { .. } | Self::CallbackFailed(_) => false,
        }
    }
}

/// What happened to the task on this delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The event is recorded; the submitter will complete the task when it stores the token.
    WaitingForToken,
    /// The token is recorded; the completer will complete the task when the event arrives.
    WaitingForEvent,
    /// A duplicate: the task was completed earlier.
    AlreadyCompleted,
    /// A duplicate: another delivery holds the claim and is completing it right now.
    ClaimedElsewhere,
    /// A retry's token replaced the one this delivery used, twice over; that attempt is settled
    /// by its own deliveries.
    Superseded,
    Succeeded,
    Failed,
    /// Step Functions says the task is already closed (timed out, gone, or token invalid).
    TaskAlreadyClosed,
}

impl Completion {
    pub(crate) fn outcome(self) -> Outcome {
        match self {
            Self::Succeeded => Outcome::Succeeded,
            Self::Failed => Outcome::Failed,
            _ => Outcome::TaskClosed,
        }
    }
}

/// Everything needed to close tasks.
#[derive(Debug, Clone)]
pub struct Completer {
    pub table: TokenTable,
    pub sfn: aws_sdk_sfn::Client,
    pub redshift_data: aws_sdk_redshiftdata::Client,
    /// Where the steps' OpenLineage events go ([`Lineage::OFF`] unless configured).
    pub lineage: Lineage,
}

/// The clients closing a task uses, borrowed from the function that closes it: the completion
/// logic for a function that holds them itself (the submitter) as well as for a [`Completer`].
#[derive(Debug, Clone, Copy)]
pub struct TaskClients<'a> {
    pub table: &'a TokenTable,
    pub sfn: &'a aws_sdk_sfn::Client,
    pub redshift_data: &'a aws_sdk_redshiftdata::Client,
    /// The closer emits the step's terminal OpenLineage event after closing the task.
    pub lineage: &'a Lineage,
}

/// What the statement did, from `DescribeStatement` (or, when its details are gone, the event).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    rows: i64,
    duration_ms: i64,
    error: Option<String>,
    failed_index: Option<u32>,
    failed_statement: Option<String>,
}

/// What one delivery does with the rendezvous item as its write left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Nothing to close (yet, or any more).
    Done(Completion),
    /// Both halves are there: claim the task and close it.
    Close {
        task: &'a RecordedTask,
        event: &'a RecordedEvent,
    },
}

/// Decides from the item alone, before any claim: completed, waiting for one half, or ready.
pub fn decide(rendezvous: &Rendezvous) -> Decision<'_> {
    match (&rendezvous.task, &rendezvous.event) {
        _ if rendezvous.completed => Decision::Done(Completion::AlreadyCompleted),
        (None, _) => Decision::Done(Completion::WaitingForToken),
        (_, None) => Decision::Done(Completion::WaitingForEvent),
        (Some(task), Some(event)) => Decision::Close { task, event },
    }
}

/// The callback that closes a task: `SendTaskSuccess` with the step's output, or
/// `SendTaskFailure` with an error name and cause within Step Functions' limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskCallback {
    Success { output: String },
    Failure { error: String, cause: String },
}

/// Builds the callback for the task of statement `id` from what the statement did: the pure part
/// of closing a task (no network), benchmarked in `benches/completer.rs`.
pub fn task_callback(
    id: &str,
    task: &RecordedTask,
    event: &RecordedEvent,
    report: Report,
) -> TaskCallback {
    closing_callback(id, task, event, report, None)
}

/// What a check's finished statement returned ([`TaskClients::read_check`]).
#[derive(Debug, Clone, PartialEq)]
pub enum CheckResult {
    /// Every page of `GetStatementResult`.
    Read(Vec<ResultPage>),
    /// The Data API no longer has the result (or never had it): the check cannot be decided.
    Unavailable(String),
}

/// [`task_callback`] for any step: a check's statement that finished is decided by its result
/// ([`crate::check::outcome`]); anything else exactly as an ordinary step's.
pub fn closing_callback(
    id: &str,
    task: &RecordedTask,
    event: &RecordedEvent,
    report: Report,
    check: Option<CheckResult>,
) -> TaskCallback {
    match event.state {
        StatementState::Finished => {
            let mut output = StepResult {
                step: task.step.clone(),
                statement_id: id.to_owned(),
                run_date: task.run_date.clone(),
                status: event.state.as_str().to_owned(),
                rows: report.rows,
                duration_ms: report.duration_ms,
                check: None,
            };
            if let (Some(stored), Some(result)) = (&task.check, check) {
                let record = match result {
                    CheckResult::Read(pages) => {
                        CheckRecord::from_result(&task.step, stored, &pages)
                            .map_err(|e| e.to_string())
                    }
                    CheckResult::Unavailable(reason) => Err(reason),
                };
                let mut record = match record {
                    Ok(record) => record,
                    Err(reason) => {
                        let cause = StepFailure {
                            step: task.step.clone(),
                            statement_id: id.to_owned(),
                            run_date: task.run_date.clone(),
                            status: event.state.as_str().to_owned(),
                            error: format!("the check's result cannot be read: {reason}"),
                            failed_statement_index: None,
                            failed_statement: Some(truncate(&stored.sql, MAX_CAUSE_CHARS / 2)),
                        };
                        return TaskCallback::Failure {
                            error: error_name(task, CHECK_RESULT_UNAVAILABLE),
                            cause: serde_json::to_string(&cause)
                                .expect("a StepFailure always serializes"),
                        };
                    }
                };
                record.statement_id = Some(id.to_owned());
                record.run_date = Some(task.run_date.clone());
                match check::outcome(record) {
                    check::Outcome::Fail { cause, .. } => {
                        return TaskCallback::Failure {
                            error: error_name(task, CHECK_FAILED),
                            cause,
                        }
                    }
                    check::Outcome::Pass { record } => {
                        // The output is the step's result plus the record, cut like a cause so
                        // that a warning never outgrows the state's payload.
                        let text = record.to_json_within(MAX_CAUSE_CHARS);
                        output.check =
                            Some(serde_json::from_str(&text).expect("the record reads back"));
                    }
                }
            }
            TaskCallback::Success {
                output: serde_json::to_string(&output).expect("a StepResult always serializes"),
            }
        }
        StatementState::Failed | StatementState::Aborted => {
            let (error, cause) = failure(id, task, event.state, report);
            TaskCallback::Failure { error, cause }
        }
    }
}

impl Completer {
    /// The clients every cold start builds once from the shared SDK configuration.
    pub fn new(aws: &aws_types::SdkConfig, settings: TableSettings) -> Self {
        Self {
            table: TokenTable::new(crate::aws::dynamodb(aws), settings),
            sfn: crate::aws::sfn(aws),
            redshift_data: crate::aws::redshift_data(aws),
            lineage: Lineage::OFF,
        }
    }

    /// This completer, emitting the steps' terminal OpenLineage events to `lineage`.
    pub fn with_lineage(self, lineage: Lineage) -> Self {
        Self { lineage, ..self }
    }

    /// The completion logic over this completer's clients.
    pub fn clients(&self) -> TaskClients<'_> {
        TaskClients {
            table: &self.table,
            sfn: &self.sfn,
            redshift_data: &self.redshift_data,
            lineage: &self.lineage,
        }
    }

    /// [`TaskClients::settle`] with this completer's clients.
    pub async fn settle(
        &self,
        rendezvous: &Rendezvous,
        side: Side,
    ) -> Result<Completion, CompleteError> {
        self.clients().settle(rendezvous, side).await
    }
}

impl TaskClients<'_> {
    /// Completes the task if this write brought both halves together, and otherwise says why not.
    /// When a retry's token replaced the one used while completing, the item is read again and
    /// settled once more with the current token.
    pub async fn settle(
        &self,
        rendezvous: &Rendezvous,
        side: Side,
    ) -> Result<Completion, CompleteError> {
        if let Some(completion) = self.settle_once(rendezvous, side).await? {
            return Ok(completion);
        }
        self.settle_again(rendezvous.statement_id.as_str(), side)
            .await
    }

    /// A retry's token replaced the one this delivery closed with: the item is read again and
    /// settled once more with the current token.
    async fn settle_again(&self, id: &str, side: Side) -> Result<Completion, CompleteError> {
        info!(
            statement_id = id,
            "a retry's token replaced the one used; settling again with the current token"
        );
        match self.table.read(id).await? {
            None => Ok(Completion::AlreadyCompleted),
            Some(current) => Ok(self
                .settle_once(&current, side)
                .await?
                .unwrap_or(Completion::Superseded)),
        }
    }

    /// Closes the task of `rendezvous`, whose completion claim the caller's own write already took
    /// ([`TokenTable::record_task_settled`]: the submitter's wait), with the statement's details
    /// `described` while that write was on its way: the general path's claim and
    /// `DescribeStatement` are not made again. The rest is [`settle`](Self::settle)'s: the
    /// callback, the completion mark, the lineage events, and a retry's token that replaced this one
    /// settled again.
    pub async fn settle_claimed(
        &self,
        rendezvous: &Rendezvous,
        side: Side,
        described: Described,
    ) -> Result<Completion, CompleteError> {
        let id = rendezvous.statement_id.as_str();
        let (task, event) = match decide(rendezvous) {
            Decision::Done(completion) => return Ok(completion),
            Decision::Close { task, event } => (task, event),
        };
        if let Some(completion) = self
            .close_claimed(id, task, event, side, Some(described))
            .await?
        {
            return Ok(completion);
        }
        self.settle_again(id, side).await
    }

    /// Closes the task of `rendezvous`, which the caller's own write already marked completed with
    /// the outcome its statement's state decides ([`WaitWrite::Mark`](crate::store::WaitWrite):
    /// the submitter's wait on an ordinary step), with the statement's details `described` while
    /// that write was on its way. The callback is the only call left before the invocation
    /// answers. When Step Functions had already closed the task, the mark is corrected to
    /// `TASK_CLOSED`. When the callback fails, the mark is taken back ([`TokenTable::unmark`]):
    /// the task waits again, as a parked token does, for its status event or the reconciler
    /// (`WaitingForEvent`); only when that write fails too is its error returned (the invocation
    /// fails, `TokenStoreThrottled` is retried by the step, and the retry's token write replaces the
    /// token and removes its mark).
    pub async fn settle_premarked(
        &self,
        rendezvous: &Rendezvous,
        side: Side,
        described: Described,
    ) -> Result<Completion, CompleteError> {
        let id = rendezvous.statement_id.as_str();
        let (Some(task), Some(event)) = (&rendezvous.task, &rendezvous.event) else {
            // The write stores both halves; an item without them is not this write's.
            return Ok(Completion::AlreadyCompleted);
        };
        match self.close(id, task, event, Some(described)).await {
            Ok((completion, end)) => {
                let kept = match completion {
                    Completion::TaskAlreadyClosed => {
                        self.finish(id, task, completion.outcome(), side, None)
                            .await
                    }
                    _ => true,
                };
                info!(statement_id = id, step = %task.step, outcome = completion.outcome().as_str(),
                      completed_by = side.as_str(), "task completed");
                if let (true, Some(end)) = (kept, end) {
                    self.lineage.ran(task.lineage.as_ref(), &end).await;
                }
                Ok(completion)
            }
            Err(err) => match self.table.unmark(id, &task.token).await {
                // Only a throttled or timed-out callback is left to the event or the reconciler:
                // any other error would meet them too, so it is returned (the mark is back off).
                Ok(()) if !err.is_throttling() => Err(err),
                Ok(()) => {
                    warn!(statement_id = id, step = %task.step, error = %err, error_type = err.name(),
                          "the callback failed; the task waits again for its status event or the reconciler");
                    Ok(Completion::WaitingForEvent)
                }
                Err(unmark) => {
                    // The write is what left the item wrong, so its error is the one reported:
                    // `TokenStoreThrottled` is retried by the step, and the retry's token write
                    // removes this mark.
                    warn!(statement_id = id, error = %err, error_type = err.name(),
                          "the callback failed and its completion mark could not be taken back");
                    Err(CompleteError::Store(unmark))
                }
            },
        }
    }

    /// `None` when the token was replaced while the task was being completed.
    async fn settle_once(
        &self,
        rendezvous: &Rendezvous,
        side: Side,
    ) -> Result<Option<Completion>, CompleteError> {
        let id = rendezvous.statement_id.as_str();
        let (task, event) = match decide(rendezvous) {
            Decision::Done(completion) => return Ok(Some(completion)),
            Decision::Close { task, event } => (task, event),
        };
        if !self.table.claim(id, &task.token).await? {
            info!(statement_id = id, step = %task.step, token = %task.token.fingerprint(),
                  "task already completed, being completed by another delivery, or its token replaced");
            return Ok(Some(Completion::ClaimedElsewhere));
        }
        self.close_claimed(id, task, event, side, None).await
    }

    /// Under the claim: the callback, then the completion mark and the lineage events; the claim
    /// given back when the callback failed. `None` when the token was replaced meanwhile.
    async fn close_claimed(
        &self,
        id: &str,
        task: &RecordedTask,
        event: &RecordedEvent,
        side: Side,
        described: Option<Described>,
    ) -> Result<Option<Completion>, CompleteError> {
        match self.close(id, task, event, described).await {
            Ok((completion, end)) => {
                let marked = self
                    .finish(id, task, completion.outcome(), side, None)
                    .await;
                info!(statement_id = id, step = %task.step, outcome = completion.outcome().as_str(),
                      completed_by = side.as_str(), "task completed");
                // The task is closed: only now the lineage events, from the one delivery that
                // won the claim and marked the item (a loser returned above; an unmarked close
                // is settled again with the retry's token, which emits).
                if let (true, Some(end)) = (marked, end) {
                    self.lineage.ran(task.lineage.as_ref(), &end).await;
                }
                Ok(marked.then_some(completion))
            }
            Err(err) => {
                self.give_back(id, task).await;
                Err(err)
            }
        }
    }

    /// Records the outcome for `task`'s token; `false` when a retry's token replaced it.
    pub(crate) async fn finish(
        &self,
        id: &str,
        task: &RecordedTask,
        outcome: Outcome,
        side: Side,
        execution_status: Option<&str>,
    ) -> bool {
        match self
            .table
            .mark_completed(id, &task.token, outcome, side, execution_status)
            .await
        {
            Ok(marked) => marked,
            Err(err) => {
                // The task is closed either way; a redelivery would only meet a closed task.
                warn!(statement_id = id, error = %err, "task closed but not marked completed");
                true
            }
        }
    }

    pub(crate) async fn give_back(&self, id: &str, task: &RecordedTask) {
        if let Err(release) = self.table.release(id, &task.token).await {
            warn!(statement_id = id, error = %release, "could not release the claim; it expires by itself");
        }
    }

    async fn close(
        &self,
        id: &str,
        task: &RecordedTask,
        event: &RecordedEvent,
        described: Option<Described>,
    ) -> Result<(Completion, Option<End>), CompleteError> {
        let described = match described {
            Some(described) => described,
            None => self.describe(id).await,
        };
        let (report, written) = self.report(id, event, described)?;
        let (duration_ms, rows) = (report.duration_ms, report.rows);
        // Lineage off: not even the end is built.
        let end = self
            .lineage
            .is_on()
            .then(|| lineage_end(event.state, &report, written));
        let check = match (&task.check, event.state) {
            (Some(_), StatementState::Finished) => Some(self.read_check(id).await?),
            _ => None,
        };
        let token = task.token.expose();
        let callback = closing_callback(id, task, event, report, check);
        let check_metric = check_metric(task, &callback);
        let sent = match callback {
            TaskCallback::Success { output } => self
                .sfn
                .send_task_success()
                .task_token(token)
                .output(output)
                .send()
                .await
                .map(|_| Completion::Succeeded)
                .or_else(callback_error),
            TaskCallback::Failure { error, cause } => self
                .sfn
                .send_task_failure()
                .task_token(token)
                .error(error)
                .cause(cause)
                .send()
                .await
                .map(|_| Completion::Failed)
                .or_else(callback_error),
        }?;
        let end = match sent {
            Completion::TaskAlreadyClosed => end.map(|_| End::Abort {
                message:
                    "Step Functions had already closed the task (timed out, or the execution ended)"
                        .into(),
            }),
            _ => end,
        };
        match sent {
            Completion::TaskAlreadyClosed => {
                warn!(statement_id = id, step = %task.step, "Step Functions says the task is already closed");
            }
            Completion::Succeeded | Completion::Failed => {
                crate::metrics::step_closed(
                    &task.step,
                    sent == Completion::Succeeded,
                    duration_ms.max(0) as u64,
                    rows.max(0) as u64,
                );
                if let Some((violations, warned)) = check_metric {
                    crate::metrics::check_closed(&task.step, violations, warned);
                    if violations > 0 {
                        info!(statement_id = id, check = %task.step, violations, warned,
                              "check found violations");
                    }
                }
            }
            _ => {}
        }
        Ok((sent, end))
    }

    /// Every page of a finished check's result (`GetStatementResult` of its one statement,
    /// `<id>:1`, followed through `NextToken`). A result the Data API no longer has is
    /// [`CheckResult::Unavailable`]; throttling and other failures are errors, tried again later.
    pub async fn read_check(&self, id: &str) -> Result<CheckResult, CompleteError> {
        let sub = format!("{id}:1");
        let mut pages = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let answer = self
                .redshift_data
                .get_statement_result()
                .id(&sub)
                .set_next_token(next.take())
                .send()
                .await;
            let out = match answer {
                Ok(out) => out,
                Err(err) => match err.as_service_error() {
                    Some(e) if e.is_resource_not_found_exception() => {
                        return Ok(CheckResult::Unavailable(
                            e.meta().message().unwrap_or("result not found").to_owned(),
                        ))
                    }
                    _ => return Err(redshift_error("GetStatementResult", err)),
                },
            };
            pages.push(result_page(&out));
            match out.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(CheckResult::Read(pages)),
            }
        }
    }

    /// What the statement did and, while lineage is on, the rows each table was written
    /// ([`rows_written`]).
    /// `DescribeStatement` of `id`, as [`Self::report`] reads it.
    pub async fn describe(&self, id: &str) -> Described {
        self.redshift_data.describe_statement().id(id).send().await
    }

    fn report(
        &self,
        id: &str,
        event: &RecordedEvent,
        described: Described,
    ) -> Result<(Report, crate::lineage::RowsWritten), CompleteError> {
        match described {
            Ok(described) => Ok((
                Report::from_described(&described, event),
                self.lineage.rows_written(&described),
            )),
            Err(err) => match err.as_service_error() {
                Some(e) if e.is_resource_not_found_exception() || e.is_validation_exception() => {
                    warn!(statement_id = id, error = %e, "statement details unavailable; completing from the event alone");
                    Ok((
                        Report {
                            rows: event.rows.unwrap_or(0),
                            duration_ms: 0,
                            error: (event.state != StatementState::Finished).then(|| {
                                format!(
                                    "statement details unavailable: {}",
                                    e.meta().message().unwrap_or("not found")
                                )
                            }),
                            failed_index: None,
                            failed_statement: None,
                        },
                        Default::default(),
                    ))
                }
                _ => Err(describe_error(err)),
            },
        }
    }
}

/// One `GetStatementResult` page as the check's pure logic reads it: column names, and each field
/// as JSON (a long or double as a number, a string, a boolean, null; a blob as base64 text).
pub fn result_page(out: &GetStatementResultOutput) -> ResultPage {
    use aws_sdk_redshiftdata::types::Field;
    let columns = out
        .column_metadata()
        .iter()
        .map(|c| c.name().or(c.label()).unwrap_or_default().to_owned())
        .collect();
    let records = out
        .records()
        .iter()
        .map(|record| {
            record
                .iter()
                .map(|field| match field {
                    Field::IsNull(_) => serde_json::Value::Null,
                    Field::BooleanValue(b) => serde_json::Value::Bool(*b),
                    Field::LongValue(n) => serde_json::Value::from(*n),
                    Field::DoubleValue(x) => serde_json::Number::from_f64(*x)
                        .map_or_else(|| serde_json::Value::String(x.to_string()), Into::into),
                    Field::StringValue(text) => serde_json::Value::String(text.clone()),
                    Field::BlobValue(blob) => {
                        serde_json::Value::String(aws_smithy_types::base64::encode(blob.as_ref()))
                    }
                    _ => serde_json::Value::Null,
                })
                .collect()
        })
        .collect();
    ResultPage { columns, records }
}

/// The check metric of a callback about to be sent: (violations, warned), for a check step whose
/// statement finished and was read.
fn check_metric(task: &RecordedTask, callback: &TaskCallback) -> Option<(u64, bool)> {
    task.check.as_ref()?;
    match callback {
        TaskCallback::Success { output } => {
            let result: StepResult = serde_json::from_str(output).ok()?;
            let record = result.check?;
            Some((record.violations, record.violations > 0))
        }
        TaskCallback::Failure { error: _, cause } => {
            let record: CheckRecord = serde_json::from_str(cause).ok()?;
            Some((record.violations, false))
        }
    }
}

pub(crate) fn redshift_error<E>(
    operation: &'static str,
    err: SdkError<E, HttpResponse>,
) -> CompleteError
where
    E: ThrottlingVariants + StdError + Send + Sync + 'static,
{
    let throttled = Throttling::REDSHIFT_DATA.matches(&err);
    let source = Box::new(err);
    if throttled {
        CompleteError::RedshiftThrottled { operation, source }
    } else {
        CompleteError::RedshiftFailed { operation, source }
    }
}

pub(crate) fn describe_error(err: SdkError<DescribeStatementError, HttpResponse>) -> CompleteError {
    redshift_error("DescribeStatement", err)
}

impl Report {
    /// Rows, duration and, for a failed batch, the failing sub-statement; the event's row count
    /// when the Data API reports none.
    pub fn from_described(described: &DescribeStatementOutput, event: &RecordedEvent) -> Report {
        report_from(described, event)
    }
}

fn report_from(described: &DescribeStatementOutput, event: &RecordedEvent) -> Report {
    let subs = described.sub_statements();
    let rows = if subs.is_empty() {
        described.result_rows().max(0)
    } else {
        subs.iter().map(|s| s.result_rows().max(0)).sum()
    };
    let failed = subs
        .iter()
        .enumerate()
        .find(|(_, s)| s.status() == Some(&StatementStatusString::Failed))
        .or_else(|| {
            subs.iter()
                .enumerate()
                .find(|(_, s)| s.status() == Some(&StatementStatusString::Aborted))
        });
    let failed_index = failed.map(|(position, s)| {
        s.id()
            .rsplit_once(':')
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(position as u32 + 1)
    });
    let error = described
        .error()
        .or_else(|| failed.and_then(|(_, s)| s.error()))
        .map(str::to_owned);
    Report {
        rows: if rows == 0 {
            event.rows.unwrap_or(0)
        } else {
            rows
        },
        duration_ms: described.duration().max(0) / 1_000_000,
        error,
        failed_index,
        failed_statement: failed
            .and_then(|(_, s)| s.query_string())
            .map(str::to_owned),
    }
}

/// The rows each table was written by the batch: every sub-statement that writes exactly one
/// table (`redshift_sql::lineage::analyze` of its text, as the Data API ran it) adds its
/// `ResultRows` to that table; statements writing none (a `SELECT`), a temporary table or several
/// tables add nothing. Only while lineage is on.
pub fn rows_written(described: &DescribeStatementOutput) -> crate::lineage::RowsWritten {
    let mut written = crate::lineage::RowsWritten::new();
    for sub in described.sub_statements() {
        let (Some(sql), rows) = (sub.query_string(), sub.result_rows()) else {
            continue;
        };
        if rows < 0 {
            continue;
        }
        let analysis = redshift_sql::lineage::analyze(sql);
        if let [table] = analysis.writes.iter().collect::<Vec<_>>()[..] {
            *written.entry(table.as_str().to_owned()).or_insert(0) += rows;
        }
    }
    written
}

/// How the step's OpenLineage run ended, from the statement's outcome: the rows written per
/// table on success, the SQL error (never the statement text) on failure.
pub fn lineage_end(
    state: StatementState,
    report: &Report,
    written: crate::lineage::RowsWritten,
) -> End {
    let message = || {
        report.error.clone().unwrap_or_else(|| match state {
            StatementState::Aborted => "the statement was aborted".to_owned(),
            _ => "the statement failed".to_owned(),
        })
    };
    match state {
        StatementState::Finished => End::Complete { rows: written },
        StatementState::Failed => End::Fail { message: message() },
        StatementState::Aborted => End::Abort { message: message() },
    }
}

/// The `SendTaskFailure` error name for `name`, the outcome of `task`'s statement: the step's own
/// name when its `errors` mapping has one, within Step Functions' limit. Every `SendTaskFailure`
/// takes its name from here, whichever function closes the task.
pub fn error_name(task: &RecordedTask, name: &str) -> String {
    truncate(task.error_names.apply(name), MAX_ERROR_CHARS)
}

/// The `SendTaskFailure` error name and cause, within Step Functions' limits.
fn failure(
    id: &str,
    task: &RecordedTask,
    state: StatementState,
    report: Report,
) -> (String, String) {
    let (name, default_error) = match state {
        StatementState::Aborted => (STATEMENT_ABORTED, "the statement was aborted"),
        _ => (STATEMENT_FAILED, "the statement failed"),
    };
    let mut cause = StepFailure {
        step: task.step.clone(),
        statement_id: id.to_owned(),
        run_date: task.run_date.clone(),
        status: state.as_str().to_owned(),
        error: report.error.unwrap_or_else(|| default_error.to_owned()),
        failed_statement_index: report.failed_index,
        failed_statement: report.failed_statement,
    };
    loop {
        let text = serde_json::to_string(&cause).expect("a StepFailure always serializes");
        if text.chars().count() <= MAX_CAUSE_CHARS {
            return (error_name(task, name), text);
        }
        // Shorten the longest field and try again; every round at least halves one of them.
        let statement_len = cause
            .failed_statement
            .as_ref()
            .map_or(0, |s| s.chars().count());
        if statement_len >= cause.error.chars().count() && statement_len > 0 {
            cause.failed_statement = cause
                .failed_statement
                .map(|s| truncate(&s, statement_len / 2));
        } else {
            cause.error = truncate(&cause.error, cause.error.chars().count() / 2);
        }
    }
}

/// The callback errors that mean "this task is already closed".
pub(crate) trait ClosedTask {
    fn task_is_closed(&self) -> bool;
}

impl ClosedTask for SendTaskSuccessError {
    fn task_is_closed(&self) -> bool {
        self.is_task_timed_out() || self.is_task_does_not_exist() || self.is_invalid_token()
    }
}

impl ClosedTask for SendTaskFailureError {
    fn task_is_closed(&self) -> bool {
        self.is_task_timed_out() || self.is_task_does_not_exist() || self.is_invalid_token()
    }
}

impl ClosedTask for SendTaskHeartbeatError {
    fn task_is_closed(&self) -> bool {
        self.is_task_timed_out() || self.is_task_does_not_exist() || self.is_invalid_token()
    }
}

/// `Ok(())` when the error says the task is already closed; otherwise the error, classified.
pub(crate) fn closed_or_error<E>(err: SdkError<E, HttpResponse>) -> Result<(), CompleteError>
where
    E: ClosedTask + ThrottlingVariants + StdError + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(e) if e.err().task_is_closed() => Ok(()),
        _ if Throttling::STEP_FUNCTIONS_CALLBACK.matches(&err) => {
            Err(CompleteError::CallbackThrottled(Box::new(err)))
        }
        _ => Err(CompleteError::CallbackFailed(Box::new(err))),
    }
}

pub(crate) fn callback_error<E>(err: SdkError<E, HttpResponse>) -> Result<Completion, CompleteError>
where
    E: ClosedTask + ThrottlingVariants + StdError + Send + Sync + 'static,
{
    closed_or_error(err).map(|()| Completion::TaskAlreadyClosed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{ErrorNames, TaskInput, TaskToken};

    fn task() -> RecordedTask {
        RecordedTask {
            token: TaskToken::new("token"),
            step: "LoadItem".into(),
            run_date: "2021-06-26".into(),
            execution_name: Some("run-1".into()),
            attempt: 0,
            error_names: ErrorNames::default(),
            lineage: None,
            check: None,
        }
    }

    #[test]
    fn causes_stay_within_the_step_functions_limit() {
        let report = Report {
            rows: 0,
            duration_ms: 1,
            error: Some("\"".repeat(40_000)),
            failed_index: Some(3),
            failed_statement: Some("\u{1}".repeat(90_000)),
        };
        let (error, cause) = failure("id", &task(), StatementState::Failed, report);
        assert_eq!(error, STATEMENT_FAILED);
        assert!(cause.chars().count() <= MAX_CAUSE_CHARS);
        let parsed: StepFailure = serde_json::from_str(&cause).unwrap();
        assert_eq!(parsed.failed_statement_index, Some(3));
        assert_eq!(parsed.step, "LoadItem");
    }

    fn report() -> Report {
        Report {
            rows: 0,
            duration_ms: 1,
            error: Some("ERROR: relation \"stg_item\" does not exist".into()),
            failed_index: Some(2),
            failed_statement: Some("insert into item select * from stg_item".into()),
        }
    }

    fn mapped(errors: serde_json::Value) -> RecordedTask {
        let input = serde_json::json!({
            "taskToken": "token", "step": "LoadItem", "script": "load_item.sql",
            "runDate": "2021-06-26", "executionName": "run-1",
            "executionStartTime": "2021-06-27T06:00:00.000Z",
            "stateEnteredTime": "2021-06-27T06:00:00.456Z", "errors": errors,
        });
        RecordedTask {
            error_names: TaskInput::from_json(input)
                .unwrap()
                .validate()
                .unwrap()
                .error_names,
            ..task()
        }
    }

    #[test]
    fn without_a_mapping_the_failure_name_and_cause_are_exactly_as_before() {
        let (error, cause) = failure("id", &task(), StatementState::Failed, report());
        assert_eq!(error, "Redshift.StatementFailed");
        assert_eq!(
            cause,
            r#"{"step":"LoadItem","statementId":"id","runDate":"2021-06-26","status":"FAILED","error":"ERROR: relation \"stg_item\" does not exist","failedStatementIndex":2,"failedStatement":"insert into item select * from stg_item"}"#
        );
        let (error, _) = failure("id", &task(), StatementState::Aborted, report());
        assert_eq!(error, "Redshift.StatementAborted");
        assert_eq!(
            error_name(&task(), STATEMENT_NOT_FOUND),
            "Redshift.StatementNotFound"
        );
    }

    #[test]
    fn a_mapped_error_name_replaces_the_original_and_the_cause_stays_the_same() {
        let step = mapped(serde_json::json!({
            "Redshift.StatementFailed": "Validation.NoSalesLoaded",
            "Redshift.StatementNotFound": "Pipeline.StatementExpired",
        }));
        let (plain_error, plain_cause) = failure("id", &task(), StatementState::Failed, report());
        let (error, cause) = failure("id", &step, StatementState::Failed, report());
        assert_eq!(error, "Validation.NoSalesLoaded");
        assert_ne!(error, plain_error);
        assert_eq!(cause, plain_cause, "the cause is never changed");
        let (aborted, _) = failure("id", &step, StatementState::Aborted, report());
        assert_eq!(aborted, STATEMENT_ABORTED, "an unmapped name stays");
        assert_eq!(
            error_name(&step, STATEMENT_NOT_FOUND),
            "Pipeline.StatementExpired"
        );
        let callback = task_callback(
            "id",
            &step,
            &RecordedEvent {
                state: StatementState::Failed,
                rows: None,
            },
            report(),
        );
        assert!(
            matches!(callback, TaskCallback::Failure { ref error, .. } if error == "Validation.NoSalesLoaded")
        );
    }

    #[test]
    fn a_check_whose_result_cannot_be_read_fails_as_unavailable_and_never_passes() {
        let stored = crate::check::StoredCheck {
            severity: crate::check::Severity::Warn,
            max_rows: 10,
            sql: "select 1 where false".into(),
        };
        let task = RecordedTask {
            check: Some(stored),
            ..task()
        };
        let finished = RecordedEvent {
            state: StatementState::Finished,
            rows: Some(0),
        };
        let done = || Report {
            rows: 0,
            duration_ms: 1,
            error: None,
            failed_index: None,
            failed_statement: None,
        };
        let gone = CheckResult::Unavailable("Query does not have result".into());
        let wrong_shape = CheckResult::Read(vec![ResultPage {
            columns: vec!["a".into()],
            records: vec![vec![serde_json::json!(1)]],
        }]);
        for result in [gone, wrong_shape] {
            let callback = closing_callback("id", &task, &finished, done(), Some(result));
            let TaskCallback::Failure { error, cause } = callback else {
                panic!("an unreadable check must not pass")
            };
            assert_eq!(error, CHECK_RESULT_UNAVAILABLE);
            let cause: StepFailure = serde_json::from_str(&cause).unwrap();
            assert!(cause.error.contains("cannot be read"), "{}", cause.error);
            assert_eq!(
                cause.failed_statement.as_deref(),
                Some("select 1 where false")
            );
        }
        // a passing read of the same check: success with the record
        let empty = CheckResult::Read(vec![ResultPage::default()]);
        let TaskCallback::Success { output } =
            closing_callback("id", &task, &finished, done(), Some(empty))
        else {
            panic!("no violations pass")
        };
        let output: StepResult = serde_json::from_str(&output).unwrap();
        assert_eq!(output.check.map(|c| c.violations), Some(0));
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
