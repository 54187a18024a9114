//! The submitter's wait (`SUBMIT_WAIT_SECONDS`: `BatchExecuteStatement` with `WaitTimeSeconds`)
//! against real SDK clients answered by aws-smithy-mocks: a batch that ended within the wait is
//! stored with its token and the completion claim in one write and closed by the submitter at once
//! (`completedBy` `submitter-wait`; a token already stored, or a failed write, takes the general
//! path: the event's own write, the token's write, the shared settle path); one still running parks the token; a wait the
//! Data API refuses falls back to the plain submit under the same `ClientToken`.

use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_redshiftdata::operation::batch_execute_statement::{
    BatchExecuteStatementError, BatchExecuteStatementOutput,
};
use aws_sdk_redshiftdata::types::error::ActiveStatementsExceededException;
use aws_sdk_redshiftdata::types::{StatementStatusString, StatusString};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput;
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput;
use aws_smithy_mocks::{mock, Rule};
use aws_smithy_types::error::ErrorMetadata;
use etl_callback::task::client_token;
use etl_callback::testing::{
    completer, described, item, marked, s3, update, update_condition_fails, with_error_names,
    with_token, TOKEN,
};
use serde_json::Value;
use submitter::{Config, Submitter};

const ID: &str = "5c3b5f0e-5a8e-4a57-9f0e-7d1a2a3b4c5d";
const WAIT: u32 = 5;
const NO_SALES: &str = "Validation.NoSalesLoaded";

fn config(wait: Option<&str>) -> Result<Config, etl_callback::config::ConfigError> {
    let wait = wait.map(str::to_owned);
    Config::from_lookup(move |name| {
        let value = match name {
            "TOKEN_TABLE" => "tokens",
            "SCRIPTS_BUCKET" => "scripts-bucket",
            "SCRIPTS_PREFIX" => "scripts/",
            "STATEMENT_NAME_PREFIX" => "redshift-etl-callback",
            "REDSHIFT_DATABASE" => "dev",
            "REDSHIFT_CLUSTER_ID" => "redshift-cluster-1",
            "REDSHIFT_DB_USER" => "awsuser",
            "SUBMIT_WAIT_SECONDS" => return wait.clone(),
            _ => return None,
        };
        Some(value.to_owned())
    })
}

fn input() -> Value {
    let path = format!("{}/../../events/submitter.json", env!("CARGO_MANIFEST_DIR"));
    let mut input: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).unwrap();
    input["taskToken"] = TOKEN.into();
    input
}

fn with_errors(mut input: Value) -> Value {
    input["errors"] = serde_json::json!({"Redshift.StatementFailed": NO_SALES});
    input
}

/// The fixture Task entry's `ClientToken`: every submit of it, waited or plain, carries it.
fn entry_token() -> String {
    client_token(
        "redshift-etl-callback",
        "daily-2021-06-26-3f7ef5c7",
        "LoadItem",
        "2021-06-27T06:00:01.456Z",
        0,
    )
}

fn script() -> Rule {
    mock!(aws_sdk_s3::Client::get_object).then_output(|| {
        GetObjectOutput::builder()
            .body(ByteStream::from_static(
                b"insert into t values ({{run_date}}::date);\n",
            ))
            .build()
    })
}

/// The submit with the configured `WaitTimeSeconds`, answering `status` (the batch's state when
/// the wait ended).
fn waited(status: StatementStatusString) -> Rule {
    mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .match_requests(|r| {
            r.wait_time_seconds() == Some(WAIT as i32)
                && r.with_event() == Some(true)
                && r.client_token() == Some(entry_token().as_str())
        })
        .then_output(move || {
            BatchExecuteStatementOutput::builder()
                .id(ID)
                .status(status.clone())
                .build()
        })
}

/// The submit with the configured wait, refused with error `code`.
fn waited_refused(code: &'static str) -> Rule {
    mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .match_requests(|r| r.wait_time_seconds().is_some())
        .then_error(move || {
            BatchExecuteStatementError::generic(
                ErrorMetadata::builder()
                    .code(code)
                    .message("refused by the test")
                    .build(),
            )
        })
}

