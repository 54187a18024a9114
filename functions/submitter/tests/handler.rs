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
use etl_callback::task::client_token;
use etl_callback::testing::{
    completed_by, completer, described, item, marked, read, s3, update, update_condition_fails,
    with_token, TOKEN,
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
    let completer = completer(dynamodb, sfn, redshift);
    Submitter {
        config: config(),
        s3: s3(s3_rules),
        redshift_data: completer.redshift_data,
        table: completer.table,
        sfn: completer.sfn,
        lineage: completer.lineage,
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
async fn a_bad_run_date_from_an_s3_trigger_names_the_object_and_nothing_is_read_or_run() {
    let (get, batch) = (script(SCRIPT), batch());
    let store = update("SET", item(&with_token(ID)));
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let s = submitter(&[&get], &[&store], &[&success], &[&batch]);

    let err = s
        .handle(fixture("submitter-bad-trigger-key.json"))
        .await
        .unwrap_err();

    assert_eq!(err.name(), "InvalidRunDate");
    assert_eq!(
        err.to_string(),
        "run date \"2021-13-01\" (from s3://redshift-etl-callback-triggers/markers/2021-13-01.ready) \
         is not a calendar date in the form YYYY-MM-DD"
    );
    assert_eq!(
        etl_callback::diagnostic(err.name(), &err).error_message,
        err.to_string(),
        "the message says it once"
    );
    assert_eq!(
        (
            get.num_calls(),
            batch.num_calls(),
            store.num_calls(),
            success.num_calls()
        ),
        (0, 0, 0, 0)
    );
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

/// S3 answers a GetObject of a missing key with 404 NoSuchKey only when the caller may also list
/// the bucket; otherwise with 403 AccessDenied. The template grants the submitter s3:ListBucket for
/// the scripts prefix, so a missing script is `ScriptNotFound`; an AccessDenied (a permission really
/// missing, or a missing key without ListBucket) stays `ScriptReadFailed` and says which
/// permission to check. Nothing is submitted in either case.
#[tokio::test]
async fn a_missing_script_is_not_found_and_access_denied_is_a_read_failure_naming_the_permission() {
    let batch = batch();
    let missing = mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|r| r.key() == Some("scripts/load_item.sql"))
        .then_error(|| {
            GetObjectError::NoSuchKey(
                NoSuchKey::builder()
                    .message("The specified key does not exist.")
                    .build(),
            )
        });
    let err = submitter(&[&missing], &[], &[], &[&batch])
        .handle(input())
        .await
        .unwrap_err();
    assert_eq!(err.name(), "ScriptNotFound");
    let diagnostic = etl_callback::diagnostic(err.name(), &err);
    assert_eq!(
        diagnostic.error_message,
        "script s3://scripts-bucket/scripts/load_item.sql does not exist"
    );

    let denied = mock!(aws_sdk_s3::Client::get_object).then_error(|| {
        GetObjectError::generic(
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("AccessDenied")
                .message("Access Denied")
                .build(),
        )
    });
    let err = submitter(&[&denied], &[], &[], &[&batch])
        .handle(input())
        .await
        .unwrap_err();
    assert_eq!(err.name(), "ScriptReadFailed");
    let diagnostic = etl_callback::diagnostic(err.name(), &err);
    assert_eq!(diagnostic.error_type, "ScriptReadFailed");
    let message = diagnostic.error_message;
    assert!(
        message
            .starts_with("access denied reading script s3://scripts-bucket/scripts/load_item.sql"),
        "{message}"
    );
    for needle in [
        "may be missing a permission",
        "s3:GetObject",
        "s3:ListBucket",
        "NoSuchKey",
    ] {
        assert!(message.contains(needle), "{needle}: {message}");
    }

    // Any other S3 failure is a read failure that does not blame permissions.
    let archived = mock!(aws_sdk_s3::Client::get_object).then_error(|| {
        GetObjectError::generic(
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("InvalidObjectState")
                .build(),
        )
    });
    let err = submitter(&[&archived], &[], &[], &[&batch])
        .handle(input())
        .await
        .unwrap_err();
    assert_eq!(err.name(), "ScriptReadFailed");
    assert!(!err.to_string().contains("permission"), "{err}");
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
        "TOKEN_TTL_SECONDS"
        | "FUNCTION_TIMEOUT_SECONDS"
        | "SUBMIT_WAIT_SECONDS"
        | "OPENLINEAGE_URL" => None,
        "RUN_CONCURRENCY" => Some("2".into()),
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

const NEW_TOKEN: &str = "AQCEAAAAKgAAAAMAAAAAAAAAAW-retry-token";
const ENTERED: &str = "2021-06-27T06:00:01.456Z";

fn attribute(
    values: Option<&std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    name: &str,
) -> Option<String> {
    values
        .and_then(|v| v.get(name))
        .and_then(|v| v.as_s().or_else(|_| v.as_n()).ok())
        .cloned()
}

/// The attempt-`attempt` retry of the fixture's Task entry, with its own token.
fn retry(token: &str, attempt: u32) -> Value {
    let mut input = input();
    input["taskToken"] = token.into();
    input["retryCount"] = attempt.into();
    input
}

/// The item after a retry's token was stored: same execution and step, a later attempt.
fn stored(
    token: &'static str,
    attempt: &'static str,
    extra: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    let mut pairs = vec![
        ("statementId", ID),
        ("taskToken", token),
        ("step", "LoadItem"),
        ("runDate", "2021-06-26"),
        ("executionName", "daily-2021-06-26-3f7ef5c7"),
        ("attempt", attempt),
    ];
    pairs.extend_from_slice(extra);
    pairs
}

fn any_batch() -> Rule {
    mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build())
}

#[tokio::test]
async fn the_stored_token_is_pending_in_the_sparse_index_with_its_attempt_and_entry_time() {
    let (get, batch) = (script(SCRIPT), batch());
    let store = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            let values = r.expression_attribute_values();
            r.update_expression().is_some_and(|e| {
                e.contains("pending = :pending")
                    && e.contains("submittedAt = :now")
                    && e.contains("attempt = :attempt")
                    && e.contains("stateEnteredTime = :entered")
            }) && attribute(values, ":pending").as_deref() == Some("PENDING")
                && values
                    .and_then(|v| v.get(":now"))
                    .is_some_and(|v| v.as_n().is_ok())
                && attribute(values, ":attempt").as_deref() == Some("0")
                && attribute(values, ":entered").as_deref() == Some(ENTERED)
        })
        .then_output(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder()
                .set_attributes(Some(item(&with_token(ID))))
                .build()
        });
    let s = submitter(&[&get], &[&store], &[], &[&batch]);

    let submitted = s.handle(input()).await.unwrap();

    assert_eq!(
        (submitted.attempt, submitted.recorded.as_str()),
        (0, "Stored")
    );
    assert_eq!(store.num_calls(), 1);
}

