//! The local S3 (moto) that COPY reads and UNLOAD writes: the workspace's S3 SDK client, pointed
//! at `--s3-endpoint` (plain `http://`) with dummy credentials (moto takes any), path-style
//! addressing.
//!
//! Errors carry Redshift's wording for S3 failures ("S3ServiceException:…"), as COPY and UNLOAD
//! report them.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// "S3ServiceException:The specified bucket does not exist,Status 404,Error NoSuchBucket".
    #[error("S3ServiceException:The specified bucket does not exist,Status 404,Error NoSuchBucket,Bucket {0}")]
    NoSuchBucket(String),
    #[error("S3ServiceException:The specified key does not exist.,Status 404,Error NoSuchKey,Key s3://{bucket}/{key}")]
    NoSuchKey { bucket: String, key: String },
    #[error("S3ServiceException:{message},Error {code}")]
    Service { code: String, message: String },
    #[error("S3 request failed: {0}")]
    Transport(String),
}

fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    error: SdkError<E, R>,
    bucket: &str,
    key: &str,
) -> S3Error {
    match error.as_service_error() {
        Some(service) => match service.code() {
            Some("NoSuchBucket") => S3Error::NoSuchBucket(bucket.to_string()),
            Some("NoSuchKey") => S3Error::NoSuchKey {
                bucket: bucket.to_string(),
                key: key.to_string(),
            },
            code => S3Error::Service {
                code: code.unwrap_or("Unknown").to_string(),
                message: service.message().unwrap_or("").to_string(),
            },
        },
        None => S3Error::Transport(format!("{error:?}").chars().take(300).collect()),
    }
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: i64,
}

#[derive(Clone, Debug)]
pub struct S3 {
    client: aws_sdk_s3::Client,
}

impl S3 {
    /// A client for the S3 API at `endpoint` (plain `http://` to moto).
    pub fn new(endpoint: &str, region: &str) -> Self {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .credentials_provider(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "redshift-data-emulator",
            ))
            .endpoint_url(endpoint)
            .force_path_style(true)
            // Plain HTTP only: the local S3. (Not `etl_callback::aws::http_client`: its crate's
            // `aws` feature would build every SDK client of the Lambdas into the emulator.)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(config),
        }
    }

    /// Every object whose key starts with `prefix`, in key order.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<Object>, S3Error> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| classify(e, bucket, prefix))?;
            objects.extend(page.contents().iter().filter_map(|o| {
                Some(Object {
                    key: o.key()?.to_string(),
                    size: o.size().unwrap_or(0),
                })
            }));
            match page.next_continuation_token() {
                Some(next) if page.is_truncated().unwrap_or(false) => {
                    token = Some(next.to_string());
                }
                _ => break,
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, S3Error> {
        let output = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(e, bucket, key))?;
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| S3Error::Transport(e.to_string()))?;
        Ok(bytes.into_bytes().to_vec())
    }

    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), S3Error> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify(e, bucket, key))?;
        Ok(())
    }
}