/// The plain submit (no `WaitTimeSeconds`) under the entry's `ClientToken`.
fn plain() -> Rule {
    mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .match_requests(|r| {
            r.wait_time_seconds().is_none() && r.client_token() == Some(entry_token().as_str())
        })
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build())
}

/// The status event's own write (`record_event`) of `state`, answering `attributes` as ALL_NEW.
fn event_written(state: &'static str, attributes: &[(&str, &str)]) -> Rule {
    let attributes = item(attributes);
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |r| {
            r.update_expression().is_some_and(|e| {
                e.starts_with("SET eventState = if_not_exists(eventState, :state)")
            }) && r
                .expression_attribute_values()
                .and_then(|v| v.get(":state"))
                .and_then(|v| v.as_s().ok())
                .is_some_and(|v| v == state)
                && r.key()
                    .and_then(|k| k.get("statementId"))
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|v| v == ID)
        })
        .then_output(move || {
            UpdateItemOutput::builder()
                .set_attributes(Some(attributes.clone()))
                .build()
        })
}

/// The token's first write, answering `attributes` as ALL_NEW.
fn token_written(
    attributes: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| r.condition_expression() == Some("attribute_not_exists(taskToken)"))
        .then_output(move || {
            UpdateItemOutput::builder()
                .set_attributes(Some(attributes.clone()))
                .build()
        })
}

/// The wait's one write for an ordinary step: the first token with the state the wait saw
/// (`if_not_exists`, as the event's own write) and the completion mark with `outcome`, answering
/// `attributes` as ALL_NEW. No claim and no `pending`: nobody else may close the task.
fn settled_written(
    state: &'static str,
    outcome: &'static str,
    attributes: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |r| {
            let value = |name: &str| {
                r.expression_attribute_values()
                    .and_then(|v| v.get(name))
                    .and_then(|v| v.as_s().ok())
                    .cloned()
            };
            r.condition_expression() == Some("attribute_not_exists(taskToken)")
                && r.update_expression().is_some_and(|e| {
                    e.contains("taskToken = :token")
                        && e.contains("eventState = if_not_exists(eventState, :state)")
                        && e.contains("completedAt = :now, outcome = :outcome, completedBy = :side")
                        && !e.contains("pending")
                        && !e.contains("claimedUntil")
                })
                && value(":state").as_deref() == Some(state)
                && value(":outcome").as_deref() == Some(outcome)
                && value(":side").as_deref() == Some("submitter-wait")
        })
        .then_output(move || {
            UpdateItemOutput::builder()
                .set_attributes(Some(attributes.clone()))
                .build()
        })
}

/// Taking back the completion mark of a failed callback: the task waits again.
fn unmarked() -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                == Some("SET pending = :pending REMOVE completedAt, outcome, completedBy")
                && r.condition_expression() == Some("taskToken = :token")
        })
        .then_output(|| UpdateItemOutput::builder().build())
}

/// Any first-token write refused: a token is stored already (a redelivered invocation).
fn first_refused() -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| r.condition_expression() == Some("attribute_not_exists(taskToken)"))
        .then_error(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
                aws_sdk_dynamodb::types::error::ConditionalCheckFailedException::builder()
                    .message("The conditional request failed")
                    .build(),
            )
        })
}

fn submitter(
    wait: u32,
    dynamodb: &[&Rule],
    sfn: &[&Rule],
    redshift: &[&Rule],
    get: &Rule,
) -> Submitter {
    let completer = completer(dynamodb, sfn, redshift);
    let mut config = config(None).unwrap();
    config.submit_wait_seconds = wait;
    Submitter {
        config,
        s3: s3(&[get]),
        redshift_data: completer.redshift_data,
        table: completer.table,
        sfn: completer.sfn,
        lineage: completer.lineage,
    }
}

fn finished_describe() -> Rule {
    mock!(aws_sdk_redshiftdata::Client::describe_statement).then_output(|| {
        described(
            StatusString::Finished,
            &[(&format!("{ID}:1"), StatusString::Finished, 3, None)],
        )
    })
}

fn both_halves(state: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut both = with_token(ID);
    both.extend([("eventState", state)]);
    both
}