#[tokio::test]
async fn the_client_token_is_the_same_for_every_retry_of_a_task_entry_and_differs_by_step_and_entry(
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    let batch = mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .match_requests(move |r| {
            record
                .lock()
                .unwrap()
                .push(r.client_token().unwrap_or_default().to_owned());
            true
        })
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build());
    let get = mock!(aws_sdk_s3::Client::get_object).then_output(|| {
        GetObjectOutput::builder()
            .body(ByteStream::from_static(SCRIPT.as_bytes()))
            .build()
    });
    let store = update("SET taskToken", item(&with_token(ID)));
    let s = submitter(&[&get], &[&store], &[], &[&batch]);

    let mut other_step = input();
    other_step["step"] = "LoadCustomerAddress".into();
    let mut other_entry = input();
    other_entry["stateEnteredTime"] = "2021-06-27T07:00:00.000Z".into();
    for payload in [
        input(),
        retry(TOKEN, 1),
        retry(TOKEN, 2),
        other_step,
        other_entry,
    ] {
        s.handle(payload).await.unwrap();
    }

    let tokens = seen.lock().unwrap().clone();
    let expected = client_token(
        "redshift-etl-callback",
        "daily-2021-06-26-3f7ef5c7",
        "LoadItem",
        ENTERED,
        0,
    );
    assert_eq!(tokens.len(), 5);
    assert_eq!(
        tokens[0], expected,
        "derived from prefix, execution, step and entry time"
    );
    assert!((1..=64).contains(&tokens[0].len()));
    assert_eq!(
        (tokens[1].as_str(), tokens[2].as_str()),
        (expected.as_str(), expected.as_str())
    );
    assert_ne!(tokens[3], expected, "another step");
    assert_ne!(tokens[4], expected, "another entry of the same step");
}

#[tokio::test]
async fn a_retry_with_a_newer_attempt_re_attaches_its_token_and_completes_once() {
    // Attempt 0 timed out; its completer met the dead token and recorded TASK_CLOSED. The
    // retry gets the same statement back (same ClientToken) and its token takes over.
    let (get, batch) = (script(SCRIPT), any_batch());
    let first_write = update_condition_fails("SET taskToken = :token, step");
    let replace = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            let values = r.expression_attribute_values();
            r.update_expression().is_some_and(|e| {
                e.starts_with("SET taskToken = :token, attempt = :attempt")
                    && e.contains("REMOVE completedAt, outcome, completedBy, claimedUntil")
            }) && r.condition_expression() == Some(REATTACH_CONDITION)
                && attribute(values, ":token").as_deref() == Some(NEW_TOKEN)
                && attribute(values, ":attempt").as_deref() == Some("1")
        })
        .then_output(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder()
                .set_attributes(Some(item(&stored(
                    NEW_TOKEN,
                    "1",
                    &[("eventState", "FINISHED"), ("eventRows", "2")],
                ))))
                .build()
        });
    let claim = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression() == Some("SET claimedUntil = :until")
                && attribute(r.expression_attribute_values(), ":token").as_deref()
                    == Some(NEW_TOKEN)
        })
        .then_output(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder().build()
        });
    let mark = marked("submitter", "SUCCEEDED", NEW_TOKEN);
    let describe = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_output(|| {
        described(
            StatusString::Finished,
            &[("x:1", StatusString::Finished, 2, None)],
        )
    });
    let new_success = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| r.task_token() == Some(NEW_TOKEN))
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let old_success = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| r.task_token() == Some(TOKEN))
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let s = submitter(
        &[&get],
        &[&first_write, &replace, &claim, &mark],
        &[&new_success, &old_success],
        &[&batch, &describe],
    );

    let submitted = s.handle(retry(NEW_TOKEN, 1)).await.unwrap();

    assert_eq!(
        (
            submitted.recorded.as_str(),
            submitted.completion.as_str(),
            submitted.attempt
        ),
        ("Reattached", "Succeeded", 1)
    );
    assert_eq!((first_write.num_calls(), replace.num_calls()), (1, 1));
    assert_eq!((new_success.num_calls(), old_success.num_calls()), (1, 0));
    assert_eq!(mark.num_calls(), 1);
}

