//! The reconciler: the safety net under the callback protocol. Redshift Data API status events and
//! Step Functions execution events are best effort, so on a schedule it looks at every task that
//! has waited longer than a grace period (through the sparse pending index, never a scan) and
//!
//! - completes it from `DescribeStatement` when the statement ended but its event was lost;
//! - sends a heartbeat when the statement still runs, and cancels the statement and closes the
//!   item when Step Functions says nobody waits for it any more;
//! - fails it with `Redshift.StatementNotFound` when the Data API no longer knows the statement.
//!
//! A closed token is not a stopped run: a Task attempt that failed after storing its token is
//! retried, and the retry re-attaches to the same statement with a new token. So a closed token
//! cancels its statement only when `DescribeExecution` says the execution no longer runs, when the
//! execution was redriven after the token was stored, or when no retry re-attached within the step
//! timeout (`STEP_TIMEOUT_SECONDS`, at least [`MIN_REATTACH_WAIT_SECONDS`]); otherwise the item is
//! left pending for the retry and counted as `ClosedTokenOfRunningExecution`.
//!
//! When an execution is aborted, times out or fails, it cancels the running statements that
//! attempt of the execution left (the items submitted before the event's `stopDate`; later ones
//! belong to a redrive) and closes their items. Every completion goes through the shared
//! rendezvous (`etl_callback::store`, `etl_callback::complete`, `etl_callback::statement`), so
//! nothing is ever completed twice.
//!
//! When a run lock is configured (`RUN_LOCK_TABLE`, see [`lock`]), it also releases the lock held
//! by an execution that ended without releasing it: on its execution-ended event when
//! `DescribeExecution` says the execution still has ended, and on the schedule for every holder
//! whose execution is no longer running (its event was lost). A redriven attempt holds its slot
//! under its own element (`<ARN>#<redrive count>`), so a late event after a redrive gives back only
//! the slot of the attempt that is over, never the redriven attempt's (see [`lock`]).
//!
//! With lineage on, every ended execution (SUCCEEDED too: its rule matches it only then) sends the
//! execution's own OpenLineage run after the event was handled (`START` at its `startDate`, the
//! terminal event at its `stopDate`); a SUCCEEDED event does nothing else (docs/lineage.md).
//!
//! A task that hits throttling (DynamoDB, the Data API, Step Functions) is skipped, counted as
//! `Throttled` and looked at again on the next run. The invocation returns Ok with the counts,
//! unless listing the pending tasks failed or every task examined failed with an error that is not
//! throttling (`ReconcileFailed`: something is broken for all of them, such as permissions).
//!
//! This file is the orchestration (the sweep, the execution-ended handling, the run lock's
//! releases and the counts); [`config`] reads the environment, [`trigger`] tells the events apart
//! and checks them, [`execution`] asks Step Functions about an execution, [`lock`] is the run lock
//! and [`metrics`] publishes the counts.

use etl_callback::complete::{CompleteError, Completion, TaskClients};
use etl_callback::statement::{Closing, Heartbeat, StatementStatus};
use etl_callback::store::{
    self, PendingFilter, RecordedTask, Rendezvous, Side, StoreError, TokenTable,
};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use thiserror::Error;
use tracing::{error, info, warn};

pub mod config;
pub mod execution;
pub mod lock;
pub mod metrics;
pub mod trigger;

pub use config::{Config, MIN_REATTACH_WAIT_SECONDS};
pub use metrics::METRICS_NAMESPACE;
pub use trigger::{
    parse_trigger, ExecutionStatusChange, Trigger, ENDED_STATUSES, EXECUTION_DETAIL_TYPE,
    EXECUTION_SOURCE, SCHEDULE_DETAIL_TYPE, SCHEDULE_SOURCES, SUCCEEDED,
};

use etl_callback::task::run_lock_holder;
use execution::{DescribeError, Execution, ExecutionState};
use lock::{LockError, Release, RunLock};

/// How many pending tasks (and run lock holders) one invocation looks at at once. Each takes a few
/// sequential calls (DescribeStatement, then a heartbeat or a completion); one at a time, a backlog
/// of a hundred took longer than a step's heartbeat interval under load.
pub const CONCURRENCY: usize = 8;

