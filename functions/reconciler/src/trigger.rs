//! What woke the reconciler: a schedule, or a Step Functions execution-ended event, told apart
//! and checked before anything is touched.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use etl_callback::store::Rendezvous;
use serde::{Deserialize, Serialize};

use crate::execution;
use crate::ReconcileError;

pub const SCHEDULE_DETAIL_TYPE: &str = "Scheduled Event";
pub const SCHEDULE_SOURCES: [&str; 2] = ["aws.events", "aws.scheduler"];
pub const EXECUTION_DETAIL_TYPE: &str = "Step Functions Execution Status Change";
pub const EXECUTION_SOURCE: &str = "aws.states";
/// Execution statuses that leave waiting tasks behind.
pub const ENDED_STATUSES: [&str; 3] = ["ABORTED", "TIMED_OUT", "FAILED"];
/// The status of a run that ended well: its rule matches it only when lineage is on
/// (`OpenLineageUrl`), and it is only the execution's own OpenLineage run, nothing else.
pub const SUCCEEDED: &str = "SUCCEEDED";

/// The detail of a Step Functions "Execution Status Change" event (the fields used here; the
/// others, such as `input`, `output`, `error`, `cause`, `redriveStatus`, are ignored). Dates are
/// epoch milliseconds, as the event carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatusChange {
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub name: String,
    pub status: String,
    /// `startDate`, when the event has one.
    pub start_date: Option<i64>,
    /// `stopDate`: when this attempt of the execution ended. Items submitted after it belong to
    /// a later attempt (a redrive: same name, same ARN).
    pub stop_date: i64,
    /// `redriveCount`, when the event has one: how many times the execution had been redriven.
    pub redrive_count: Option<u32>,
    /// `error` and `cause` of a failed execution, when the event has them.
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// The detail as it arrives, before it is checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawExecutionDetail {
    execution_arn: String,
    state_machine_arn: String,
    name: String,
    status: String,
    #[serde(default)]
    start_date: Option<i64>,
    #[serde(default)]
    stop_date: Option<i64>,
    #[serde(default)]
    redrive_count: Option<u32>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cause: Option<String>,
}

impl ExecutionStatusChange {
    /// Checks an ended execution's detail: its ARN names it (state machine and name), and it
    /// has a `stopDate` (epoch milliseconds, not before its `startDate`).
    fn checked(raw: RawExecutionDetail) -> Result<Self, ReconcileError> {
        let malformed = |reason: String| Err(ReconcileError::Malformed(reason));
        if raw.name.trim().is_empty() {
            return malformed("execution status change without an execution name".to_owned());
        }
        if !ENDED_STATUSES.contains(&raw.status.as_str()) && raw.status != SUCCEEDED {
            return Err(ReconcileError::UnexpectedExecutionStatus {
                execution: raw.name,
                status: raw.status,
            });
        }
        if execution::state_machine_name(&raw.state_machine_arn).is_none() {
            return malformed(format!(
                "stateMachineArn {:?} is not a state machine ARN",
                raw.state_machine_arn
            ));
        }
        match execution::split_execution_arn(&raw.execution_arn) {
            Some((machine, name)) if machine == raw.state_machine_arn && name == raw.name => {}
            _ => {
                return malformed(format!(
                    "executionArn {:?} is not execution {:?} of {:?}",
                    raw.execution_arn, raw.name, raw.state_machine_arn
                ))
            }
        }
        let stop_date = match raw.stop_date {
            Some(stop) if stop > 0 => stop,
            _ => {
                return malformed(format!(
                    "a {} execution status change without a stopDate (epoch milliseconds)",
                    raw.status
                ))
            }
        };
        if let Some(start) = raw.start_date {
            if start <= 0 || start > stop_date {
                return malformed(format!(
                    "startDate {start} is not epoch milliseconds before stopDate {stop_date}"
                ));
            }
        }
        Ok(Self {
            execution_arn: raw.execution_arn,
            state_machine_arn: raw.state_machine_arn,
            name: raw.name,
            status: raw.status,
            start_date: raw.start_date,
            stop_date,
            redrive_count: raw.redrive_count,
            error: raw.error.filter(|e| !e.is_empty()),
            cause: raw.cause.filter(|c| !c.is_empty()),
        })
    }

    /// The execution succeeded: nothing to close or release, only its lineage to send.
    pub fn succeeded(&self) -> bool {
        self.status == SUCCEEDED
    }

    /// Whether `rendezvous` belongs to the attempt this event ended: its token was stored before
    /// `stopDate` (at second precision; a later attempt re-attaching rewrites `submittedAt`). An
    /// item without a submit time (never in the pending index) counts as the ended attempt's.
    pub fn ended_attempt_of(&self, rendezvous: &Rendezvous) -> bool {
        rendezvous
            .submitted_at
            .is_none_or(|submitted| submitted.saturating_mul(1000) <= self.stop_date)
    }
}

/// What one event asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    ExecutionEnded(ExecutionStatusChange),
}

/// Tells the two events apart by `detail-type` and checks them.
pub fn parse_trigger(payload: serde_json::Value) -> Result<Trigger, ReconcileError> {
    let event: EventBridgeEvent<serde_json::Value> =
        serde_json::from_value(payload).map_err(|e| ReconcileError::Malformed(e.to_string()))?;
    let unexpected = |event: EventBridgeEvent<serde_json::Value>| ReconcileError::UnexpectedEvent {
        event_source: event.source,
        detail_type: event.detail_type,
    };
    match event.detail_type.as_str() {
        SCHEDULE_DETAIL_TYPE if SCHEDULE_SOURCES.contains(&event.source.as_str()) => {
            Ok(Trigger::Schedule)
        }
        EXECUTION_DETAIL_TYPE if event.source == EXECUTION_SOURCE => {
            let raw: RawExecutionDetail = serde_json::from_value(event.detail)
                .map_err(|e| ReconcileError::Malformed(e.to_string()))?;
            Ok(Trigger::ExecutionEnded(ExecutionStatusChange::checked(
                raw,
            )?))
        }
        _ => Err(unexpected(event)),
    }
}