#[tokio::test]
async fn an_older_attempt_arriving_after_a_newer_one_is_refused_and_completes_nothing() {
    let (get, batch) = (script(SCRIPT), any_batch());
    let (first_write, replace) = (
        update_condition_fails("SET taskToken = :token, step"),
        update_condition_fails("SET taskToken = :token, attempt"),
    );
    let current = read(item(&stored(NEW_TOKEN, "2", &[("eventState", "FINISHED")])));
    let (claim, success) = (
        update("SET claimedUntil", item(&[])),
        mock!(aws_sdk_sfn::Client::send_task_success)
            .then_output(|| SendTaskSuccessOutput::builder().build()),
    );
    let s = submitter(
        &[&get],
        &[&first_write, &replace, &current, &claim],
        &[&success],
        &[&batch],
    );

    let err = s.handle(retry(TOKEN, 1)).await.unwrap_err();

    assert_eq!(err.name(), "SupersededAttempt");
    assert!(!format!("{err} {err:?}").contains(TOKEN) && !format!("{err:?}").contains(NEW_TOKEN));
    assert_eq!(
        (current.num_calls(), claim.num_calls(), success.num_calls()),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn the_same_attempt_delivered_again_is_a_no_op() {
    let (get, batch) = (script(SCRIPT), any_batch());
    let (first_write, replace) = (
        update_condition_fails("SET taskToken = :token, step"),
        update_condition_fails("SET taskToken = :token, attempt"),
    );
    let current = read(item(&stored(TOKEN, "0", &[])));
    let s = submitter(&[&get], &[&first_write, &replace, &current], &[], &[&batch]);

    let submitted = s.handle(input()).await.unwrap();

    assert_eq!(
        (submitted.recorded.as_str(), submitted.completion.as_str()),
        ("Redelivered", "WaitingForEvent")
    );
}

/// The re-attach's condition: the same execution and step, an older attempt stored, whatever the
/// item's completion (a completed item gives its recorded outcome to the newer attempt).
const REATTACH_CONDITION: &str = "executionName = :execution AND step = :step \
     AND (attribute_not_exists(attempt) OR attempt < :attempt)";

/// The re-attach of attempt 1, answered with the item as DynamoDB leaves it: the new token, the
/// completion mark removed, the event half (`extra`) kept.
fn reattach(
    extra: &'static [(&'static str, &'static str)],
    names: &'static [(&'static str, &'static str)],
) -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression().is_some_and(|e| {
                e.starts_with("SET taskToken = :token, attempt = :attempt")
                    && e.ends_with(
                        "REMOVE completedAt, outcome, completedBy, claimedUntil, executionStatus",
                    )
            }) && r.condition_expression() == Some(REATTACH_CONDITION)
                && attribute(r.expression_attribute_values(), ":token").as_deref()
                    == Some(NEW_TOKEN)
        })
        .then_output(move || {
            let returned = etl_callback::testing::with_error_names(
                item(&stored(NEW_TOKEN, "1", extra)),
                names,
            );
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder()
                .set_attributes(Some(returned))
                .build()
        })
}

fn claimed_by(token: &'static str) -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |r| {
            r.update_expression() == Some("SET claimedUntil = :until")
                && attribute(r.expression_attribute_values(), ":token").as_deref() == Some(token)
        })
        .then_output(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder().build()
        })
}