#[derive(Debug, Error)]
pub enum ReconcileError {
    #[error("event is not a schedule or a Step Functions execution status change: {0}")]
    Malformed(String),
    #[error("event has source {event_source:?} and detail-type {detail_type:?}; expected a schedule or {EXECUTION_SOURCE:?} / {EXECUTION_DETAIL_TYPE:?}")]
    UnexpectedEvent {
        event_source: String,
        detail_type: String,
    },
    #[error("execution {execution} has status {status}; only ABORTED, TIMED_OUT and FAILED executions leave tasks to close (and SUCCEEDED ones a lineage run)")]
    UnexpectedExecutionStatus { execution: String, status: String },
    #[error(
        "execution {execution} belongs to state machine {state_machine_arn}, not to {expected}"
    )]
    ForeignExecution {
        execution: String,
        state_machine_arn: String,
        expected: String,
    },
    #[error("could not list the pending tasks")]
    Pending(#[source] StoreError),
    #[error("every one of the {failed} pending tasks examined failed; the first error")]
    AllFailed {
        failed: u64,
        #[source]
        first: TaskError,
    },
    #[error("could not release the run lock")]
    RunLock(#[source] LockError),
}

impl ReconcileError {
    /// The stable error name in the logs and the async invocation's failure record.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "MalformedEvent",
            Self::UnexpectedEvent { .. } => "UnexpectedEvent",
            Self::UnexpectedExecutionStatus { .. } => "UnexpectedExecutionStatus",
            Self::ForeignExecution { .. } => "ForeignExecution",
            Self::Pending(e) => e.name(),
            Self::AllFailed { .. } => "ReconcileFailed",
            Self::RunLock(e) => e.name(),
        }
    }
}

/// Why one pending task was not reconciled this round.
#[derive(Debug, Error)]
pub enum TaskError {
    #[error(transparent)]
    Complete(#[from] CompleteError),
    #[error(transparent)]
    Describe(#[from] DescribeError),
}

impl From<StoreError> for TaskError {
    fn from(err: StoreError) -> Self {
        Self::Complete(CompleteError::Store(err))
    }
}

impl TaskError {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Complete(e) => e.name(),
            Self::Describe(e) => e.name(),
        }
    }

    /// Throttling (or a timeout): the task is looked at again on the next run.
    pub fn is_throttling(&self) -> bool {
        match self {
            Self::Complete(e) => e.is_throttling(),
            Self::Describe(e) => e.is_throttling(),
        }
    }
}

/// What one invocation did; the same counts go to CloudWatch as metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// `schedule` or `execution`.
    pub trigger: String,
    /// Pending tasks looked at.
    pub examined: u64,
    /// Tasks completed from `DescribeStatement` because their status event never arrived.
    pub lost_events_recovered: u64,
    pub heartbeats: u64,
    /// Statements `CancelStatement` stopped.
    pub cancellations: u64,
    /// Items the reconciler marked TASK_CLOSED.
    pub tasks_closed: u64,
    /// Tasks failed with `Redshift.StatementNotFound`.
    pub statements_not_found: u64,
    /// Tasks skipped this round because DynamoDB, the Data API or Step Functions throttled.
    pub throttled: u64,
    /// Tasks completed or being completed by someone else meanwhile.
    pub skipped: u64,
    /// Tasks whose handling failed with an error that is not throttling.
    pub errors: u64,
    /// Run lock holders released: the ended execution's own, or stale ones found on the schedule.
    pub locks_released: u64,
    /// Tasks whose token Step Functions says is closed while their execution still runs (a
    /// retry is about to re-attach): their statement was left running and the item pending.
    pub closed_tokens_of_running_executions: u64,
}

/// What was done for one pending task, for its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Recovered(Completion),
    Heartbeat,
    Closed {
        cancelled: bool,
    },
    NotFound(Completion),
    Skipped(&'static str),
    /// The token is closed but its execution still runs: left for the retry to re-attach.
    KeptForRetry,
}

/// What to do about a running statement whose token Step Functions says is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedToken {
    /// The execution still runs and the token is recent: a retry of the Task is about to
    /// re-attach to the statement with a new token. Leave the statement running, the item pending.
    KeepForRetry,
    /// Nobody will wait for the statement again: cancel it and mark the item TASK_CLOSED.
    Cancel(&'static str),
}

