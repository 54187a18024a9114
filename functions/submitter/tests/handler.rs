//! The submitter against real SDK clients answered by aws-smithy-mocks.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;
use aws_sdk_redshiftdata::operation::batch_execute_statement::{
    BatchExecuteStatementError, BatchExecuteStatementOutput,
};
use aws_sdk_redshiftdata::types::error::ActiveStatementsExceededException;
use aws_sdk_redshiftdata::types::StatusString;
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::error::NoSuchKey;
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput;
use aws_smithy_mocks::{mock, Rule};
use etl_callback::testing::{
    completed_by, completer, described, item, s3, update, with_token, TOKEN,
};
use serde_json::Value;
use submitter::{Config, Submitter, Target};

const ID: &str = "5c3b5f0e-5a8e-4a57-9f0e-7d1a2a3b4c5d";
const SCRIPT: &str = "-- two statements; the second uses the run date\n\
    create table if not exists t (d date);\n\
    insert into t values ({{run_date}}::date);\n";

fn config() -> Config {
    Config::from_lookup(|name| {
        let value = match name {
            "TOKEN_TABLE" => "tokens",
            "SCRIPTS_BUCKET" => "scripts-bucket",
            "SCRIPTS_PREFIX" => "scripts/",
            "STATEMENT_NAME_PREFIX" => "redshift-etl-callback",
            "REDSHIFT_DATABASE" => "dev",
            "REDSHIFT_CLUSTER_ID" => "redshift-cluster-1",
            "REDSHIFT_DB_USER" => "awsuser",
            _ => return None,
        };
        Some(value.to_owned())
    })
    .unwrap()
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture exists")).unwrap()
}

fn input() -> Value {
    let mut input = fixture("submitter.json");
    input["taskToken"] = TOKEN.into();
    input
}

fn script(body: &'static str) -> Rule {
    mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|r| {
            r.bucket() == Some("scripts-bucket") && r.key() == Some("scripts/load_item.sql")
        })
        .then_output(move || {
            GetObjectOutput::builder()
                .body(ByteStream::from_static(body.as_bytes()))
                .build()
        })
}

fn batch() -> Rule {
    mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .match_requests(|r| {
            r.sqls()
                == [
                    "-- two statements; the second uses the run date\ncreate table if not exists t (d date)",
                    "insert into t values ('2021-06-26'::date)",
                ]
                && r.with_event() == Some(true)
                && r.database() == Some("dev")
                && r.cluster_identifier() == Some("redshift-cluster-1")
                && r.db_user() == Some("awsuser")
                && r.workgroup_name().is_none()
                && r.statement_name() == Some("redshift-etl-callback/daily-2021-06-26-3f7ef5c7/LoadItem")
        })
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build())
}

fn store_token(attributes: &[(&str, &str)]) -> Rule {
    let attributes = item(attributes);
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.condition_expression() == Some("attribute_not_exists(taskToken)")
                && r.key()
                    .and_then(|k| k.get("statementId"))
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some(ID)
                && r.expression_attribute_values()
                    .and_then(|v| v.get(":token"))
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some(TOKEN)
        })
        .then_output(move || {
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder()
                .set_attributes(Some(attributes.clone()))
                .build()
        })
}

fn submitter(
    s3_rules: &[&Rule],
    dynamodb: &[&Rule],
    sfn: &[&Rule],
    redshift: &[&Rule],
) -> Submitter {
    Submitter {
        config: config(),
        s3: s3(s3_rules),
        completer: completer(dynamodb, sfn, redshift),
    }
}

#[tokio::test]
async fn submits_the_script_as_one_batch_with_events_and_parks_the_token() {
    let (get, batch) = (script(SCRIPT), batch());
    let store = store_token(&with_token(ID));
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let s = submitter(&[&get], &[&store], &[&success], &[&batch]);

    let submitted = s.handle(input()).await.unwrap();

    assert_eq!(submitted.statement_id, ID);
    assert_eq!(submitted.statements, 2);
    assert_eq!(submitted.completion, "WaitingForEvent");
    assert_eq!(
        (get.num_calls(), batch.num_calls(), store.num_calls()),
        (1, 1, 1)
    );
    assert_eq!(success.num_calls(), 0, "nothing completes before the event");
}

