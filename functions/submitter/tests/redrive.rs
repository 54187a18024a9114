//! A redriven Task entry (`$$.Execution.RedriveCount` > 0) against real SDK clients answered by
//! aws-smithy-mocks: it takes the run lock under its own holder element before anything runs,
//! waits (a retryable `RunLockTaken`) while the lock is full, and submits under a new
//! `ClientToken`, so it never re-attaches to the statement of the failed attempt.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::{
    ConditionalCheckFailedException, ProvisionedThroughputExceededException,
};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_redshiftdata::operation::batch_execute_statement::BatchExecuteStatementOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_mocks::{mock, Rule};
use etl_callback::task::client_token;
use etl_callback::testing::{completer, item, s3, update, with_token, TOKEN};
use serde_json::{json, Value};
use submitter::{Config, Submitter};

const ID: &str = "0f6b0d3e-1b2c-4d5e-8f90-a1b2c3d4e5f6";
const ARN: &str =
    "arn:aws:states:us-east-1:123456789012:execution:etl-etl:daily-2021-06-26-3f7ef5c7";
const ENTERED: &str = "2021-06-27T06:00:01.456Z";
const LOCK_TABLE: &str = "run-lock";

fn config(lock: bool) -> Config {
    Config::from_lookup(|name| {
        let value = match name {
            "TOKEN_TABLE" => "tokens",
            "SCRIPTS_BUCKET" => "scripts-bucket",
            "SCRIPTS_PREFIX" => "scripts/",
            "STATEMENT_NAME_PREFIX" => "redshift-etl-callback",
            "REDSHIFT_DATABASE" => "dev",
            "REDSHIFT_CLUSTER_ID" => "redshift-cluster-1",
            "RUN_LOCK_TABLE" if lock => LOCK_TABLE,
            "RUN_LOCK_NAME" if lock => "etl",
            "RUN_CONCURRENCY" if lock => "1",
            _ => return None,
        };
        Some(value.to_owned())
    })
    .unwrap()
}

fn payload(redrive: u32) -> Value {
    json!({
        "taskToken": TOKEN,
        "step": "LoadItem",
        "script": "load_item.sql",
        "runDate": "2021-06-26",
        "executionName": "daily-2021-06-26-3f7ef5c7",
        "executionId": ARN,
        "executionStartTime": "2021-06-27T06:00:00.123Z",
        "stateEnteredTime": ENTERED,
        "retryCount": 0,
        "redriveCount": redrive,
    })
}

fn script() -> Rule {
    mock!(aws_sdk_s3::Client::get_object).then_output(|| {
        GetObjectOutput::builder()
            .body(ByteStream::from_static(b"select 1;\n"))
            .build()
    })
}

fn submitter(lock: bool, s3_rules: &[&Rule], dynamodb: &[&Rule], redshift: &[&Rule]) -> Submitter {
    let completer = completer(dynamodb, &[], redshift);
    Submitter {
        config: config(lock),
        s3: s3(s3_rules),
        redshift_data: completer.redshift_data,
        table: completer.table,
        sfn: completer.sfn,
        lineage: completer.lineage,
    }
}

fn strings(value: Option<&AttributeValue>) -> Vec<String> {
    match value {
        Some(AttributeValue::Ss(v)) => v.clone(),
        Some(AttributeValue::S(v)) => vec![v.clone()],
        Some(AttributeValue::N(v)) => vec![v.clone()],
        _ => Vec::new(),
    }
}

/// The lock requests seen, as (expression, condition, values by name), in order.
type Seen = Arc<Mutex<Vec<(String, String, Vec<(String, Vec<String>)>)>>>;

/// A lock `UpdateItem` whose expression starts with `$expression`, recorded in `$seen`.
macro_rules! lock_request {
    ($seen:expr, $expression:expr) => {{
        let seen = $seen.clone();
        mock!(aws_sdk_dynamodb::Client::update_item).match_requests(move |r| {
            let matches = r.table_name() == Some(LOCK_TABLE)
                && r.update_expression()
                    .is_some_and(|e| e.starts_with($expression));
            if matches {
                let mut values: Vec<(String, Vec<String>)> = r
                    .expression_attribute_values()
                    .map(|v| {
                        v.iter()
                            .map(|(k, v)| (k.clone(), strings(Some(v))))
                            .collect()
                    })
                    .unwrap_or_default();
                values.sort();
                seen.lock().unwrap().push((
                    r.update_expression().unwrap_or_default().to_owned(),
                    r.condition_expression().unwrap_or_default().to_owned(),
                    values,
                ));
            }
            matches
        })
    }};
}

