//! The "Redshift Data Statement Status Change" event that EventBridge delivers to the completer.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const EVENT_SOURCE: &str = "aws.redshift-data";
pub const EVENT_DETAIL_TYPE: &str = "Redshift Data Statement Status Change";

/// The terminal state a statement reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatementState {
    Finished,
    Failed,
    Aborted,
}

impl StatementState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finished => "FINISHED",
            Self::Failed => "FAILED",
            Self::Aborted => "ABORTED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "FINISHED" => Some(Self::Finished),
            "FAILED" => Some(Self::Failed),
            "ABORTED" => Some(Self::Aborted),
            _ => None,
        }
    }
}

/// The event's `detail`. For a batch, `statement_id` is the batch's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementStatusChange {
    pub statement_id: String,
    #[serde(default)]
    pub statement_name: Option<String>,
    pub state: StatementState,
    #[serde(default)]
    pub rows: Option<i64>,
    #[serde(default)]
    pub principal: Option<String>,
    #[serde(default)]
    pub redshift_query_id: Option<i64>,
    #[serde(default)]
    pub expire_at: Option<i64>,
}

pub type StatusChangeEvent = EventBridgeEvent<StatementStatusChange>;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventError {
    #[error("event is not a Redshift Data statement status change: {0}")]
    Malformed(String),
    #[error("event has source {event_source:?} and detail-type {detail_type:?}; expected {EVENT_SOURCE:?} / {EVENT_DETAIL_TYPE:?}")]
    UnexpectedEvent {
        event_source: String,
        detail_type: String,
    },
    #[error("event has an empty statementId")]
    MissingStatementId,
}

impl EventError {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Malformed(_) | Self::MissingStatementId => "MalformedEvent",
            Self::UnexpectedEvent { .. } => "UnexpectedEvent",
        }
    }
}

/// Parses and checks an EventBridge event; only a well-formed status change of this kind passes.
pub fn parse_event(value: serde_json::Value) -> Result<StatementStatusChange, EventError> {
    let event: StatusChangeEvent =
        serde_json::from_value(value).map_err(|e| EventError::Malformed(e.to_string()))?;
    if event.source != EVENT_SOURCE || event.detail_type != EVENT_DETAIL_TYPE {
        return Err(EventError::UnexpectedEvent {
            event_source: event.source,
            detail_type: event.detail_type,
        });
    }
    if event.detail.statement_id.trim().is_empty() {
        return Err(EventError::MissingStatementId);
    }
    Ok(event.detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn documented_event() -> serde_json::Value {
        json!({
            "version": "0",
            "id": "18e7079c-dd4b-dd64-caf9-e2a31640dab0",
            "detail-type": "Redshift Data Statement Status Change",
            "source": "aws.redshift-data",
            "account": "123456789012",
            "time": "2020-10-01T21:14:26Z",
            "region": "us-east-1",
            "resources": ["arn:aws:redshift:us-east-1:123456789012:cluster:redshift-cluster-1"],
            "detail": {
                "principal": "arn:aws:iam::123456789012:user/myuser",
                "statementName": "test.testtable",
                "statementId": "dd2e1ec9-2ee3-49a0-819f-905fa7d75a4a",
                "redshiftQueryId": -1,
                "state": "FINISHED",
                "rows": 1,
                "expireAt": 1601673265
            }
        })
    }

    #[test]
    fn parses_the_documented_event() {
        let detail = parse_event(documented_event()).unwrap();
        assert_eq!(detail.statement_id, "dd2e1ec9-2ee3-49a0-819f-905fa7d75a4a");
        assert_eq!(detail.state, StatementState::Finished);
        assert_eq!(detail.rows, Some(1));
    }

    #[test]
    fn rejects_other_events_and_states() {
        let mut other = documented_event();
        other["source"] = json!("aws.s3");
        assert_eq!(parse_event(other).unwrap_err().name(), "UnexpectedEvent");
        let mut running = documented_event();
        running["detail"]["state"] = json!("STARTED");
        assert_eq!(parse_event(running).unwrap_err().name(), "MalformedEvent");
        let mut no_id = documented_event();
        no_id["detail"]["statementId"] = json!(" ");
        assert_eq!(parse_event(no_id).unwrap_err().name(), "MalformedEvent");
        assert_eq!(
            parse_event(json!({"hello": "world"})).unwrap_err().name(),
            "MalformedEvent"
        );
    }
}