#[tokio::test]
async fn when_the_event_arrived_first_the_submitter_completes_the_task() {
    let (get, batch) = (script(SCRIPT), batch());
    let mut both = with_token(ID);
    both.extend([("eventState", "FINISHED"), ("eventRows", "1")]);
    let store = store_token(&both);
    let claim = update("SET claimedUntil", item(&[]));
    let mark = completed_by("submitter");
    let describe = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_output(|| {
        described(
            StatusString::Finished,
            &[("x:1", StatusString::Finished, 1, None)],
        )
    });
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| {
            r.task_token() == Some(TOKEN) && r.output().is_some_and(|o| o.contains(ID))
        })
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let s = submitter(
        &[&get],
        &[&store, &claim, &mark],
        &[&success],
        &[&batch, &describe],
    );

    let submitted = s.handle(input()).await.unwrap();

    assert_eq!(submitted.completion, "Succeeded");
    assert_eq!(
        (claim.num_calls(), success.num_calls(), mark.num_calls()),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn when_the_data_api_is_at_its_statement_limit_the_error_is_retryable_and_nothing_is_stored()
{
    let get = script(SCRIPT);
    let busy = mock!(aws_sdk_redshiftdata::Client::batch_execute_statement).then_error(|| {
        BatchExecuteStatementError::ActiveStatementsExceededException(
            ActiveStatementsExceededException::builder()
                .message("Active statements exceeded the allowed quota")
                .build(),
        )
    });
    let store = store_token(&with_token(ID));
    let s = submitter(&[&get], &[&store], &[], &[&busy]);

    let err = s.handle(input()).await.unwrap_err();

    assert_eq!(err.name(), "RedshiftThrottled");
    assert_eq!(store.num_calls(), 0);
}

#[tokio::test]
async fn when_dynamodb_throttles_the_token_write_the_error_is_retryable() {
    let (get, batch) = (script(SCRIPT), batch());
    let throttled = mock!(aws_sdk_dynamodb::Client::update_item).then_error(|| {
        UpdateItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .build(),
        )
    });
    let s = submitter(&[&get], &[&throttled], &[], &[&batch]);

    assert_eq!(
        s.handle(input()).await.unwrap_err().name(),
        "TokenStoreThrottled"
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_read_or_run() {
    let (get, batch) = (script(SCRIPT), batch());
    let s = submitter(&[&get], &[], &[], &[&batch]);

    let bad_date = s
        .handle(fixture("submitter-bad-run-date.json"))
        .await
        .unwrap_err();
    let mut traversal = input();
    traversal["script"] = "../../etc/passwd.sql".into();
    let bad_script = s.handle(traversal).await.unwrap_err();
    let malformed = s
        .handle(serde_json::json!({"taskToken": TOKEN}))
        .await
        .unwrap_err();

    assert_eq!(bad_date.name(), "InvalidRunDate");
    assert!(bad_date.to_string().contains("2021-02-30"));
    assert_eq!(bad_script.name(), "InvalidInput");
    assert_eq!(malformed.name(), "InvalidInput");
    assert!(
        !format!("{malformed} {malformed:?}").contains(TOKEN),
        "the token never shows in an error"
    );
    assert_eq!((get.num_calls(), batch.num_calls()), (0, 0));
}

#[tokio::test]
async fn scripts_that_break_the_data_api_limits_are_refused_before_submitting() {
    let missing = mock!(aws_sdk_s3::Client::get_object)
        .then_error(|| GetObjectError::NoSuchKey(NoSuchKey::builder().build()));
    let batch = batch();
    let s = submitter(&[&missing], &[], &[], &[&batch]);
    assert_eq!(
        s.handle(input()).await.unwrap_err().name(),
        "ScriptNotFound"
    );

    let too_many: &'static str = "select 1;".repeat(41).leak();
    let oversized = mock!(aws_sdk_s3::Client::get_object).then_output(|| {
        GetObjectOutput::builder()
            .content_length(200_000)
            .body(ByteStream::from_static(b"select 1"))
            .build()
    });
    for (rule, name) in [
        (script(too_many), "TooManyStatements"),
        (oversized, "ScriptTooLarge"),
        (script("-- nothing to run\n"), "EmptyScript"),
        (script("select {{customer_id}}"), "UnknownPlaceholder"),
    ] {
        let s = submitter(&[&rule], &[], &[], &[&batch]);
        assert_eq!(s.handle(input()).await.unwrap_err().name(), name);
    }
    assert_eq!(batch.num_calls(), 0);
}

#[test]
fn configuration_names_every_problem_and_supports_serverless() {
    let err = Config::from_lookup(|_| None).unwrap_err().to_string();
    for name in [
        "TOKEN_TABLE",
        "SCRIPTS_BUCKET",
        "STATEMENT_NAME_PREFIX",
        "REDSHIFT_DATABASE",
        "REDSHIFT_CLUSTER_ID",
    ] {
        assert!(err.contains(name), "{err}");
    }
    let serverless = Config::from_lookup(|name| match name {
        "REDSHIFT_WORKGROUP" => Some("etl".into()),
        "REDSHIFT_CLUSTER_ID" | "REDSHIFT_DB_USER" => Some(String::new()),
        "TOKEN_TTL_SECONDS" => None,
        "REDSHIFT_SECRET_ARN" => {
            Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:etl".into())
        }
        other => Some(format!("{other}-value")),
    })
    .unwrap();
    assert!(
        matches!(serverless.target, Target::Workgroup { ref name, secret_arn: Some(_) } if name == "etl")
    );
}