/// Decides about a closed token of a running statement from `DescribeExecution`, the item's
/// `submittedAt` (when its latest token was stored; a re-attaching retry rewrites it), the clock
/// and how long a retry may take to re-attach ([`Config::reattach_wait_seconds`]).
pub fn closed_token(
    execution: &Execution,
    submitted_at: Option<i64>,
    now: i64,
    reattach_wait_seconds: i64,
) -> ClosedToken {
    match &execution.state {
        ExecutionState::Ended(_) => return ClosedToken::Cancel("execution ended"),
        ExecutionState::DoesNotExist => return ClosedToken::Cancel("execution does not exist"),
        ExecutionState::Live(_) => {}
    }
    let Some(submitted_at) = submitted_at else {
        return ClosedToken::Cancel("no submit time recorded");
    };
    if execution
        .redriven_at
        .is_some_and(|redriven| redriven > submitted_at)
    {
        // A redrive runs the failed Task again as a new entry (a new statement); the attempt
        // that stored this token is over.
        return ClosedToken::Cancel("token stored before the execution was redriven");
    }
    if now.saturating_sub(submitted_at) > reattach_wait_seconds {
        return ClosedToken::Cancel("no retry re-attached within the step timeout");
    }
    ClosedToken::KeepForRetry
}

/// The reconciler and the clients it uses: the token table, Step Functions (heartbeats, callbacks,
/// `DescribeExecution`) and the Data API; the run lock is reached through the table's DynamoDB
/// client and Step Functions.
pub struct Reconciler {
    pub config: Config,
    pub table: TokenTable,
    pub sfn: aws_sdk_sfn::Client,
    pub redshift_data: aws_sdk_redshiftdata::Client,
    /// Where the terminal OpenLineage events of the tasks it closes go.
    pub lineage: etl_callback::lineage::Lineage,
}

impl Reconciler {
    /// Handles one EventBridge delivery and publishes its counts as metrics.
    pub async fn handle(&self, payload: serde_json::Value) -> Result<Summary, ReconcileError> {
        let trigger = parse_trigger(payload)?;
        if let Trigger::ExecutionEnded(execution) = &trigger {
            if execution.state_machine_arn != self.config.state_machine_arn {
                return Err(ReconcileError::ForeignExecution {
                    execution: execution.name.clone(),
                    state_machine_arn: execution.state_machine_arn.clone(),
                    expected: self.config.state_machine_arn.clone(),
                });
            }
        }
        let (mut summary, outcome) = match &trigger {
            Trigger::Schedule => self.sweep().await,
            // A run that succeeded left nothing to close; it is here only for its lineage.
            Trigger::ExecutionEnded(execution) if execution.succeeded() => (
                Summary {
                    trigger: "execution".to_owned(),
                    ..Summary::default()
                },
                Ok(()),
            ),
            Trigger::ExecutionEnded(execution) => self.execution_ended(execution).await,
        };
        // The lock is released even when the pending tasks could not be listed: a held lock
        // blocks every later run.
        let lock_outcome = match (&trigger, self.run_lock()) {
            (_, None) => Ok(()),
            (Trigger::Schedule, Some(lock)) => self.release_stale(&lock, &mut summary).await,
            // Its own ReleaseRunLock gave the slot back (or the schedule does, if that failed).
            (Trigger::ExecutionEnded(execution), Some(_)) if execution.succeeded() => Ok(()),
            (Trigger::ExecutionEnded(execution), Some(lock)) => {
                self.release_ended(&lock, execution, &mut summary).await
            }
        };
        let outcome = outcome.and(lock_outcome);
        // Sent by the delivery that handled the event: a failed one is delivered again.
        if let (Trigger::ExecutionEnded(execution), Ok(())) = (&trigger, &outcome) {
            self.send_execution_run(execution).await;
        }
        metrics::publish(&summary, &self.config.function_name);
        info!(trigger = %summary.trigger, examined = summary.examined,
              lost_events_recovered = summary.lost_events_recovered, heartbeats = summary.heartbeats,
              cancellations = summary.cancellations, tasks_closed = summary.tasks_closed,
              statements_not_found = summary.statements_not_found, throttled = summary.throttled,
              skipped = summary.skipped, errors = summary.errors,
              locks_released = summary.locks_released,
              closed_tokens_of_running_executions = summary.closed_tokens_of_running_executions,
              "reconciled");
        outcome.map(|()| summary)
    }