#[tokio::test]
async fn a_newer_attempt_finding_its_statement_succeeded_closes_its_own_token_with_the_same_output()
{
    // Attempt 0's token was closed SUCCEEDED by the completer, yet Step Functions failed that
    // attempt too (the invoke's failure) and retried: the retry gets the recorded outcome.
    let (get, batch) = (script(SCRIPT), any_batch());
    let first_write = update_condition_fails("SET taskToken = :token, step");
    let replace = reattach(&[("eventState", "FINISHED"), ("eventRows", "2")], &[]);
    let (claim, mark) = (
        claimed_by(NEW_TOKEN),
        marked("submitter", "SUCCEEDED", NEW_TOKEN),
    );
    let describe = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_output(|| {
        described(
            StatusString::Finished,
            &[("x:1", StatusString::Finished, 2, None)],
        )
    });
    let new_success = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| {
            let output: etl_callback::task::StepResult =
                serde_json::from_str(r.output().unwrap()).unwrap();
            r.task_token() == Some(NEW_TOKEN)
                && output
                    == etl_callback::task::StepResult {
                        step: "LoadItem".into(),
                        statement_id: ID.into(),
                        run_date: "2021-06-26".into(),
                        status: "FINISHED".into(),
                        rows: 2,
                        duration_ms: 1_500,
                        check: None,
                    }
        })
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let old_token = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| r.task_token() == Some(TOKEN))
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let s = submitter(
        &[&get],
        &[&first_write, &replace, &claim, &mark],
        &[&new_success, &old_token],
        &[&batch, &describe],
    );

    let submitted = s.handle(retry(NEW_TOKEN, 1)).await.unwrap();

    assert_eq!(
        (submitted.recorded.as_str(), submitted.completion.as_str()),
        ("Reattached", "Succeeded")
    );
    assert_eq!(
        (
            replace.num_calls(),
            claim.num_calls(),
            new_success.num_calls(),
            mark.num_calls()
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(
        old_token.num_calls(),
        0,
        "the old token is never completed again"
    );
}

#[tokio::test]
async fn a_newer_attempt_finding_its_statement_failed_fails_its_own_token_with_the_same_mapped_error_and_cause(
) {
    let (get, batch) = (script(SCRIPT), any_batch());
    let first_write = update_condition_fails("SET taskToken = :token, step");
    let replace = reattach(
        &[("eventState", "FAILED")],
        &[("Redshift.StatementFailed", NO_SALES)],
    );
    let (claim, mark) = (
        claimed_by(NEW_TOKEN),
        marked("submitter", "FAILED", NEW_TOKEN),
    );
    let describe = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_output(|| {
        described(
            StatusString::Failed,
            &[("x:1", StatusString::Failed, -1, Some("ERROR: no sales"))],
        )
    });
    let failure = mock!(aws_sdk_sfn::Client::send_task_failure)
        .match_requests(|r| {
            let cause: etl_callback::task::StepFailure =
                serde_json::from_str(r.cause().unwrap()).unwrap();
            r.task_token() == Some(NEW_TOKEN)
                && r.error() == Some(NO_SALES)
                && cause
                    == etl_callback::task::StepFailure {
                        step: "LoadItem".into(),
                        statement_id: ID.into(),
                        run_date: "2021-06-26".into(),
                        status: "FAILED".into(),
                        error: "ERROR: no sales".into(),
                        failed_statement_index: Some(1),
                        failed_statement: Some("statement x:1".into()),
                    }
        })
        .then_output(|| {
            aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput::builder().build()
        });
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let s = submitter(
        &[&get],
        &[&first_write, &replace, &claim, &mark],
        &[&failure, &success],
        &[&batch, &describe],
    );

    let submitted = s.handle(with_errors(retry(NEW_TOKEN, 1))).await.unwrap();

    assert_eq!(
        (submitted.recorded.as_str(), submitted.completion.as_str()),
        ("Reattached", "Failed")
    );
    assert_eq!(
        (failure.num_calls(), mark.num_calls(), success.num_calls()),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn an_item_refusing_a_newer_attempt_of_its_own_entry_is_corrupt_and_completes_nothing() {
    // The re-attach's condition holds for an older stored attempt of the same execution and step;
    // an item that refuses it anyway is not one the store wrote.
    let (get, batch) = (script(SCRIPT), any_batch());
    let (first_write, replace) = (
        update_condition_fails("SET taskToken = :token, step"),
        update_condition_fails("SET taskToken = :token, attempt"),
    );
    let current = read(item(&stored(
        TOKEN,
        "0",
        &[
            ("eventState", "FINISHED"),
            ("completedAt", "1624773800"),
            ("outcome", "SUCCEEDED"),
        ],
    )));
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let s = submitter(
        &[&get],
        &[&first_write, &replace, &current],
        &[&success],
        &[&batch],
    );

    let err = s.handle(retry(NEW_TOKEN, 1)).await.unwrap_err();

    assert_eq!(err.name(), "TokenStoreCorrupt");
    assert!(err.to_string().contains(ID), "{err}");
    assert_eq!(success.num_calls(), 0);
}

#[tokio::test]
async fn a_task_input_without_its_state_entered_time_is_invalid_input() {
    let (get, batch) = (script(SCRIPT), any_batch());
    let s = submitter(&[&get], &[], &[], &[&batch]);
    let mut no_entry = input();
    no_entry.as_object_mut().unwrap().remove("stateEnteredTime");

    assert_eq!(s.handle(no_entry).await.unwrap_err().name(), "InvalidInput");
    assert_eq!(batch.num_calls(), 0);
}

const NO_SALES: &str = "Validation.NoSalesLoaded";

/// The fixture's Task with a step `errors` mapping.
fn with_errors(mut input: Value) -> Value {
    input["errors"] = serde_json::json!({"Redshift.StatementFailed": NO_SALES});
    input
}

fn stored_names(
    values: Option<&std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
) -> Option<Vec<(String, String)>> {
    let names = values?.get(":errorNames")?.as_m().ok()?;
    let mut pairs: Vec<(String, String)> = names
        .iter()
        .map(|(k, v)| (k.clone(), v.as_s().cloned().unwrap_or_default()))
        .collect();
    pairs.sort();
    Some(pairs)
}

fn the_mapping() -> Option<Vec<(String, String)>> {
    Some(vec![(
        "Redshift.StatementFailed".to_owned(),
        NO_SALES.to_owned(),
    )])
}

#[tokio::test]
async fn a_step_s_error_names_are_stored_with_its_token_and_applied_when_the_event_arrived_first() {
    let (get, batch) = (script(SCRIPT), batch());
    let mut both = with_token(ID);
    both.extend([("eventState", "FAILED")]);
    let returned = etl_callback::testing::with_error_names(
        item(&both),
        &[("Redshift.StatementFailed", NO_SALES)],
    );
    let store = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.condition_expression() == Some("attribute_not_exists(taskToken)")
                && r.update_expression().is_some_and(|e| {
                    e.starts_with("SET taskToken = :token, step = :step")
                        && e.ends_with(", errorNames = :errorNames")
                })
                && stored_names(r.expression_attribute_values()) == the_mapping()
        })
        .then_output(move || {
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder()
                .set_attributes(Some(returned.clone()))
                .build()
        });
    let claim = update("SET claimedUntil", item(&[]));
    let mark = marked("submitter", "FAILED", TOKEN);
    let describe = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_output(|| {
        described(
            StatusString::Failed,
            &[("x:1", StatusString::Failed, -1, Some("ERROR: no sales"))],
        )
    });
    let failure = mock!(aws_sdk_sfn::Client::send_task_failure)
        .match_requests(|r| {
            let cause: etl_callback::task::StepFailure =
                serde_json::from_str(r.cause().unwrap()).unwrap();
            r.task_token() == Some(TOKEN)
                && r.error() == Some(NO_SALES)
                && cause.error == "ERROR: no sales"
                && cause.status == "FAILED"
                && cause.statement_id == ID
        })
        .then_output(|| {
            aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput::builder().build()
        });
    let s = submitter(
        &[&get],
        &[&store, &claim, &mark],
        &[&failure],
        &[&batch, &describe],
    );

    let submitted = s.handle(with_errors(input())).await.unwrap();

    assert_eq!(submitted.completion, "Failed");
    assert_eq!(
        (store.num_calls(), failure.num_calls(), mark.num_calls()),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_retry_re_attaching_to_its_statement_stores_the_step_s_error_names_again() {
    let (get, batch) = (script(SCRIPT), any_batch());
    let first_write = update_condition_fails("SET taskToken = :token, step");
    let replace = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression().is_some_and(|e| {
                e.starts_with("SET taskToken = :token, attempt = :attempt")
                    && e.contains("pending = :pending, errorNames = :errorNames REMOVE completedAt")
            }) && stored_names(r.expression_attribute_values()) == the_mapping()
        })
        .then_output(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder()
                .set_attributes(Some(item(&stored(NEW_TOKEN, "1", &[]))))
                .build()
        });
    let s = submitter(&[&get], &[&first_write, &replace], &[], &[&batch]);

    let submitted = s.handle(with_errors(retry(NEW_TOKEN, 1))).await.unwrap();

    assert_eq!(
        (submitted.recorded.as_str(), submitted.completion.as_str()),
        ("Reattached", "WaitingForEvent")
    );
    assert_eq!(replace.num_calls(), 1);
}