#[test]
fn the_wait_is_read_from_its_variable_and_anything_outside_0_to_30_names_it() {
    assert_eq!(config(None).unwrap().submit_wait_seconds, 0);
    assert_eq!(config(Some("")).unwrap().submit_wait_seconds, 0);
    assert_eq!(config(Some("0")).unwrap().submit_wait_seconds, 0);
    assert_eq!(config(Some("30")).unwrap().submit_wait_seconds, 30);
    for bad in ["31", "-1", "5s", "2.5"] {
        let err = config(Some(bad)).unwrap_err().to_string();
        assert!(
            err.contains("SUBMIT_WAIT_SECONDS must be a whole number of seconds from 0 to 30"),
            "{bad}: {err}"
        );
    }
}

#[tokio::test]
async fn a_batch_that_finished_within_the_wait_is_closed_by_the_submitter_once() {
    let get = script();
    let batch = waited(StatementStatusString::Finished);
    let event = event_written(
        "FINISHED",
        &[("statementId", ID), ("eventState", "FINISHED")],
    );
    let settled = settled_written("FINISHED", "SUCCEEDED", item(&both_halves("FINISHED")));
    let store = token_written(item(&both_halves("FINISHED")));
    let claim = update("SET claimedUntil", item(&[]));
    let mark = marked("submitter-wait", "SUCCEEDED", TOKEN);
    let describe = finished_describe();
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| {
            let output: Value = serde_json::from_str(r.output().unwrap()).unwrap();
            r.task_token() == Some(TOKEN)
                && output["statementId"] == ID
                && output["status"] == "FINISHED"
                && output["rows"] == 3
                && output["step"] == "LoadItem"
        })
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let s = submitter(
        WAIT,
        &[&settled, &event, &store, &claim, &mark],
        &[&success],
        &[&batch, &describe],
        &get,
    );

    let submitted = s.handle(input()).await.unwrap();

    assert_eq!(submitted.wait, "Ended(Finished)");
    assert_eq!(submitted.completion, "Succeeded");
    assert_eq!(submitted.recorded, "Stored");
    // One write stores the token, the state and the completion mark; the event's own write, the
    // general token write, the claim and the separate mark are not made.
    assert_eq!(
        (
            batch.num_calls(),
            settled.num_calls(),
            describe.num_calls(),
            success.num_calls(),
            mark.num_calls()
        ),
        (1, 1, 1, 1, 0)
    );
    assert_eq!(
        (event.num_calls(), store.num_calls(), claim.num_calls()),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn a_batch_that_failed_within_the_wait_fails_the_task_with_the_steps_mapped_error_name() {
    let get = script();
    let batch = waited(StatementStatusString::Failed);
    let event = event_written("FAILED", &[("statementId", ID), ("eventState", "FAILED")]);
    let settled = settled_written(
        "FAILED",
        "FAILED",
        with_error_names(
            item(&both_halves("FAILED")),
            &[("Redshift.StatementFailed", NO_SALES)],
        ),
    );
    let claim = update("SET claimedUntil", item(&[]));
    let mark = marked("submitter-wait", "FAILED", TOKEN);
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
                && cause.failed_statement_index == Some(1)
        })
        .then_output(|| SendTaskFailureOutput::builder().build());
    let s = submitter(
        WAIT,
        &[&settled, &event, &claim, &mark],
        &[&failure],
        &[&batch, &describe],
        &get,
    );

    let submitted = s.handle(with_errors(input())).await.unwrap();

    assert_eq!(submitted.wait, "Ended(Failed)");
    assert_eq!(submitted.completion, "Failed");
    assert_eq!(
        (settled.num_calls(), failure.num_calls(), mark.num_calls()),
        (1, 1, 0)
    );
    assert_eq!((event.num_calls(), claim.num_calls()), (0, 0));
}

#[tokio::test]
async fn a_batch_still_running_when_the_wait_ends_parks_the_token_for_the_event() {
    let get = script();
    let batch = waited(StatementStatusString::Started);
    let event = event_written("FINISHED", &[]);
    let store = token_written(item(&with_token(ID)));
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let s = submitter(WAIT, &[&event, &store], &[&success], &[&batch], &get);

    let submitted = s.handle(input()).await.unwrap();

    assert_eq!(submitted.wait, "NotEnded");
    assert_eq!(submitted.completion, "WaitingForEvent");
    assert_eq!(
        (batch.num_calls(), event.num_calls(), store.num_calls()),
        (1, 0, 1)
    );
    assert_eq!(success.num_calls(), 0, "the status event closes it");
}