#[tokio::test]
async fn a_redriven_step_takes_the_run_lock_under_its_own_element_then_submits_under_a_new_client_token(
) {
    let seen: Seen = Arc::default();
    let drop =
        lock_request!(seen, "DELETE holders").then_output(|| UpdateItemOutput::builder().build());
    let take =
        lock_request!(seen, "ADD holders").then_output(|| UpdateItemOutput::builder().build());
    let tokens = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = tokens.clone();
    let batch = mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .match_requests(move |r| {
            record
                .lock()
                .unwrap()
                .push(r.client_token().unwrap_or_default().to_owned());
            true
        })
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build());
    let store = update("SET taskToken", item(&with_token(ID)));
    let get = script();
    let s = submitter(true, &[&get], &[&drop, &take, &store], &[&batch]);

    let submitted = s.handle(payload(2)).await.unwrap();

    assert_eq!(submitted.statement_id, ID);
    assert_eq!(
        (drop.num_calls(), take.num_calls(), batch.num_calls()),
        (1, 1, 1)
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[0],
        (
            "DELETE holders :earlier".to_owned(),
            "attribute_exists(holders)".to_owned(),
            vec![(
                ":earlier".to_owned(),
                vec![ARN.to_owned(), format!("{ARN}#1")]
            )],
        ),
        "the elements of the attempts before this one are dropped first"
    );
    assert_eq!(
        seen[1],
        (
            "ADD holders :me".to_owned(),
            "attribute_not_exists(holders) OR contains(holders, :id) OR size(holders) < :limit"
                .to_owned(),
            vec![
                (":id".to_owned(), vec![format!("{ARN}#2")]),
                (":limit".to_owned(), vec!["1".to_owned()]),
                (":me".to_owned(), vec![format!("{ARN}#2")]),
            ],
        ),
        "the take is AcquireRunLock's, under this attempt's element"
    );
    let first_attempt = client_token(
        "redshift-etl-callback",
        "daily-2021-06-26-3f7ef5c7",
        "LoadItem",
        ENTERED,
        0,
    );
    let sent = tokens.lock().unwrap().clone();
    assert_eq!(
        sent,
        vec![client_token(
            "redshift-etl-callback",
            "daily-2021-06-26-3f7ef5c7",
            "LoadItem",
            ENTERED,
            2
        )]
    );
    assert_ne!(
        sent[0], first_attempt,
        "never the failed attempt's statement, even with the same entry time"
    );
}

#[tokio::test]
async fn while_the_run_lock_is_full_a_redriven_step_fails_with_run_lock_taken_and_runs_nothing() {
    let seen: Seen = Arc::default();
    let drop = lock_request!(seen, "DELETE holders").then_error(|| {
        UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder().build(),
        )
    });
    let full = lock_request!(seen, "ADD holders").then_error(|| {
        UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder().build(),
        )
    });
    let batch = mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build());
    let get = script();
    let s = submitter(true, &[&get], &[&drop, &full], &[&batch]);

    let err = s.handle(payload(1)).await.unwrap_err();

    assert_eq!(err.name(), "RunLockTaken");
    assert!(err.to_string().contains("RunConcurrency (1)"), "{err}");
    assert_eq!((drop.num_calls(), full.num_calls()), (1, 1));
    assert_eq!(
        (get.num_calls(), batch.num_calls()),
        (0, 0),
        "nothing read, nothing run"
    );
}

#[tokio::test]
async fn a_throttled_run_lock_request_is_the_retryable_run_lock_throttled() {
    let seen: Seen = Arc::default();
    let drop = lock_request!(seen, "DELETE holders").then_error(|| {
        UpdateItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder().build(),
        )
    });
    let batch = mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build());
    let s = submitter(true, &[], &[&drop], &[&batch]);

    let err = s.handle(payload(1)).await.unwrap_err();

    assert_eq!(err.name(), "RunLockThrottled");
    assert_eq!(batch.num_calls(), 0);
}

#[tokio::test]
async fn a_first_attempt_does_not_touch_the_run_lock_acquire_run_lock_took_it() {
    let seen: Seen = Arc::default();
    let drop =
        lock_request!(seen, "DELETE holders").then_output(|| UpdateItemOutput::builder().build());
    let take =
        lock_request!(seen, "ADD holders").then_output(|| UpdateItemOutput::builder().build());
    let batch = mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build());
    let store = update("SET taskToken", item(&with_token(ID)));
    let get = script();
    let s = submitter(true, &[&get], &[&drop, &take, &store], &[&batch]);

    s.handle(payload(0)).await.unwrap();

    assert_eq!((drop.num_calls(), take.num_calls()), (0, 0));
    assert_eq!(batch.num_calls(), 1);
}

#[tokio::test]
async fn without_a_configured_run_lock_a_redriven_step_just_runs() {
    let batch = mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build());
    let store = update("SET taskToken", item(&with_token(ID)));
    let get = script();
    let s = submitter(false, &[&get], &[&store], &[&batch]);

    s.handle(payload(1)).await.unwrap();

    assert_eq!(batch.num_calls(), 1);
}

#[test]
fn a_run_lock_table_needs_its_name_and_concurrency() {
    let err = Config::from_lookup(|name| {
        let value = match name {
            "TOKEN_TABLE" => "tokens",
            "SCRIPTS_BUCKET" => "b",
            "STATEMENT_NAME_PREFIX" => "p",
            "REDSHIFT_DATABASE" => "dev",
            "REDSHIFT_WORKGROUP" => "wg",
            "RUN_LOCK_TABLE" => LOCK_TABLE,
            "RUN_CONCURRENCY" => "0",
            _ => return None,
        };
        Some(value.to_owned())
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("RUN_LOCK_NAME"), "{err}");
    assert!(err.contains("RUN_CONCURRENCY"), "{err}");
}
