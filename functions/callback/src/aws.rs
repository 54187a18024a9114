//! The SDK configuration each cold start loads once, and the one HTTPS client every SDK client
//! shares: hyper 1 with rustls on ring. The SDK crates' default features would add rustls on
//! aws-lc-rs (about 2 MB of arm64 code, and a C build) and a legacy hyper 0.14 client; they are
//! off in the workspace `Cargo.toml` (README, "The functions: size, start, memory").
//!
//! The client speaks plain `http://` too, so `AWS_ENDPOINT_URL` can point the same binary at the
//! local stack. No connection is opened here: the first request of each client opens its own
//! (README, "Connections: opened by the first request, not during init").

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// HTTPS (rustls, ring, the system's root certificates) or plain HTTP, chosen by the endpoint.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// `aws_config::load_defaults` with [`http_client`]: region, credentials and endpoints from the
/// environment (`AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` included).
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await
}