#[tokio::test]
async fn a_refused_or_throttled_wait_falls_back_to_one_plain_submit_under_the_same_client_token() {
    for code in [
        "ActiveWaitingRequestsExceededException",
        "ThrottlingException",
    ] {
        let get = script();
        let refused = waited_refused(code);
        let plain = plain();
        let event = event_written("FINISHED", &[]);
        let store = token_written(item(&with_token(ID)));
        let s = submitter(WAIT, &[&event, &store], &[], &[&refused, &plain], &get);

        let submitted = s.handle(input()).await.unwrap();

        assert_eq!(submitted.statement_id, ID, "{code}");
        assert_eq!(submitted.wait, "FellBack", "{code}");
        assert_eq!(submitted.completion, "WaitingForEvent", "{code}");
        // One waited call, then one plain call with the same ClientToken (both rules match it
        // only): the Data API answers a token it has seen with its statement, so whether or not
        // the refused call started the batch, there is one statement.
        assert_eq!((refused.num_calls(), plain.num_calls()), (1, 1), "{code}");
        assert_eq!((event.num_calls(), store.num_calls()), (0, 1), "{code}");
    }
}

#[tokio::test]
async fn an_error_that_is_not_the_waits_is_reported_as_without_the_wait_and_not_resubmitted() {
    let get = script();
    let busy = mock!(aws_sdk_redshiftdata::Client::batch_execute_statement)
        .match_requests(|r| r.wait_time_seconds().is_some())
        .then_error(|| {
            BatchExecuteStatementError::ActiveStatementsExceededException(
                ActiveStatementsExceededException::builder()
                    .message("Active statements exceeded the allowed quota")
                    .build(),
            )
        });
    let plain = plain();
    let store = token_written(item(&with_token(ID)));
    let s = submitter(WAIT, &[&store], &[], &[&busy, &plain], &get);

    let err = s.handle(input()).await.unwrap_err();

    assert_eq!(err.name(), "RedshiftThrottled");
    assert_eq!(
        (busy.num_calls(), plain.num_calls(), store.num_calls()),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn without_a_wait_the_submit_carries_no_wait_time_and_records_no_event() {
    let get = script();
    let plain = plain();
    let event = event_written("FINISHED", &[]);
    let store = token_written(item(&with_token(ID)));
    let s = submitter(0, &[&event, &store], &[], &[&plain], &get);

    let submitted = s.handle(input()).await.unwrap();

    assert_eq!(submitted.wait, "Off");
    assert_eq!(submitted.completion, "WaitingForEvent");
    assert_eq!((plain.num_calls(), event.num_calls()), (1, 0));
}

#[tokio::test]
async fn an_event_recorded_during_the_wait_keeps_its_state_and_the_task_is_closed_once() {
    // The status event reached the completer while the submit waited: it recorded the state (and
    // the event's row count) and found no token. The submitter's one write keeps what is there
    // (`if_not_exists`) and answers the item with both halves; the task is closed once.
    let get = script();
    let batch = waited(StatementStatusString::Finished);
    let mut both = both_halves("FINISHED");
    both.push(("eventRows", "3"));
    let settled = settled_written("FINISHED", "SUCCEEDED", item(&both));
    let mark = marked("submitter-wait", "SUCCEEDED", TOKEN);
    let describe = finished_describe();
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let s = submitter(
        WAIT,
        &[&settled, &mark],
        &[&success],
        &[&batch, &describe],
        &get,
    );

    let submitted = s.handle(input()).await.unwrap();

    assert_eq!(submitted.completion, "Succeeded");
    assert_eq!(
        (settled.num_calls(), success.num_calls(), mark.num_calls()),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn when_the_event_holds_the_claim_first_the_submitter_sends_nothing() {
    // A redelivered invocation: its first delivery stored the token, and the status event's
    // completer took the claim. The wait's one write is refused (a token is there), the general
    // path records the state and finds the same token (`Redelivered`), its claim is refused and
    // it neither calls back nor marks the item.
    let get = script();
    let batch = waited(StatementStatusString::Finished);
    let event = event_written(
        "FINISHED",
        &[("statementId", ID), ("eventState", "FINISHED")],
    );
    let first = first_refused();
    let replaced = update_condition_fails("SET taskToken = :token, attempt = :attempt");
    let read = etl_callback::testing::read(item(&both_halves("FINISHED")));
    let claim = update_condition_fails("SET claimedUntil");
    let mark = marked("submitter-wait", "SUCCEEDED", TOKEN);
    let describe = finished_describe();
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let s = submitter(
        WAIT,
        &[&first, &event, &replaced, &read, &claim, &mark],
        &[&success],
        &[&batch, &describe],
        &get,
    );

    let submitted = s.handle(input()).await.unwrap();

    assert_eq!(submitted.recorded, "Redelivered");
    assert_eq!(submitted.completion, "ClaimedElsewhere");
    assert_eq!(
        (
            first.num_calls(),
            event.num_calls(),
            claim.num_calls(),
            success.num_calls(),
            mark.num_calls()
        ),
        (2, 1, 1, 0, 0)
    );
}

#[tokio::test]
async fn when_the_task_was_already_completed_the_submitter_sends_nothing() {
    // The completer closed the task (the token half was stored by an earlier delivery of this
    // same invocation): the item comes back completed and the submitter does nothing more.
    let get = script();
    let batch = waited(StatementStatusString::Finished);
    let mut done = both_halves("FINISHED");
    done.extend([
        ("completedAt", "1700000000"),
        ("outcome", "SUCCEEDED"),
        ("completedBy", "completer"),
    ]);
    let event = event_written("FINISHED", &done);
    let refused = update_condition_fails("SET taskToken = :token, attempt = :attempt");
    let first = first_refused();
    let describe = finished_describe();
    let read = etl_callback::testing::read(item(&done));
    let claim = update("SET claimedUntil", item(&[]));
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let s = submitter(
        WAIT,
        &[&event, &first, &refused, &read, &claim],
        &[&success],
        &[&batch, &describe],
        &get,
    );

    let submitted = s.handle(input()).await.unwrap();

    assert_eq!(submitted.recorded, "Redelivered");
    assert_eq!(submitted.completion, "AlreadyCompleted");
    assert_eq!((claim.num_calls(), success.num_calls()), (0, 0));
}

#[tokio::test]
async fn a_failed_wait_write_takes_the_general_path_and_still_closes_the_task_once() {
    // The one write fails (DynamoDB throttled it): the state goes in with the event's own write,
    // the token with its own, and the settle path claims and closes: the same single callback.
    let get = script();
    let batch = waited(StatementStatusString::Finished);
    let throttled = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression().is_some_and(|e| {
                e.contains("eventState = if_not_exists(eventState, :state)")
                    && e.contains("taskToken = :token")
            })
        })
        .then_error(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemError::ProvisionedThroughputExceededException(
                aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException::builder()
                    .message("throttled by the test")
                    .build(),
            )
        });
    let event = event_written(
        "FINISHED",
        &[("statementId", ID), ("eventState", "FINISHED")],
    );
    let store = token_written(item(&both_halves("FINISHED")));
    let claim = update("SET claimedUntil", item(&[]));
    let mark = marked("submitter-wait", "SUCCEEDED", TOKEN);
    let describe = finished_describe();
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let s = submitter(
        WAIT,
        &[&throttled, &event, &store, &claim, &mark],
        &[&success],
        &[&batch, &describe],
        &get,
    );

    let submitted = s.handle(input()).await.unwrap();

    assert_eq!(submitted.completion, "Succeeded");
    assert_eq!(
        (
            throttled.num_calls(),
            event.num_calls(),
            store.num_calls(),
            claim.num_calls(),
            success.num_calls(),
            mark.num_calls()
        ),
        (1, 1, 1, 1, 1, 1)
    );
}

#[tokio::test]
async fn a_task_step_functions_already_closed_is_marked_task_closed_after_the_callback() {
    // The execution was stopped while the submit waited: the callback finds the task closed, and
    // the mark written before it is corrected to TASK_CLOSED.
    let get = script();
    let batch = waited(StatementStatusString::Finished);
    let settled = settled_written("FINISHED", "SUCCEEDED", item(&both_halves("FINISHED")));
    let closed_mark = marked("submitter-wait", "TASK_CLOSED", TOKEN);
    let describe = finished_describe();
    let closed = mock!(aws_sdk_sfn::Client::send_task_success).then_error(|| {
        aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError::TaskTimedOut(
            aws_sdk_sfn::types::error::TaskTimedOut::builder()
                .message("Task Timed Out")
                .build(),
        )
    });
    let s = submitter(
        WAIT,
        &[&settled, &closed_mark],
        &[&closed],
        &[&batch, &describe],
        &get,
    );

    let submitted = s.handle(input()).await.unwrap();

    assert_eq!(submitted.completion, "TaskAlreadyClosed");
    assert_eq!((closed.num_calls(), closed_mark.num_calls()), (1, 1));
}

fn throttled_callback() -> Rule {
    mock!(aws_sdk_sfn::Client::send_task_success).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            ),
        )
    })
}