    /// The execution's own OpenLineage run (job `<pipeline>`, the run its steps name as parent):
    /// `START` at its `startDate`, `COMPLETE`, `FAIL` or `ABORT` at its `stopDate`. Lineage off:
    /// nothing, not even the look-up of the pipeline's name. Never fails the invocation: a
    /// pipeline name that cannot be read is logged and counted as an event not delivered.
    async fn send_execution_run(&self, execution: &ExecutionStatusChange) {
        if !self.lineage.is_on() || !self.mark_execution_run(execution).await {
            return;
        }
        let pipeline = match execution::pipeline_of(&self.sfn, &execution.execution_arn).await {
            Ok(Some(pipeline)) => pipeline,
            Ok(None) => {
                warn!(execution = %execution.name, error_type = "NoPipelineName",
                      "lineage event not delivered: the execution's definition names no pipeline");
                etl_callback::metrics::lineage_emit_failure();
                return;
            }
            Err(err) => {
                warn!(execution = %execution.name,
                      error_type = "DescribeStateMachineForExecutionFailed",
                      error = %aws_sdk_sfn::error::DisplayErrorContext(&*err),
                      "lineage event not delivered: the execution's pipeline is unknown");
                etl_callback::metrics::lineage_emit_failure();
                return;
            }
        };
        let run = etl_callback::lineage::ExecutionRun::new(
            &self.config.stack,
            &pipeline,
            &execution.execution_arn,
        );
        let time = |millis: i64| {
            chrono::DateTime::from_timestamp_millis(millis)
                .unwrap_or_else(etl_callback::lineage::now)
        };
        let ended = time(execution.stop_date);
        let started = execution.start_date.map_or(ended, time);
        self.lineage
            .execution_ran(&run, started, ended, &execution_end(execution))
            .await;
    }

