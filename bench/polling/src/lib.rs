//! Benchmark code, not part of the product: the two Lambdas of the polling baseline that
//! `bench/compare.py` runs next to the callback state machine. They mirror the original AWS
//! sample's design (submit a batch, then `Wait` + `DescribeStatement` + `Choice` in a loop) and run
//! the same SQL: the script is read from the same bucket and prepared by the product's own
//! `etl_callback::script::prepare`, so both designs submit identical batches.

pub mod asl;

use serde::{Deserialize, Serialize};

/// Submit function input (the state machine's `Payload`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitInput {
    pub step: String,
    pub script: String,
    pub run_date: String,
    pub execution_name: String,
}

/// Submit function output: what the status checks need.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Submitted {
    pub statement_id: String,
    pub statement_name: String,
    pub step: String,
    pub statements: usize,
}

/// Status function input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusInput {
    pub statement_id: String,
}

/// Status function output: the Data API status, which the `Choice` state reads.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub statement_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL*`), with an
/// HTTPS client of this crate's own: rustls on ring, plain `http://` for the local stack.
pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}

/// A required environment variable.
pub fn env(name: &str) -> Result<String, lambda_runtime::Error> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("environment variable {name} is not set").into())
}
