//! The callback protocol shared by the submitter, completer and reconciler Lambdas.
//!
//! - [`aws`]: the SDK configuration and HTTPS client every cold start builds once;
//! - [`logging`]: the log subscriber (JSON lines Lambda's log-level filter reads correctly);
//! - [`task`]: what the state machine sends the submitter and what a step returns;
//! - [`run_date`], [`vars`], [`sql`], [`script`]: a step's script filled with the run's validated
//!   values (the run date's built-ins, the pipeline's typed variables), checked and split for one
//!   Data API batch;
//! - [`check`]: data-quality checks: the wrapped SELECT and the outcome of its rows;
//! - [`event`]: the Redshift Data status-change event the completer receives;
//! - [`store`]: the DynamoDB rendezvous where token and event meet;
//! - [`complete`]: closing the task once both have arrived, exactly once in effect;
//! - [`statement`]: the reconciler's primitives on a waiting task (statement status, heartbeat,
//!   cancel, not-found failure);
//! - [`throttle`]: the one classification of throttling across the SDK clients;
//! - [`lineage`]: the OpenLineage run events of every step and where they go;
//! - [`metrics`]: the CloudWatch metrics (EMF log lines) the functions publish.
//!
//! Without the default feature `aws` only the parsers build ([`task`], [`run_date`], [`vars`],
//! [`sql`], [`script`], [`event`]): no SDK, no Lambda runtime (the fuzz targets, `fuzz/`).

#[cfg(feature = "aws")]
pub mod aws;
pub mod check;
#[cfg(feature = "aws")]
pub mod complete;
#[cfg(feature = "aws")]
pub mod config;
pub mod event;
#[cfg(feature = "aws")]
pub mod lineage;
#[cfg(feature = "aws")]
pub mod logging;
pub mod metrics;
pub mod run_date;
pub mod script;
/// The SQL lexer lives in the `redshift-sql` crate, the one owner of Redshift SQL.
pub use redshift_sql::lexer as sql;
#[cfg(feature = "aws")]
pub mod statement;
#[cfg(feature = "aws")]
pub mod store;
pub mod task;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "aws")]
pub mod throttle;
pub mod vars;

#[cfg(feature = "aws")]
/// A Lambda error carrying its stable error name: what Step Functions `Retry`/`Catch` match on.
pub fn diagnostic(name: &str, error: &dyn std::error::Error) -> lambda_runtime::Diagnostic {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    lambda_runtime::Diagnostic {
        error_type: name.to_owned(),
        error_message: message,
    }
}
