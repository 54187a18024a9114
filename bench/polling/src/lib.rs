//! Benchmark code, not part of the product: the two Lambdas of the polling baseline that
//! `bench/compare.py` runs next to the callback state machine. They mirror the original AWS
//! sample's design (submit a batch, then `Wait` + `DescribeStatement` + `Choice` in a loop) and run
//! the same SQL: the script is read from the same bucket and prepared by the product's own
//! `etl_callback::script::prepare`, so both designs submit identical batches.

pub mod asl;

use serde::{Deserialize, Serialize};

/// Submit function input (the state machine's `Payload`). Tolerant like the product's
/// `TaskInput`: unknown fields are ignored, and every field added later is optional.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitInput {
    pub step: String,
    /// Empty for a check whose SELECT the payload carries (`sql`).
    #[serde(default)]
    pub script: String,
    /// A check step's statement, wrapped as the product's submitter wraps it
    /// (`etl_callback::check::wrap`): the baselines run the same SQL, without deciding on its rows.
    #[serde(default)]
    pub sql: Option<String>,
    /// The scripts' content version baked into the definition; missing or null: the unversioned
    /// key of a definition generated before scripts were versioned.
    #[serde(default)]
    pub scripts_version: Option<String>,
    pub run_date: String,
    pub execution_name: String,
    /// The pipeline's variables' types and values (the definition's defaults, baked into the
    /// definition: the baselines have no per-run or per-deployment variables). Missing: none.
    #[serde(default)]
    pub var_types: Option<serde_json::Value>,
    #[serde(default)]
    pub vars: Option<serde_json::Value>,
}

impl SubmitInput {
    /// The script's values: the run date's built-ins and the variables, checked as the product's
    /// submitter checks them.
    pub fn values(&self) -> Result<etl_callback::vars::Values, String> {
        let run_date =
            etl_callback::run_date::RunDate::parse(&self.run_date).map_err(|e| e.to_string())?;
        etl_callback::task::typed_vars(
            etl_callback::vars::Values::new(run_date),
            self.var_types.as_ref(),
            self.vars.as_ref(),
        )
        .map_err(|e| e.to_string())
    }
}

impl SubmitInput {
    /// The S3 key of the step's script under `prefix`, as the product's submitter builds it:
    /// `<prefix><version>/<script>`, or `<prefix><script>` without a version. A version that is
    /// not 16 lowercase hex digits is refused.
    pub fn script_key(&self, prefix: &str) -> Result<String, String> {
        use etl_callback::task::{is_scripts_version, script_key};
        match self.scripts_version.as_deref() {
            Some(version) if !is_scripts_version(version) => Err(format!(
                "scriptsVersion {version:?} is not the scripts' content version (16 lowercase hex digits)"
            )),
            version => Ok(script_key(prefix, version, &self.script)),
        }
    }
}

/// The step's SQL, filled with the run's values and split as the product's submitter does: a
/// check's SELECT from the payload, else the step's script from `bucket` under `prefix`.
pub async fn prepared_sql(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    input: &SubmitInput,
) -> Result<Vec<String>, lambda_runtime::Error> {
    let values = input.values()?;
    let raw: Vec<u8> = match input.sql.as_deref() {
        Some(sql) => sql.as_bytes().to_vec(),
        None => {
            let key = input.script_key(prefix)?;
            let object = s3.get_object().bucket(bucket).key(&key).send().await?;
            object.body.collect().await?.into_bytes().to_vec()
        }
    };
    Ok(etl_callback::script::prepare_with(&raw, &values)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(extra: serde_json::Value) -> SubmitInput {
        let mut v = json!({"step": "LoadItem", "script": "load_item.sql",
                           "runDate": "2021-06-26", "executionName": "run-1"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_script_key_has_the_payload_s_version_or_none() {
        let versioned = input(json!({"scriptsVersion": "0123456789abcdef"}));
        assert_eq!(
            versioned.script_key("scripts/").unwrap(),
            "scripts/0123456789abcdef/load_item.sql"
        );
        for legacy in [json!({}), json!({"scriptsVersion": null})] {
            assert_eq!(
                input(legacy).script_key("scripts/").unwrap(),
                "scripts/load_item.sql"
            );
        }
        for bad in ["0123456789ABCDEF", "../x", ""] {
            let err = input(json!({ "scriptsVersion": bad }))
                .script_key("scripts/")
                .unwrap_err();
            assert!(err.contains("scriptsVersion"), "{err}");
        }
    }

    #[test]
    fn unknown_payload_fields_are_ignored() {
        let v = input(json!({"someFutureField": {"a": 1}, "scriptsVersion": "fedcba9876543210"}));
        assert_eq!(v.step, "LoadItem");
        assert_eq!(v.script_key("").unwrap(), "fedcba9876543210/load_item.sql");
    }
}