    /// Marks this ended attempt's run as sent: a conditional write of an item of its own in the
    /// token table (key [`execution_run_key`], no `pending`, so never in the pending index;
    /// expiring with `expiresAt` like the rendezvous items). `true`: this delivery sends; `false`:
    /// an earlier delivery of the same event did. A write that fails otherwise is logged and the
    /// run sent anyway (a repeated event rather than a lost one).
    async fn mark_execution_run(&self, execution: &ExecutionStatusChange) -> bool {
        use aws_sdk_dynamodb::types::AttributeValue;
        let now = store::now();
        let written = self
            .table
            .client
            .update_item()
            .table_name(&self.table.table)
            .key(
                "statementId",
                AttributeValue::S(execution_run_key(execution)),
            )
            .update_expression("SET lineageSentAt = :now, expiresAt = :expires")
            .condition_expression("attribute_not_exists(statementId)")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(
                ":expires",
                AttributeValue::N((now + self.table.ttl_seconds).to_string()),
            )
            .send()
            .await;
        match written {
            Ok(_) => true,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                info!(execution = %execution.name, execution_status = %execution.status,
                      "the execution's lineage run was already sent by an earlier delivery");
                false
            }
            Err(err) => {
                warn!(execution = %execution.name, error_type = "LineageMarkFailed",
                      error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err),
                      "could not mark the execution's lineage run as sent; sending it anyway");
                true
            }
        }
    }

    /// The run lock, when one is configured.
    fn run_lock(&self) -> Option<RunLock<'_>> {
        self.config.run_lock.as_ref().map(|settings| RunLock {
            dynamodb: &self.table.client,
            sfn: &self.sfn,
            settings,
        })
    }

    /// The completion logic and the reconciler's primitives over the reconciler's clients.
    fn task_clients(&self) -> TaskClients<'_> {
        TaskClients {
            table: &self.table,
            sfn: &self.sfn,
            redshift_data: &self.redshift_data,
            lineage: &self.lineage,
        }
    }

    /// The scheduled look at the run lock: every holder whose execution no longer runs (its
    /// execution-ended event was lost) is released; running holders are left alone. At most
    /// `max_items` holders per run. Fails only when reading the lock item fails with an error that
    /// is not throttling, or every holder looked at failed so.
    async fn release_stale(
        &self,
        lock: &RunLock<'_>,
        summary: &mut Summary,
    ) -> Result<(), ReconcileError> {
        let lock_name = lock.settings.name.as_str();
        let holders = match lock.holders().await {
            Ok(holders) => holders,
            Err(err) => return lock_failure(summary, lock_name, "", err),
        };
        if holders.len() > self.config.max_items {
            warn!(
                lock_name,
                holders = holders.len(),
                max_items = self.config.max_items,
                "more run lock holders than one run looks at; the next run takes the rest"
            );
        }
        let (mut failed, mut first_error) = (0_usize, None);
        let examined = holders.len().min(self.config.max_items);
        let mut looked_at = stream::iter(holders.into_iter().take(self.config.max_items))
            .map(|holder| async move {
                // An element that is no execution ARN (a hand edit) can never end: it would hold a
                // slot for good, so it is removed like a holder whose execution ended.
                let outcome = match holder.execution_arn.as_deref() {
                    None => lock.release(&holder.element).await.map(|release| {
                        Some((release, "stale holder: not an execution ARN", String::new()))
                    }),
                    Some(arn) => release_if_ended(lock, &holder, arn).await,
                };
                (holder, outcome)
            })
            .buffer_unordered(CONCURRENCY);
        while let Some((holder, outcome)) = looked_at.next().await {
            let execution = holder.execution_name.as_str();
            let result = match outcome {
                Ok(None) => continue,
                Ok(Some(released)) => Ok(released),
                Err(err) => Err(err),
            };
            match result {
                Ok((release, reason, status)) => {
                    log_release(summary, lock_name, execution, &status, reason, release);
                }
                Err(err) => {
                    if !err.is_throttling() {
                        failed += 1;
                    }
                    if let Err(err) = lock_failure(summary, lock_name, execution, err) {
                        first_error.get_or_insert(err);
                    }
                }
            }
        }
        match first_error {
            Some(err) if failed == examined => Err(err),
            _ => Ok(()),
        }
    }

    /// The scheduled sweep: every task waiting longer than the grace period, oldest first.
    async fn sweep(&self) -> (Summary, Result<(), ReconcileError>) {
        let mut summary = Summary {
            trigger: "schedule".to_owned(),
            ..Summary::default()
        };
        let cutoff = store::now() - self.config.grace_seconds;
        let pending = match self.pending(&PendingFilter::SubmittedBefore(cutoff)).await {
            Ok(pending) => pending,
            Err(err) => return (summary, Err(err)),
        };
        let mut first_error = None;
        let mut results = stream::iter(pending)
            .map(|item| async move {
                match item {
                    Ok(rendezvous) => {
                        let result = self.reconcile(&rendezvous).await;
                        (Some(rendezvous), result)
                    }
                    Err(err) => (None, Err(TaskError::from(err))),
                }
            })
            .buffer_unordered(CONCURRENCY);
        while let Some((rendezvous, result)) = results.next().await {
            summary.examined += 1;
            match rendezvous {
                Some(rendezvous) => {
                    tally(&mut summary, &rendezvous, result, &mut first_error, None)
                }
                None => {
                    if let Err(err) = result {
                        count_error(&mut summary, err, &mut first_error);
                    }
                }
            }
        }
        finish(summary, first_error)
    }

    /// An execution ended: cancel its running statements and close their items.
    async fn execution_ended(
        &self,
        execution: &ExecutionStatusChange,
    ) -> (Summary, Result<(), ReconcileError>) {
        let mut summary = Summary {
            trigger: "execution".to_owned(),
            ..Summary::default()
        };
        let pending = match self
            .pending(&PendingFilter::Execution(execution.name.clone()))
            .await
        {
            Ok(pending) => pending,
            Err(err) => return (summary, Err(err)),
        };
        let mut first_error = None;
        for item in pending {
            summary.examined += 1;
            match item {
                Ok(rendezvous) => {
                    let result = if execution.ended_attempt_of(&rendezvous) {
                        self.close_for_execution(&rendezvous, &execution.status)
                            .await
                    } else {
                        // Stored after this attempt ended: a redrive's (or a retry's of a
                        // redrive), whose tokens live. Its own event or the schedule looks after it.
                        Ok(Action::Skipped(
                            "submitted after the execution ended: a later attempt's",
                        ))
                    };
                    tally(
                        &mut summary,
                        &rendezvous,
                        result,
                        &mut first_error,
                        Some(execution),
                    );
                }
                Err(err) => count_error(&mut summary, TaskError::from(err), &mut first_error),
            }
        }
        finish(summary, first_error)
    }

    async fn pending(
        &self,
        filter: &PendingFilter,
    ) -> Result<Vec<Result<Rendezvous, StoreError>>, ReconcileError> {
        self.table
            .pending(&self.config.pending_index, filter, self.config.max_items)
            .await
            .map_err(ReconcileError::Pending)
    }

    /// One waiting task, decided from what the Data API and Step Functions say.
    async fn reconcile(&self, rendezvous: &Rendezvous) -> Result<Action, TaskError> {
        let id = rendezvous.statement_id.as_str();
        let task = match &rendezvous.task {
            _ if rendezvous.completed => return Ok(Action::Skipped("already completed")),
            None => return Ok(Action::Skipped("no token stored")),
            Some(task) => task,
        };
        if rendezvous.event.is_some() {
            // The event was recorded but the task never completed (the completer gave up).
            let completion = self
                .task_clients()
                .settle(rendezvous, Side::Reconciler)
                .await?;
            return Ok(recovered(completion));
        }
        match self.task_clients().statement_status(id).await? {
            StatementStatus::Ended { state, rows } => Ok(recovered(
                self.task_clients().recover(id, state, rows).await?,
            )),
            StatementStatus::Running => match self.task_clients().heartbeat(task).await? {
                Heartbeat::Alive => Ok(Action::Heartbeat),
                Heartbeat::TaskClosed => self.on_closed_token(rendezvous, task).await,
            },
            StatementStatus::NotFound => {
                match self.task_clients().fail_not_found(id, task).await? {
                    completion @ (Completion::Failed | Completion::TaskAlreadyClosed) => {
                        Ok(Action::NotFound(completion))
                    }
                    _ => Ok(Action::Skipped("completed by another side meanwhile")),
                }
            }
        }
    }

    /// A running statement whose token Step Functions says is closed: cancelled only when its
    /// execution no longer runs (or no retry can re-attach any more, see [`closed_token`]).
    async fn on_closed_token(
        &self,
        rendezvous: &Rendezvous,
        task: &RecordedTask,
    ) -> Result<Action, TaskError> {
        let id = rendezvous.statement_id.as_str();
        let Some(name) = task.execution_name.as_deref() else {
            // Written before executions were recorded: there is no execution to ask about.
            return Ok(closed(
                self.task_clients().close_abandoned(id, task, None).await?,
            ));
        };
        let arn = execution::execution_arn(&self.config.state_machine_arn, name);
        let execution = execution::describe(&self.sfn, &arn).await?;
        let status = execution.state.status();
        match closed_token(
            &execution,
            rendezvous.submitted_at,
            store::now(),
            self.config.reattach_wait_seconds(),
        ) {
            ClosedToken::KeepForRetry => {
                info!(statement_id = id, step = %task.step, execution = name,
                      execution_status = status, token = %task.token.fingerprint(),
                      "task token closed but its execution still runs; the statement is left for the retry to re-attach");
                Ok(Action::KeptForRetry)
            }
            ClosedToken::Cancel(reason) => {
                info!(statement_id = id, step = %task.step, execution = name,
                      execution_status = status, token = %task.token.fingerprint(), reason,
                      "task token closed; cancelling its statement");
                let ended = matches!(execution.state, ExecutionState::Ended(_));
                let closing = self
                    .task_clients()
                    .close_abandoned(id, task, ended.then_some(status))
                    .await?;
                Ok(closed(closing))
            }
        }
    }

    async fn close_for_execution(
        &self,
        rendezvous: &Rendezvous,
        status: &str,
    ) -> Result<Action, TaskError> {
        let task = match &rendezvous.task {
            _ if rendezvous.completed => return Ok(Action::Skipped("already completed")),
            None => return Ok(Action::Skipped("no token stored")),
            Some(task) => task,
        };
        let closing = self
            .task_clients()
            .close_abandoned(&rendezvous.statement_id, task, Some(status))
            .await?;
        Ok(closed(closing))
    }
}

