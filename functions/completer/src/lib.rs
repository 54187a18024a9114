//! The completer: receives a statement's status event from EventBridge, records it in the
//! rendezvous table and, when the task token is already there, closes the task.

use etl_callback::complete::{CompleteError, Completer, Completion};
use etl_callback::config::{self, ConfigError, TableSettings};
use etl_callback::event::{parse_event, EventError};
use etl_callback::store::{Side, StoreError};
use serde::Serialize;
use thiserror::Error;
use tracing::info;

/// The completer's configuration: only the rendezvous table.
pub fn config_from_env() -> Result<TableSettings, ConfigError> {
    let mut vars = config::env();
    let settings = TableSettings::read(&mut vars);
    vars.finish()?;
    Ok(settings)
}

#[derive(Debug, Error)]
pub enum CompleterError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Complete(#[from] CompleteError),
}

impl CompleterError {
    /// The stable error name (EventBridge retries any error; the name tells the logs why).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Event(e) => e.name(),
            Self::Store(e) => e.name(),
            Self::Complete(e) => e.name(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handled {
    pub statement_id: String,
    pub state: String,
    pub completion: String,
}

/// Handles one EventBridge delivery.
pub async fn handle(
    completer: &Completer,
    payload: serde_json::Value,
) -> Result<Handled, CompleterError> {
    let event = parse_event(payload)?;
    let rendezvous = completer.table.record_event(&event).await?;
    let completion = completer.settle(&rendezvous, Side::Completer).await?;
    info!(statement_id = %event.statement_id, state = event.state.as_str(), completion = ?completion, "status event handled");
    if completion == Completion::WaitingForToken {
        info!(statement_id = %event.statement_id, "event arrived before the token; the submitter completes the task");
    }
    Ok(Handled {
        statement_id: event.statement_id,
        state: event.state.as_str().to_owned(),
        completion: format!("{completion:?}"),
    })
}
