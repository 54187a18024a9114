//! "Redshift Data Statement Status Change" events, sent to EventBridge with `PutEvents`
//! (awsJson1_1 over plain HTTP; local endpoints such as moto do not check SigV4).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde_json::json;

pub const SOURCE: &str = "aws.redshift-data";
pub const DETAIL_TYPE: &str = "Redshift Data Statement Status Change";

/// How many times one event is attempted before it is given up (logged, never fatal).
const ATTEMPTS: u32 = 4;

/// The event's `detail`, field for field as the service sends it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChangeDetail {
    pub principal: String,
    pub statement_name: String,
    pub statement_id: String,
    pub redshift_query_id: i64,
    pub state: String,
    pub rows: i64,
    pub expire_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("invalid EventBridge endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("could not build the PutEvents request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("PutEvents request failed: {0}")]
    Transport(#[from] hyper_util::client::legacy::Error),
    #[error("reading the PutEvents response failed: {0}")]
    Body(#[from] hyper::Error),
    #[error("PutEvents answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("PutEvents rejected the entry: {0}")]
    Rejected(String),
    #[error("could not encode the event: {0}")]
    Encode(#[from] serde_json::Error),
}

#[derive(Clone)]
pub struct EventPublisher {
    endpoint: Option<String>,
    region: String,
    event_bus: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl EventPublisher {
    pub fn new(endpoint: Option<String>, region: String, event_bus: String) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self {
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
            region,
            event_bus,
            client,
        }
    }

    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// Publishes one event, retrying a few times; failures are logged, never returned.
    pub async fn publish(&self, detail: &StatusChangeDetail, resources: &[String]) {
        let Some(endpoint) = self.endpoint.as_deref() else {
            tracing::warn!(
                statement_id = %detail.statement_id,
                "WithEvent=true but no EventBridge endpoint is configured \
                 (AWS_ENDPOINT_URL_EVENTBRIDGE / AWS_ENDPOINT_URL); event not published"
            );
            return;
        };
        let mut backoff = Duration::from_millis(200);
        for attempt in 1..=ATTEMPTS {
            match self.put_events(endpoint, detail, resources).await {
                Ok(()) => {
                    tracing::info!(
                        statement_id = %detail.statement_id,
                        state = %detail.state,
                        attempt,
                        "published status-change event"
                    );
                    return;
                }
                Err(error) => {
                    tracing::warn!(
                        statement_id = %detail.statement_id,
                        attempt,
                        %error,
                        "publishing status-change event failed"
                    );
                    if attempt < ATTEMPTS {
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                }
            }
        }
        tracing::error!(
            statement_id = %detail.statement_id,
            "gave up publishing status-change event after {ATTEMPTS} attempts"
        );
    }

    async fn put_events(
        &self,
        endpoint: &str,
        detail: &StatusChangeDetail,
        resources: &[String],
    ) -> Result<(), PublishError> {
        let body = put_events_body(detail, resources, &self.event_bus)?;
        let uri: Uri =
            format!("{endpoint}/")
                .parse()
                .map_err(|e: hyper::http::uri::InvalidUri| PublishError::Endpoint {
                    endpoint: endpoint.to_string(),
                    reason: e.to_string(),
                })?;
        if uri.scheme_str() != Some("http") {
            return Err(PublishError::Endpoint {
                endpoint: endpoint.to_string(),
                reason: "only plain http:// endpoints are supported".into(),
            });
        }
        let host = uri
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "localhost".into());
        // Unsigned; the credential scope only tells local emulators (moto) the region.
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=emulator/20200101/{}/events/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-target, Signature=unsigned",
            self.region
        );
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("host", host)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "AWSEvents.PutEvents")
            .header("x-amz-date", "20200101T000000Z")
            .header("authorization", authorization)
            .body(Full::new(Bytes::from(body)))?;
        let response = self.client.request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !status.is_success() {
            return Err(PublishError::Status {
                status: status.as_u16(),
                body: text,
            });
        }
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if parsed["FailedEntryCount"].as_i64().unwrap_or(0) > 0 {
            return Err(PublishError::Rejected(parsed["Entries"].to_string()));
        }
        Ok(())
    }
}

/// The PutEvents request body for one status-change event.
pub fn put_events_body(
    detail: &StatusChangeDetail,
    resources: &[String],
    event_bus: &str,
) -> Result<String, serde_json::Error> {
    let body = json!({
        "Entries": [{
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": serde_json::to_string(detail)?,
            "Resources": resources,
            "EventBusName": event_bus,
        }]
    });
    serde_json::to_string(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> serde_json::Value {
        // The `detail` of the service's documented example event (shared/fixtures/).
        serde_json::json!({"detail": {
            "principal": "arn:aws:iam::123456789012:user/myuser",
            "statementName": "test.testtable",
            "statementId": "dd2e1ec9-2ee3-49a0-819f-905fa7d75a4a",
            "redshiftQueryId": -1,
            "state": "FINISHED",
            "rows": 1,
            "expireAt": 1601673265
        }})
    }

    #[test]
    fn detail_serializes_exactly_like_the_service_fixture() {
        let expected = fixture();
        let detail = StatusChangeDetail {
            principal: "arn:aws:iam::123456789012:user/myuser".into(),
            statement_name: "test.testtable".into(),
            statement_id: "dd2e1ec9-2ee3-49a0-819f-905fa7d75a4a".into(),
            redshift_query_id: -1,
            state: "FINISHED".into(),
            rows: 1,
            expire_at: 1601673265,
        };
        assert_eq!(
            serde_json::to_value(&detail).expect("serialize"),
            expected["detail"]
        );
    }

    #[test]
    fn put_events_body_names_source_detail_type_and_resources() {
        let detail = StatusChangeDetail {
            principal: "p".into(),
            statement_name: "n".into(),
            statement_id: "i".into(),
            redshift_query_id: 7,
            state: "FAILED".into(),
            rows: 0,
            expire_at: 1,
        };
        let arn = "arn:aws:redshift:us-east-1:123456789012:cluster:c".to_string();
        let body: serde_json::Value = serde_json::from_str(
            &put_events_body(&detail, std::slice::from_ref(&arn), "default").expect("body"),
        )
        .expect("json");
        let entry = &body["Entries"][0];
        assert_eq!(entry["Source"], "aws.redshift-data");
        assert_eq!(entry["DetailType"], "Redshift Data Statement Status Change");
        assert_eq!(entry["Resources"][0], arn.as_str());
        let inner: serde_json::Value =
            serde_json::from_str(entry["Detail"].as_str().expect("string")).expect("detail json");
        assert_eq!(inner["state"], "FAILED");
        assert_eq!(inner["redshiftQueryId"], 7);
    }
}