#[tokio::test]
async fn without_error_names_the_token_writes_are_exactly_as_before() {
    const VALUES: [&str; 10] = [
        ":attempt",
        ":entered",
        ":execution",
        ":expires",
        ":name",
        ":now",
        ":pending",
        ":runDate",
        ":step",
        ":token",
    ];
    let keys = |r: &aws_sdk_dynamodb::operation::update_item::UpdateItemInput| {
        let mut keys: Vec<String> = r
            .expression_attribute_values()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };
    let (get, batch) = (script(SCRIPT), any_batch());
    let first = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |r| {
            r.update_expression()
                == Some(
                    "SET taskToken = :token, step = :step, runDate = :runDate, statementName = :name, \
                     executionName = :execution, attempt = :attempt, stateEnteredTime = :entered, \
                     submittedAt = :now, pending = :pending, expiresAt = if_not_exists(expiresAt, :expires)",
                )
                && keys(r) == VALUES
        })
        .then_output(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder()
                .set_attributes(Some(item(&with_token(ID))))
                .build()
        });
    let s = submitter(&[&get], &[&first], &[], &[&batch]);
    for empty in [None, Some(Value::Null), Some(serde_json::json!({}))] {
        let mut payload = input();
        if let Some(empty) = empty {
            payload["errors"] = empty;
        }
        assert_eq!(
            s.handle(payload).await.unwrap().completion,
            "WaitingForEvent"
        );
    }
    assert_eq!(first.num_calls(), 3);

    let refused = update_condition_fails("SET taskToken = :token, step");
    let replace = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |r| {
            r.update_expression()
                == Some(
                    "SET taskToken = :token, attempt = :attempt, stateEnteredTime = :entered, \
                     submittedAt = :now, pending = :pending \
                     REMOVE completedAt, outcome, completedBy, claimedUntil, executionStatus",
                )
                && keys(r)
                    == [
                        ":attempt",
                        ":entered",
                        ":execution",
                        ":now",
                        ":pending",
                        ":step",
                        ":token",
                    ]
        })
        .then_output(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder()
                .set_attributes(Some(item(&stored(NEW_TOKEN, "1", &[]))))
                .build()
        });
    let s = submitter(&[&get], &[&refused, &replace], &[], &[&batch]);
    s.handle(retry(NEW_TOKEN, 1)).await.unwrap();
    assert_eq!(replace.num_calls(), 1);
}

