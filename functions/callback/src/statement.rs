//! The reconciler's primitives on a task that still waits: what the Data API says about its
//! statement, a heartbeat to Step Functions, cancelling the statement, completing a task whose
//! status event was lost, closing one nobody waits for, and failing one whose statement the Data
//! API no longer knows. Each goes through the rendezvous and the completion logic of
//! [`crate::complete`], so nothing is completed twice.

use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementError;
use aws_sdk_redshiftdata::types::StatusString;
use tracing::{info, warn};

use crate::complete::{
    callback_error, closed_or_error, describe_error, error_name, redshift_error, CompleteError,
    Completion, TaskClients, STATEMENT_NOT_FOUND,
};
use crate::event::{StatementState, StatementStatusChange};
use crate::lineage::End;
use crate::store::{Outcome, RecordedTask, Side};
use crate::task::StepFailure;

/// What `DescribeStatement` says about a statement whose task is still waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementStatus {
    /// It ended; its status event was lost or is late.
    Ended {
        state: StatementState,
        rows: Option<i64>,
    },
    /// Submitted, picked or started.
    Running,
    /// The Data API does not know it (its details are kept 24 hours).
    NotFound,
}

/// What a heartbeat learned about the waiting task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    Alive,
    /// `TaskTimedOut`, `TaskDoesNotExist` or `InvalidToken`: nobody waits for the statement.
    TaskClosed,
}

/// What closing a task nobody waits for any more did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// Claimed, the statement cancelled if it still ran (`cancelled`), marked TASK_CLOSED.
    Closed { cancelled: bool },
    /// Completed or being completed by someone else, or re-attached by a retry: left alone.
    Skipped,
}

impl TaskClients<'_> {
    /// The reconciler's view of a statement whose task still waits.
    pub async fn statement_status(&self, id: &str) -> Result<StatementStatus, CompleteError> {
        let described = match self.redshift_data.describe_statement().id(id).send().await {
            Ok(described) => described,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(DescribeStatementError::is_resource_not_found_exception) =>
            {
                return Ok(StatementStatus::NotFound)
            }
            Err(err) => return Err(describe_error(err)),
        };
        let state = match described.status() {
            Some(StatusString::Finished) => StatementState::Finished,
            Some(StatusString::Failed) => StatementState::Failed,
            Some(StatusString::Aborted) => StatementState::Aborted,
            _ => return Ok(StatementStatus::Running),
        };
        let subs = described.sub_statements();
        let rows = if subs.is_empty() {
            described.result_rows()
        } else {
            subs.iter().map(|s| s.result_rows().max(0)).sum()
        };
        Ok(StatementStatus::Ended {
            state,
            rows: (rows >= 0).then_some(rows),
        })
    }

    /// Completes a task whose statement ended without its event reaching the completer: records
    /// the event half exactly as the completer does, then settles as the reconciler.
    pub async fn recover(
        &self,
        statement_id: &str,
        state: StatementState,
        rows: Option<i64>,
    ) -> Result<Completion, CompleteError> {
        let event = StatementStatusChange {
            statement_id: statement_id.to_owned(),
            statement_name: None,
            state,
            rows,
            principal: None,
            redshift_query_id: None,
            expire_at: None,
        };
        let rendezvous = self.table.record_event(&event).await?;
        self.settle(&rendezvous, Side::Reconciler).await
    }

    /// Tells Step Functions the task is still being worked on.
    pub async fn heartbeat(&self, task: &RecordedTask) -> Result<Heartbeat, CompleteError> {
        match self
            .sfn
            .send_task_heartbeat()
            .task_token(task.token.expose())
            .send()
            .await
        {
            Ok(_) => Ok(Heartbeat::Alive),
            Err(err) => closed_or_error(err).map(|()| Heartbeat::TaskClosed),
        }
    }

    /// Cancels a statement; `Ok(false)` when it was not running any more (deliberately not an
    /// error: it may have ended a moment ago).
    pub async fn cancel_statement(&self, id: &str) -> Result<bool, CompleteError> {
        match self.redshift_data.cancel_statement().id(id).send().await {
            Ok(out) => Ok(out.status().unwrap_or(false)),
            Err(err) => match err.as_service_error() {
                Some(e) if e.is_validation_exception() || e.is_resource_not_found_exception() => {
                    info!(statement_id = id, error = %e, "statement not running; nothing to cancel");
                    Ok(false)
                }
                _ => Err(redshift_error("CancelStatement", err)),
            },
        }
    }

    /// Closes a task nobody waits for any more: claims it, cancels its statement, marks it
    /// TASK_CLOSED by the reconciler (with the execution's status when the execution ended).
    pub async fn close_abandoned(
        &self,
        id: &str,
        task: &RecordedTask,
        execution_status: Option<&str>,
    ) -> Result<Closing, CompleteError> {
        if !self.table.claim(id, &task.token).await? {
            return Ok(Closing::Skipped);
        }
        let cancelled = match self.cancel_statement(id).await {
            Ok(cancelled) => cancelled,
            Err(err) => {
                self.give_back(id, task).await;
                return Err(err);
            }
        };
        if self
            .finish(
                id,
                task,
                Outcome::TaskClosed,
                Side::Reconciler,
                execution_status,
            )
            .await
        {
            if !self.lineage.is_on() {
                return Ok(Closing::Closed { cancelled });
            }
            let message = match execution_status {
                Some(status) => format!(
                    "the execution ended ({status}) while the statement ran; the reconciler cancelled it"
                ),
                None => "nobody waits for the task any more; the reconciler cancelled its statement"
                    .to_owned(),
            };
            self.lineage
                .ran(task.lineage.as_ref(), &End::Abort { message })
                .await;
        } else {
            warn!(
                statement_id = id,
                "a retry re-attached while its predecessor was being closed"
            );
        }
        Ok(Closing::Closed { cancelled })
    }

    /// Fails a task whose statement the Data API does not know with `Redshift.StatementNotFound`.
    pub async fn fail_not_found(
        &self,
        id: &str,
        task: &RecordedTask,
    ) -> Result<Completion, CompleteError> {
        if !self.table.claim(id, &task.token).await? {
            return Ok(Completion::ClaimedElsewhere);
        }
        let cause = StepFailure {
            step: task.step.clone(),
            statement_id: id.to_owned(),
            run_date: task.run_date.clone(),
            status: "NOT_FOUND".to_owned(),
            error: "DescribeStatement does not know the statement (the Data API keeps statements 24 hours) and its status event never arrived".to_owned(),
            failed_statement_index: None,
            failed_statement: None,
        };
        let sent = self
            .sfn
            .send_task_failure()
            .task_token(task.token.expose())
            .error(error_name(task, STATEMENT_NOT_FOUND))
            .cause(serde_json::to_string(&cause).expect("a StepFailure always serializes"))
            .send()
            .await
            .map(|_| Completion::Failed)
            .or_else(callback_error);
        match sent {
            Ok(completion) => {
                if self
                    .finish(id, task, completion.outcome(), Side::Reconciler, None)
                    .await
                {
                    self.lineage
                        .ran(
                            task.lineage.as_ref(),
                            &End::Fail {
                                message: cause.error,
                            },
                        )
                        .await;
                }
                Ok(completion)
            }
            Err(err) => {
                self.give_back(id, task).await;
                Err(err)
            }
        }
    }
}