impl Reconciler {
    /// An execution ended: release the lock it may still hold (its release step did not run when
    /// it was stopped, timed out or failed outside a `Catch`), unless `DescribeExecution` says it
    /// runs again: the event is late and the execution was redriven since; the slot is the
    /// redriven run's (its own release, its own event or the schedule gives it back).
    async fn release_ended(
        &self,
        lock: &RunLock<'_>,
        execution: &ExecutionStatusChange,
        summary: &mut Summary,
    ) -> Result<(), ReconcileError> {
        let lock_name = lock.settings.name.as_str();
        let described = match lock.execution(&execution.execution_arn).await {
            Ok(described) => described,
            Err(err) => return lock_failure(summary, lock_name, &execution.name, err),
        };
        // Every attempt that is over gives its slot back: all of them when the execution has
        // ended; the ones before the current redrive when it runs again (the event is late).
        let over: Vec<u32> = (0..=described.redrive_count)
            .filter(|attempt| lock::attempt_over(*attempt, &described))
            .collect();
        if over.is_empty() {
            info!(lock_name, execution = %execution.name,
                  execution_status = %described.state.status(), event_status = %execution.status,
                  action = "keep lock",
                  "execution runs again since this event (redriven); run lock left to it");
        }
        for attempt in over {
            let element = run_lock_holder(&execution.execution_arn, attempt);
            release_ended(lock, execution, &element, summary).await?;
        }
        Ok(())
    }
}