#[tokio::test]
async fn a_bad_errors_mapping_is_refused_naming_the_key_before_anything_is_read_or_run() {
    let (get, batch) = (script(SCRIPT), any_batch());
    let store = update("SET", item(&with_token(ID)));
    let s = submitter(&[&get], &[&store], &[], &[&batch]);
    for (errors, named) in [
        (
            serde_json::json!({"Redshift.StatementTimedOut": "X"}),
            "Redshift.StatementTimedOut",
        ),
        (
            serde_json::json!({"Redshift.StatementFailed": "States.TaskFailed"}),
            "States.",
        ),
        (
            serde_json::json!({"Redshift.StatementFailed": "No sales"}),
            "Redshift.StatementFailed",
        ),
        (serde_json::json!([NO_SALES]), "must be an object"),
    ] {
        let mut payload = input();
        payload["errors"] = errors;
        let err = s.handle(payload).await.unwrap_err();
        assert_eq!(err.name(), "InvalidInput");
        assert!(err.to_string().contains(named), "{err}");
    }
    assert_eq!(
        (get.num_calls(), batch.num_calls(), store.num_calls()),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn execution_names_step_functions_accepts_run_end_to_end() {
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;
    let (batches, writes): (Seen, Seen) = Default::default();
    let (record_batch, record_write) = (batches.clone(), writes.clone());
    let batch = mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .match_requests(move |r| {
            record_batch.lock().unwrap().push((
                r.statement_name().unwrap_or_default().to_owned(),
                r.client_token().unwrap_or_default().to_owned(),
            ));
            true
        })
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build());
    let store = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |r| {
            let values = r.expression_attribute_values();
            record_write.lock().unwrap().push((
                attribute(values, ":execution").unwrap_or_default(),
                attribute(values, ":name").unwrap_or_default(),
            ));
            true
        })
        .then_output(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder()
                .set_attributes(Some(item(&with_token(ID))))
                .build()
        });
    let get = mock!(aws_sdk_s3::Client::get_object).then_output(|| {
        GetObjectOutput::builder()
            .body(ByteStream::from_static(SCRIPT.as_bytes()))
            .build()
    });
    let s = submitter(&[&get], &[&store], &[], &[&batch]);
    let names = [
        "backfill-2021.06.26",
        "o'brien(rerun)=1@ops+!",
        "Zürich-läuft-日本語",
    ];

    for name in names {
        let mut payload = input();
        payload["executionName"] = name.into();
        let submitted = s.handle(payload).await.unwrap();
        assert_eq!(
            submitted.statement_name,
            format!("redshift-etl-callback/{name}/LoadItem")
        );
    }

    let (batches, writes) = (batches.lock().unwrap(), writes.lock().unwrap());
    assert_eq!((batches.len(), writes.len()), (3, 3));
    for (i, name) in names.iter().enumerate() {
        let statement = format!("redshift-etl-callback/{name}/LoadItem");
        let (sent_name, sent_token) = &batches[i];
        assert_eq!(sent_name, &statement);
        assert!(
            sent_name.starts_with("redshift-etl-callback/"),
            "the rule's prefix"
        );
        assert_eq!(
            sent_token,
            &client_token("redshift-etl-callback", name, "LoadItem", ENTERED, 0)
        );
        assert!(sent_token.len() == 64 && sent_token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(writes[i], ((*name).to_owned(), statement));
    }
}

