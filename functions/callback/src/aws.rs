//! The SDK configuration each cold start loads once, and the one HTTPS client every SDK client
//! shares: hyper 1 with rustls on ring. The SDK crates' default features would add rustls on
//! aws-lc-rs (about 2 MB of arm64 code, and a C build) and a legacy hyper 0.14 client; they are
//! off in the workspace `Cargo.toml` (docs/benchmarks.md, "The functions: size, start, memory").
//!
//! The client speaks plain `http://` too, so `AWS_ENDPOINT_URL` can point the same binary at the
//! local stack. No connection is opened here: the first request of each client opens its own
//! (docs/benchmarks.md, "Connections: opened by the first request, not during init").
//!
//! Every SDK call has an end: each client has an attempt timeout (one HTTP request, connecting
//! included) and an operation timeout (every attempt and the retry backoff between them), per
//! service below. A call that stalls fails with a timeout error (classified as worth retrying)
//! instead of running until Lambda kills the invocation, and the completion claim's lease
//! ([`crate::store::claim_seconds`]) is derived from these figures.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// One service's timeouts, in whole seconds (the lease arithmetic is in seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// One attempt: connecting, sending, and the whole response.
    pub attempt_seconds: u64,
    /// The whole operation: every attempt of the SDK's standard retries (3) and the backoff
    /// between them. Each attempt fits at least twice, so a single stalled attempt is retried.
    pub operation_seconds: u64,
}

impl Timeouts {
    pub const fn operation(self) -> Duration {
        Duration::from_secs(self.operation_seconds)
    }

    /// These timeouts for a call the service holds up to `wait_seconds` before it answers (long
    /// polling, `WaitTimeSeconds`): the wait is added to the attempt and to the operation, so a
    /// waited call that the service answers at the end of its wait is not cut short, and the call
    /// still ends `wait_seconds` after the plain one at the latest.
    pub const fn waiting(self, wait_seconds: u64) -> Self {
        Self {
            attempt_seconds: self.attempt_seconds + wait_seconds,
            operation_seconds: self.operation_seconds + wait_seconds,
        }
    }

    pub fn config(self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(Duration::from_secs(self.attempt_seconds))
            .operation_timeout(self.operation())
            .build()
    }
}

/// Opening a connection (TCP and TLS) to a regional endpoint from Lambda takes milliseconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// DynamoDB answers single-item writes, reads and one-page queries in milliseconds.
pub const DYNAMODB: Timeouts = Timeouts {
    attempt_seconds: 2,
    operation_seconds: 5,
};
/// `SendTaskSuccess`/`Failure`/`Heartbeat` and `DescribeExecution`: small control-plane calls.
pub const STEP_FUNCTIONS: Timeouts = Timeouts {
    attempt_seconds: 3,
    operation_seconds: 8,
};
/// `BatchExecuteStatement` (it returns once the batch is queued, not when it has run),
/// `DescribeStatement` and `CancelStatement`. The submit is idempotent (`ClientToken`), so a
/// timed-out attempt that did reach the Data API is safe to retry.
pub const REDSHIFT_DATA: Timeouts = Timeouts {
    attempt_seconds: 5,
    operation_seconds: 10,
};
/// The Data API's longest `WaitTimeSeconds` (long polling): the most the submitter may wait for
/// its batch to end (`SUBMIT_WAIT_SECONDS`, the template's `SubmitWaitSeconds`).
pub const REDSHIFT_DATA_MAX_WAIT_SECONDS: u64 = 30;

/// How much longer than a plain submit a submit waiting `wait_seconds` can take: the waited call
/// ([`Timeouts::waiting`]: the plain operation plus the wait) and, when the wait fails, the plain
/// submit it falls back to. The submitter's `Timeout` covers it for the longest wait
/// (`tests/template_limits.rs`).
pub const fn submit_wait_extra_seconds(wait_seconds: u64) -> u64 {
    wait_seconds + REDSHIFT_DATA.operation_seconds
}

/// `GetObject` of a script (at most 100 KB).
pub const S3: Timeouts = Timeouts {
    attempt_seconds: 5,
    operation_seconds: 10,
};
/// Any client built straight from [`load_config`]'s `SdkConfig` (the per-service constructors
/// below override it): the most generous of the services above.
pub const DEFAULT: Timeouts = REDSHIFT_DATA;

/// The longest any single SDK operation of these functions can take.
pub const LONGEST_OPERATION_SECONDS: u64 = max(
    max(DYNAMODB.operation_seconds, STEP_FUNCTIONS.operation_seconds),
    max(REDSHIFT_DATA.operation_seconds, S3.operation_seconds),
);

const fn max(a: u64, b: u64) -> u64 {
    if a > b {
        a
    } else {
        b
    }
}