/// The release of an ended execution's lock slot.
async fn release_ended(
    lock: &RunLock<'_>,
    execution: &ExecutionStatusChange,
    element: &str,
    summary: &mut Summary,
) -> Result<(), ReconcileError> {
    let lock_name = lock.settings.name.as_str();
    match lock.release(element).await {
        Ok(release) => {
            log_release(
                summary,
                lock_name,
                &execution.name,
                &execution.status,
                "execution ended",
                release,
            );
            Ok(())
        }
        Err(err) => lock_failure(summary, lock_name, &execution.name, err),
    }
}

/// Counts a release and writes its log line.
fn log_release(
    summary: &mut Summary,
    lock_name: &str,
    execution: &str,
    execution_status: &str,
    reason: &str,
    release: Release,
) {
    match release {
        Release::Released => {
            summary.locks_released += 1;
            info!(
                lock_name,
                execution,
                execution_status,
                reason,
                action = "release lock",
                outcome = "released",
                "run lock released"
            );
        }
        Release::AlreadyReleased => {
            info!(
                lock_name,
                execution,
                execution_status,
                reason,
                action = "release lock",
                outcome = "already released",
                "run lock holder already released"
            );
        }
    }
}

/// Throttling is counted and left to the next scheduled run; anything else is counted and returned.
fn lock_failure(
    summary: &mut Summary,
    lock_name: &str,
    execution: &str,
    err: LockError,
) -> Result<(), ReconcileError> {
    let throttled = err.is_throttling();
    warn!(lock_name, execution, action = "release lock",
          outcome = if throttled { "throttled" } else { "error" },
          error_type = err.name(), error = %err, "run lock not released this round");
    if throttled {
        summary.throttled += 1;
        Ok(())
    } else {
        summary.errors += 1;
        Err(ReconcileError::RunLock(err))
    }
}

/// The token table key marking an ended attempt's lineage run as sent: the execution, its status
/// and `stopDate` (a redriven execution's next end is another attempt, with its own events).
pub fn execution_run_key(execution: &ExecutionStatusChange) -> String {
    format!(
        "executionRun#{}#{}#{}",
        execution.execution_arn, execution.status, execution.stop_date
    )
}

/// How an execution's own run ended: `COMPLETE` for SUCCEEDED, `ABORT` for ABORTED, `FAIL` for
/// FAILED and TIMED_OUT with the execution's error and cause (a failed step's cause is the JSON
/// `{"step", "error", ...}`: its step and SQL error).
pub fn execution_end(execution: &ExecutionStatusChange) -> etl_callback::lineage::End {
    use etl_callback::lineage::End;
    let cause = execution.cause.as_deref().map(|cause| {
        match serde_json::from_str::<serde_json::Value>(cause) {
            Ok(serde_json::Value::Object(fields)) => match (
                fields.get("step").and_then(|s| s.as_str()),
                fields.get("error").and_then(|e| e.as_str()),
            ) {
                (Some(step), Some(error)) => format!("step {step}: {error}"),
                (None, Some(error)) => error.to_owned(),
                _ => cause.to_owned(),
            },
            _ => cause.to_owned(),
        }
    });
    let message = match (execution.error.as_deref(), cause) {
        (Some(error), Some(cause)) => format!("{error}: {cause}"),
        (Some(error), None) => error.to_owned(),
        (None, Some(cause)) => cause,
        (None, None) => format!("the execution ended {}", execution.status),
    };
    match execution.status.as_str() {
        SUCCEEDED => End::Complete {
            rows: Default::default(),
        },
        "ABORTED" => End::Abort { message },
        _ => End::Fail { message },
    }
}

fn recovered(completion: Completion) -> Action {
    match completion {
        Completion::Succeeded | Completion::Failed | Completion::TaskAlreadyClosed => {
            Action::Recovered(completion)
        }
        _ => Action::Skipped("completed by another side meanwhile"),
    }
}

fn closed(closing: Closing) -> Action {
    match closing {
        Closing::Closed { cancelled } => Action::Closed { cancelled },
        Closing::Skipped => Action::Skipped("completed by another side meanwhile"),
    }
}