#[tokio::test]
async fn a_failed_callback_takes_the_mark_back_and_the_task_waits_for_its_event_or_the_reconciler()
{
    // Step Functions throttled the callback: the mark is taken back (`pending` again, the state
    // recorded), so the status event's completer or the reconciler's lost-event recovery closes
    // the task; the invocation does not fail the step.
    let get = script();
    let batch = waited(StatementStatusString::Finished);
    let settled = settled_written("FINISHED", "SUCCEEDED", item(&both_halves("FINISHED")));
    let unmark = unmarked();
    let describe = finished_describe();
    let throttled = throttled_callback();
    let s = submitter(
        WAIT,
        &[&settled, &unmark],
        &[&throttled],
        &[&batch, &describe],
        &get,
    );

    let submitted = s.handle(input()).await.unwrap();

    assert_eq!(submitted.completion, "WaitingForEvent");
    assert_eq!((throttled.num_calls(), unmark.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_failed_callback_whose_mark_cannot_be_taken_back_fails_the_invocation_for_the_tasks_retry(
) {
    // Neither the callback nor taking the mark back worked: a completed mark with an open task
    // would wait for nobody, so the invocation fails with the write's error, which the step
    // retries; the retry's token write replaces the token and removes the mark.
    let get = script();
    let batch = waited(StatementStatusString::Finished);
    let settled = settled_written("FINISHED", "SUCCEEDED", item(&both_halves("FINISHED")));
    let unmark_fails = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                == Some("SET pending = :pending REMOVE completedAt, outcome, completedBy")
        })
        .then_error(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemError::ProvisionedThroughputExceededException(
                aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException::builder()
                    .message("throttled by the test")
                    .build(),
            )
        });
    let describe = finished_describe();
    let throttled = throttled_callback();
    let s = submitter(
        WAIT,
        &[&settled, &unmark_fails],
        &[&throttled],
        &[&batch, &describe],
        &get,
    );

    let err = s.handle(input()).await.unwrap_err();

    assert_eq!(err.name(), "TokenStoreThrottled");
    assert_eq!((throttled.num_calls(), unmark_fails.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_callback_refused_for_good_takes_the_mark_back_and_fails_the_invocation() {
    // Not throttling: the event's completer or the reconciler would be refused the same way, so
    // the task is not left waiting for them; the invocation fails at once with the callback's error.
    let get = script();
    let batch = waited(StatementStatusString::Finished);
    let settled = settled_written("FINISHED", "SUCCEEDED", item(&both_halves("FINISHED")));
    let unmark = unmarked();
    let describe = finished_describe();
    let refused = mock!(aws_sdk_sfn::Client::send_task_success).then_error(|| {
        aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError::InvalidOutput(
            aws_sdk_sfn::types::error::InvalidOutput::builder()
                .message("refused by the test")
                .build(),
        )
    });
    let s = submitter(
        WAIT,
        &[&settled, &unmark],
        &[&refused],
        &[&batch, &describe],
        &get,
    );

    let err = s.handle(input()).await.unwrap_err();

    assert_eq!(err.name(), "CallbackFailed");
    assert_eq!((refused.num_calls(), unmark.num_calls()), (1, 1));
}