#[tokio::test]
async fn execution_names_step_functions_refuses_are_invalid_input_before_anything_runs() {
    let (get, batch) = (script(SCRIPT), any_batch());
    let s = submitter(&[&get], &[], &[], &[&batch]);
    for name in ["run 1", "run/1", "run:1", "run\u{7}1", "", &"x".repeat(81)] {
        let mut payload = input();
        payload["executionName"] = name.into();
        let err = s.handle(payload).await.unwrap_err();
        assert_eq!(err.name(), "InvalidInput");
        assert!(
            err.to_string().contains("executionName")
                && err.to_string().contains("Step Functions execution name"),
            "{err}"
        );
    }
    assert_eq!((get.num_calls(), batch.num_calls()), (0, 0));
}

const VERSION: &str = "0123456789abcdef";

/// A script answered only at `key`.
fn script_at(key: &'static str, body: &'static str) -> Rule {
    mock!(aws_sdk_s3::Client::get_object)
        .match_requests(move |r| r.bucket() == Some("scripts-bucket") && r.key() == Some(key))
        .then_output(move || {
            GetObjectOutput::builder()
                .body(ByteStream::from_static(body.as_bytes()))
                .build()
        })
}

#[tokio::test]
async fn a_versioned_payload_reads_the_script_of_its_version_and_an_unversioned_one_the_legacy_key()
{
    let versioned = script_at("scripts/0123456789abcdef/load_item.sql", SCRIPT);
    let legacy = script(SCRIPT);
    let (batch, store) = (batch(), store_token(&with_token(ID)));
    let s = submitter(&[&versioned, &legacy], &[&store], &[], &[&batch]);

    let mut payload = input();
    payload["scriptsVersion"] = VERSION.into();
    assert_eq!(s.handle(payload).await.unwrap().statement_id, ID);
    assert_eq!((versioned.num_calls(), legacy.num_calls()), (1, 0));

    assert_eq!(s.handle(input()).await.unwrap().statement_id, ID);
    let mut null = input();
    null["scriptsVersion"] = Value::Null;
    assert_eq!(s.handle(null).await.unwrap().statement_id, ID);
    assert_eq!((versioned.num_calls(), legacy.num_calls()), (1, 2));
    assert_eq!(batch.num_calls(), 3);
}

#[tokio::test]
async fn a_version_with_no_scripts_uploaded_is_script_not_found_naming_the_versioned_key() {
    let missing = mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|r| r.key() == Some("scripts/fedcba9876543210/load_item.sql"))
        .then_error(|| GetObjectError::NoSuchKey(NoSuchKey::builder().build()));
    let batch = batch();
    let mut payload = input();
    payload["scriptsVersion"] = "fedcba9876543210".into();
    let err = submitter(&[&missing], &[], &[], &[&batch])
        .handle(payload)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "ScriptNotFound");
    assert_eq!(
        err.to_string(),
        "script s3://scripts-bucket/scripts/fedcba9876543210/load_item.sql does not exist"
    );
    assert_eq!((missing.num_calls(), batch.num_calls()), (1, 0));
}

#[tokio::test]
async fn a_bad_scripts_version_is_invalid_input_before_anything_is_read_or_run() {
    let any_get = mock!(aws_sdk_s3::Client::get_object).then_output(|| {
        GetObjectOutput::builder()
            .body(ByteStream::from_static(SCRIPT.as_bytes()))
            .build()
    });
    let batch = any_batch();
    let s = submitter(&[&any_get], &[], &[], &[&batch]);
    for bad in [
        serde_json::json!("0123456789ABCDEF"),
        serde_json::json!("0123456789abcde"),
        serde_json::json!("../0123456789abc"),
        serde_json::json!(""),
        serde_json::json!(16),
    ] {
        let mut payload = input();
        payload["scriptsVersion"] = bad.clone();
        let err = s.handle(payload).await.unwrap_err();
        assert_eq!(err.name(), "InvalidInput", "{bad}");
        assert!(!format!("{err} {err:?}").contains(TOKEN));
    }
    assert_eq!((any_get.num_calls(), batch.num_calls()), (0, 0));
}

/// A newer definition may send a field this submitter does not know (a deploy rolls the state
/// machine and the function out separately, and a running execution keeps its definition): it is
/// ignored, and the step runs exactly as without it.
#[tokio::test]
async fn an_unknown_payload_field_is_accepted_and_ignored() {
    let versioned = script_at("scripts/0123456789abcdef/load_item.sql", SCRIPT);
    let (batch, store) = (batch(), store_token(&with_token(ID)));
    let s = submitter(&[&versioned], &[&store], &[], &[&batch]);
    let mut payload = input();
    payload["scriptsVersion"] = VERSION.into();
    payload["sql"] = "drop table item".into();
    payload["someFutureField"] = serde_json::json!({"nested": [1, 2, 3]});

    let submitted = s.handle(payload).await.unwrap();

    assert_eq!(submitted.statement_id, ID);
    assert_eq!(
        submitted.statements, 2,
        "the script's statements, nothing else"
    );
    assert_eq!(
        (versioned.num_calls(), batch.num_calls(), store.num_calls()),
        (1, 1, 1)
    );
}