/// HTTPS (rustls, ring, the system's root certificates) or plain HTTP, chosen by the endpoint.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// `aws_config::load_defaults` with [`http_client`] and the [`DEFAULT`] timeouts: region,
/// credentials and endpoints from the environment (`AWS_ENDPOINT_URL` /
/// `AWS_ENDPOINT_URL_<SERVICE>` included). Build clients with the constructors below, which apply
/// each service's own timeouts.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(DEFAULT.config())
        .load()
        .await
}

/// A DynamoDB client with the [`DYNAMODB`] timeouts.
pub fn dynamodb(aws: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(aws).timeout_config(DYNAMODB.config());
    aws_sdk_dynamodb::Client::from_conf(conf.build())
}

/// A Step Functions client with the [`STEP_FUNCTIONS`] timeouts.
pub fn sfn(aws: &SdkConfig) -> aws_sdk_sfn::Client {
    let conf = aws_sdk_sfn::config::Builder::from(aws).timeout_config(STEP_FUNCTIONS.config());
    aws_sdk_sfn::Client::from_conf(conf.build())
}

/// A Redshift Data API client with the [`REDSHIFT_DATA`] timeouts.
pub fn redshift_data(aws: &SdkConfig) -> aws_sdk_redshiftdata::Client {
    let conf =
        aws_sdk_redshiftdata::config::Builder::from(aws).timeout_config(REDSHIFT_DATA.config());
    aws_sdk_redshiftdata::Client::from_conf(conf.build())
}

/// An S3 client with the [`S3`] timeouts.
pub fn s3(aws: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(aws).timeout_config(S3.config());
    aws_sdk_s3::Client::from_conf(conf.build())
}

/// A Secrets Manager client for the OpenLineage API key ([`crate::lineage::SecretKey`]): its read is
/// part of an event's emission, so it has the emission's connect timeout and bound
/// ([`crate::lineage::CONNECT_TIMEOUT`], [`crate::lineage::EMIT_TIMEOUT`]) and one attempt: a failed
/// read fails that emission, and the next read comes after the lineage pause
/// ([`crate::lineage::PAUSE_AFTER_FAILURE`]), as for an unreachable endpoint.
pub fn secrets_manager(aws: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    let conf = aws_sdk_secretsmanager::config::Builder::from(aws)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(crate::lineage::CONNECT_TIMEOUT)
                .operation_attempt_timeout(crate::lineage::EMIT_TIMEOUT)
                .operation_timeout(crate::lineage::EMIT_TIMEOUT)
                .build(),
        )
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1));
    aws_sdk_secretsmanager::Client::from_conf(conf.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .timeout_config(DEFAULT.config())
            .build()
    }

    fn assert_timeouts(conf: Option<&TimeoutConfig>, expected: Timeouts) {
        let conf = conf.expect("a timeout config");
        assert_eq!(conf.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(
            conf.operation_attempt_timeout(),
            Some(Duration::from_secs(expected.attempt_seconds))
        );
        assert_eq!(conf.operation_timeout(), Some(expected.operation()));
    }

    #[test]
    fn every_client_has_its_services_attempt_and_operation_timeouts() {
        let aws = config();
        assert_timeouts(dynamodb(&aws).config().timeout_config(), DYNAMODB);
        assert_timeouts(sfn(&aws).config().timeout_config(), STEP_FUNCTIONS);
        assert_timeouts(redshift_data(&aws).config().timeout_config(), REDSHIFT_DATA);
        assert_timeouts(s3(&aws).config().timeout_config(), S3);
        assert_timeouts(aws.timeout_config(), DEFAULT);
    }

    #[test]
    fn the_api_key_client_reads_within_one_emission_bound_and_once() {
        let client = secrets_manager(&config());
        let conf = client.config();
        let timeouts = conf.timeout_config().expect("a timeout config");
        assert_eq!(
            timeouts.connect_timeout(),
            Some(crate::lineage::CONNECT_TIMEOUT)
        );
        assert_eq!(
            timeouts.operation_timeout(),
            Some(crate::lineage::EMIT_TIMEOUT)
        );
        assert_eq!(conf.retry_config().map(|r| r.max_attempts()), Some(1));
    }

    #[test]
    fn every_attempt_fits_its_operation_at_least_twice() {
        for t in [DYNAMODB, STEP_FUNCTIONS, REDSHIFT_DATA, S3, DEFAULT] {
            assert!(2 * t.attempt_seconds <= t.operation_seconds, "{t:?}");
            assert!(CONNECT_TIMEOUT.as_secs() <= t.attempt_seconds, "{t:?}");
            assert!(t.operation_seconds <= LONGEST_OPERATION_SECONDS, "{t:?}");
        }
    }
}