/// One run lock holder on the schedule: released when its attempt is over, i.e. its execution
/// ended or does not exist, or was redriven since (with the reason and the execution's status);
/// `None` while the attempt still runs.
async fn release_if_ended(
    lock: &RunLock<'_>,
    holder: &lock::Holder,
    arn: &str,
) -> Result<Option<(Release, &'static str, String)>, LockError> {
    let execution = holder.execution_name.as_str();
    let described = lock.execution(arn).await?;
    let reason = match &described.state {
        _ if !lock::attempt_over(holder.attempt, &described) => {
            info!(lock_name = lock.settings.name.as_str(), execution, attempt = holder.attempt,
                  execution_status = %described.state.status(),
                  action = "keep lock", "run lock holder still runs");
            return Ok(None);
        }
        ExecutionState::Live(_) => "stale holder: attempt over, the execution was redriven since",
        ExecutionState::Ended(_) => "stale holder: execution ended",
        ExecutionState::DoesNotExist => "stale holder: execution does not exist",
    };
    Ok(Some((
        lock.release(&holder.element).await?,
        reason,
        described.state.status().to_owned(),
    )))
}

/// Counts one task's result and writes its log line (never the token).
fn tally(
    summary: &mut Summary,
    rendezvous: &Rendezvous,
    result: Result<Action, TaskError>,
    first_error: &mut Option<TaskError>,
    execution: Option<&ExecutionStatusChange>,
) {
    let task = rendezvous.task.as_ref();
    let statement_id = rendezvous.statement_id.as_str();
    let step = task.map_or("", |t| t.step.as_str());
    let execution_name = task.and_then(|t| t.execution_name.as_deref()).unwrap_or("");
    let execution_status = execution.map_or("", |e| e.status.as_str());
    let token = task.map(|t| t.token.fingerprint()).unwrap_or_default();
    let action = match result {
        Ok(action) => action,
        Err(err) => {
            let throttled = err.is_throttling();
            warn!(statement_id, step, execution = execution_name, execution_status, token = %token,
                  action = "reconcile", outcome = if throttled { "throttled" } else { "error" },
                  error_type = err.name(), error = %err, "pending task not reconciled this round");
            count_error(summary, err, first_error);
            return;
        }
    };
    let (action_name, outcome) = match action {
        Action::Recovered(completion) => {
            summary.lost_events_recovered += 1;
            if completion == Completion::TaskAlreadyClosed {
                summary.tasks_closed += 1;
            }
            ("recover", completion_name(completion))
        }
        Action::Heartbeat => {
            summary.heartbeats += 1;
            ("heartbeat", "alive")
        }
        Action::Closed { cancelled } => {
            summary.tasks_closed += 1;
            if cancelled {
                summary.cancellations += 1;
            }
            (
                "cancel",
                if cancelled {
                    "cancelled"
                } else {
                    "not running"
                },
            )
        }
        Action::NotFound(completion) => {
            summary.statements_not_found += 1;
            if completion == Completion::TaskAlreadyClosed {
                summary.tasks_closed += 1;
            }
            ("fail not found", completion_name(completion))
        }
        Action::Skipped(reason) => {
            summary.skipped += 1;
            ("skip", reason)
        }
        Action::KeptForRetry => {
            summary.closed_tokens_of_running_executions += 1;
            (
                "keep",
                "token closed, execution running: left for the retry",
            )
        }
    };
    info!(
        statement_id,
        step,
        execution = execution_name,
        execution_status,
        token = %token,
        action = action_name,
        outcome,
        "reconciled a pending task"
    );
}

/// Throttling skips the task this round; anything else is an error.
fn count_error(summary: &mut Summary, err: TaskError, first_error: &mut Option<TaskError>) {
    if err.is_throttling() {
        summary.throttled += 1;
    } else {
        if first_error.is_none() {
            error!(error_type = err.name(), error = %err, "could not reconcile a pending task");
        }
        summary.errors += 1;
        first_error.get_or_insert(err);
    }
}

fn completion_name(completion: Completion) -> &'static str {
    match completion {
        Completion::Succeeded => "SUCCEEDED",
        Completion::Failed => "FAILED",
        Completion::TaskAlreadyClosed => "TASK_CLOSED",
        _ => "skipped",
    }
}

/// Ok with the counts, unless every task examined failed with an error that is not throttling:
/// then something is broken for all of them (permissions, configuration) and the invocation fails.
fn finish(
    summary: Summary,
    first_error: Option<TaskError>,
) -> (Summary, Result<(), ReconcileError>) {
    match first_error {
        Some(first) if summary.errors == summary.examined => {
            let failed = summary.errors;
            (summary, Err(ReconcileError::AllFailed { failed, first }))
        }
        _ => (summary, Ok(())),
    }
}