// --- checks -----------------------------------------------------------------------------------

#[tokio::test]
async fn a_check_runs_its_wrapped_select_from_the_payload_and_stores_the_check_with_the_token() {
    let mut payload = input();
    payload.as_object_mut().unwrap().remove("script");
    payload["check"] = serde_json::json!({
        "severity": "error", "maxRows": 4,
        "sql": "select id from t where d = {{run_date}}::date and id < 0",
    });
    let get = script(SCRIPT);
    let wrapped = mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .match_requests(|r| {
            r.sqls()
                == [etl_callback::check::wrap(
                    "select id from t where d = '2021-06-26'::date and id < 0",
                    4,
                )]
        })
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build());
    let stored = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            let check = r
                .expression_attribute_values()
                .and_then(|v| v.get(":check"))
                .and_then(|v| v.as_s().ok())
                .and_then(|s| serde_json::from_str::<etl_callback::check::StoredCheck>(s).ok());
            r.update_expression()
                .is_some_and(|e| e.contains("#check = :check"))
                && r.expression_attribute_names()
                    .and_then(|n| n.get("#check"))
                    .map(String::as_str)
                    == Some("check")
                && check.is_some_and(|c| {
                    c.max_rows == 4
                        && c.sql == "select id from t where d = '2021-06-26'::date and id < 0"
                })
        })
        .then_output(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder()
                .set_attributes(Some(item(&with_token(ID))))
                .build()
        });
    let s = submitter(&[&get], &[&stored], &[], &[&wrapped]);

    let submitted = s.handle(payload).await.unwrap();

    assert_eq!(
        (submitted.statements, submitted.completion.as_str()),
        (1, "WaitingForEvent")
    );
    assert_eq!(
        (get.num_calls(), wrapped.num_calls(), stored.num_calls()),
        (0, 1, 1),
        "no script read"
    );
}

#[tokio::test]
async fn a_check_script_that_is_not_one_select_is_refused_before_any_sql() {
    let mut payload = input();
    payload["check"] = serde_json::json!({"severity": "warn", "maxRows": 10});
    let (get, batch) = (script(SCRIPT), batch());
    let s = submitter(&[&get], &[], &[], &[&batch]);

    let err = s.handle(payload).await.unwrap_err();

    assert_eq!(err.name(), "InvalidCheck");
    assert!(err.to_string().contains("2 statements"), "{err}");
    assert_eq!((get.num_calls(), batch.num_calls()), (1, 0));
}

/// The `sam local invoke` fixture (`events/submitter.json`) is what the generated state machine's
/// Task sends for its step: every field of the Task's payload is in it (the deployment's own
/// `scriptsVersion` and the context fields aside), and with the project's real script it submits
/// (no `UnknownPlaceholder`: the script's `{{schema}}` comes from the fixture's `vars`).
#[tokio::test]
async fn the_sam_local_invoke_fixture_carries_what_the_task_sends_and_submits_the_real_script() {
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let asl: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/statemachine/etl.asl.json")).unwrap(),
    )
    .unwrap();
    let fixture = input();
    let step = fixture["step"].as_str().unwrap().to_owned();
    fn payload_of<'a>(v: &'a Value, step: &str) -> Option<&'a Value> {
        match v {
            Value::Object(map) => {
                let payload = map.get("Parameters").and_then(|p| p.get("Payload"));
                if payload.and_then(|p| p.get("step")).and_then(Value::as_str) == Some(step) {
                    return payload;
                }
                map.values().find_map(|v| payload_of(v, step))
            }
            Value::Array(items) => items.iter().find_map(|v| payload_of(v, step)),
            _ => None,
        }
    }
    let payload = payload_of(&asl, &step).expect("the fixture's step is in the state machine");
    let optional = [
        "scriptsVersion",
        "executionId",
        "redriveCount",
        "executionInput",
        "lineage",
    ];
    for key in payload.as_object().unwrap().keys() {
        let key = key.trim_end_matches(".$");
        assert!(
            optional.contains(&key) || fixture.get(key).is_some(),
            "events/submitter.json lacks {key}, which the Task sends"
        );
    }
    assert_eq!(fixture["varTypes"], payload["varTypes"]);

    let real: &'static str = Box::leak(
        std::fs::read_to_string(format!(
            "{root}/scripts/{}",
            fixture["script"].as_str().unwrap()
        ))
        .unwrap()
        .into_boxed_str(),
    );
    let get = script(real);
    let submit = mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .match_requests(|r| {
            !r.sqls().is_empty()
                && r.sqls().iter().all(|sql| !sql.contains("{{"))
                && r.sqls().iter().any(|sql| sql.contains("\"public\""))
        })
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build());
    let store = store_token(&with_token(ID));
    let s = submitter(&[&get], &[&store], &[], &[&submit]);

    let submitted = s.handle(input()).await.unwrap();

    assert_eq!(submitted.completion, "WaitingForEvent");
    assert_eq!((submit.num_calls(), store.num_calls()), (1, 1));
}
