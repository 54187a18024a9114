//! The completer against real SDK clients answered by aws-smithy-mocks: request shapes are checked
//! and `num_calls` proves what did and did not happen.

use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementError;
use aws_sdk_redshiftdata::types::error::ResourceNotFoundException;
use aws_sdk_redshiftdata::types::StatusString;
use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput;
use aws_sdk_sfn::operation::send_task_success::{SendTaskSuccessError, SendTaskSuccessOutput};
use aws_sdk_sfn::types::error::TaskTimedOut;
use aws_smithy_mocks::{mock, Rule};
use completer::handle;
use etl_callback::task::{StepFailure, StepResult};
use etl_callback::testing::{
    completed_by, completer, described, item, marked, read, update, update_condition_fails,
    with_token, TOKEN,
};
use serde_json::Value;

const ID: &str = "d9b6c0c9-0747-4bf4-b142-e8883122f766";

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut event: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture exists")).unwrap();
    event["detail"]["statementId"] = ID.into();
    event
}

fn with_event(
    state: &'static str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    let mut pairs = with_token(ID);
    pairs.extend([("eventState", state), ("eventRows", "4")]);
    item(&pairs)
}

fn record_event(state: &'static str) -> Rule {
    update("SET eventState", with_event(state))
}

fn claim() -> Rule {
    update("SET claimedUntil", item(&[]))
}

fn mark() -> Rule {
    update("SET completedAt", item(&[]))
}

fn release() -> Rule {
    update("REMOVE claimedUntil", item(&[]))
}

fn describe(
    status: StatusString,
    subs: &'static [(&'static str, StatusString, i64, Option<&'static str>)],
) -> Rule {
    mock!(aws_sdk_redshiftdata::Client::describe_statement)
        .match_requests(|r| r.id() == Some(ID))
        .then_output(move || described(status.clone(), subs))
}

fn success() -> Rule {
    mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| r.task_token() == Some(TOKEN))
        .then_output(|| SendTaskSuccessOutput::builder().build())
}

fn failure() -> Rule {
    mock!(aws_sdk_sfn::Client::send_task_failure)
        .match_requests(|r| r.task_token() == Some(TOKEN))
        .then_output(|| SendTaskFailureOutput::builder().build())
}

const FINISHED_SUBS: &[(&str, StatusString, i64, Option<&str>)] = &[
    (
        "d9b6c0c9-0747-4bf4-b142-e8883122f766:1",
        StatusString::Finished,
        -1,
        None,
    ),
    (
        "d9b6c0c9-0747-4bf4-b142-e8883122f766:2",
        StatusString::Finished,
        3,
        None,
    ),
    (
        "d9b6c0c9-0747-4bf4-b142-e8883122f766:3",
        StatusString::Finished,
        2,
        None,
    ),
];

const FAILED_SUBS: &[(&str, StatusString, i64, Option<&str>)] = &[
    (
        "d9b6c0c9-0747-4bf4-b142-e8883122f766:1",
        StatusString::Finished,
        3,
        None,
    ),
    (
        "d9b6c0c9-0747-4bf4-b142-e8883122f766:2",
        StatusString::Failed,
        -1,
        Some("ERROR: relation \"stg_item\" does not exist"),
    ),
    (
        "d9b6c0c9-0747-4bf4-b142-e8883122f766:3",
        StatusString::Aborted,
        -1,
        None,
    ),
];

#[tokio::test]
async fn when_the_statement_finished_and_the_token_waits_should_send_success_once() {
    let (record, claim, mark, describe, success, failure) = (
        record_event("FINISHED"),
        claim(),
        completed_by("completer"),
        describe(StatusString::Finished, FINISHED_SUBS),
        success(),
        failure(),
    );
    let success_output = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| {
            let output: StepResult = serde_json::from_str(r.output().unwrap()).unwrap();
            output
                == StepResult {
                    step: "LoadItem".into(),
                    statement_id: ID.into(),
                    run_date: "2021-06-26".into(),
                    status: "FINISHED".into(),
                    rows: 5,
                    duration_ms: 1500,
                    check: None,
                }
        })
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let c = completer(
        &[&record, &claim, &mark],
        &[&success_output, &success, &failure],
        &[&describe],
    );

    let handled = handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap();

    assert_eq!(handled.completion, "Succeeded");
    assert_eq!(
        success_output.num_calls(),
        1,
        "the success output carries rows and duration"
    );
    assert_eq!((success.num_calls(), failure.num_calls()), (0, 0));
    assert_eq!(
        (record.num_calls(), claim.num_calls(), mark.num_calls()),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn when_the_sql_failed_should_send_a_named_failure_with_the_error_and_failing_statement() {
    let (record, claim, mark, describe, success) = (
        record_event("FAILED"),
        claim(),
        mark(),
        describe(StatusString::Failed, FAILED_SUBS),
        success(),
    );
    let named_failure = mock!(aws_sdk_sfn::Client::send_task_failure)
        .match_requests(|r| {
            let cause: StepFailure = serde_json::from_str(r.cause().unwrap()).unwrap();
            r.error() == Some("Redshift.StatementFailed")
                && cause.step == "LoadItem"
                && cause.error.contains("stg_item")
                && cause.failed_statement_index == Some(2)
                && cause.failed_statement.as_deref()
                    == Some("statement d9b6c0c9-0747-4bf4-b142-e8883122f766:2")
        })
        .then_output(|| SendTaskFailureOutput::builder().build());
    let c = completer(
        &[&record, &claim, &mark],
        &[&named_failure, &success],
        &[&describe],
    );

    let handled = handle(&c, fixture("completer-failed.json")).await.unwrap();

    assert_eq!(handled.completion, "Failed");
    assert_eq!((named_failure.num_calls(), success.num_calls()), (1, 0));
    assert_eq!(mark.num_calls(), 1);
}

#[tokio::test]
async fn when_the_statement_was_aborted_should_fail_the_task_as_aborted() {
    let (record, claim, mark) = (record_event("ABORTED"), claim(), mark());
    let describe = describe(StatusString::Aborted, &[]);
    let aborted = mock!(aws_sdk_sfn::Client::send_task_failure)
        .match_requests(|r| r.error() == Some("Redshift.StatementAborted"))
        .then_output(|| SendTaskFailureOutput::builder().build());
    let c = completer(&[&record, &claim, &mark], &[&aborted], &[&describe]);

    let handled = handle(&c, fixture("completer-aborted.json")).await.unwrap();

    assert_eq!(
        (handled.state.as_str(), handled.completion.as_str()),
        ("ABORTED", "Failed")
    );
    assert_eq!(aborted.num_calls(), 1);
}

#[tokio::test]
async fn when_the_event_arrives_before_the_token_should_record_it_and_complete_nothing() {
    let record = update(
        "SET eventState",
        item(&[("statementId", ID), ("eventState", "FINISHED")]),
    );
    let (claim, success) = (claim(), success());
    let c = completer(&[&record, &claim], &[&success], &[]);

    let handled = handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap();

    assert_eq!(handled.completion, "WaitingForToken");
    assert_eq!(
        (record.num_calls(), claim.num_calls(), success.num_calls()),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn when_a_duplicate_event_arrives_after_completion_should_not_complete_again() {
    let mut done = with_event("FINISHED");
    done.extend(item(&[
        ("completedAt", "1700000000"),
        ("outcome", "SUCCEEDED"),
    ]));
    let record = update("SET eventState", done);
    let (claim, success) = (claim(), success());
    let c = completer(&[&record, &claim], &[&success], &[]);

    let handled = handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap();

    assert_eq!(handled.completion, "AlreadyCompleted");
    assert_eq!((claim.num_calls(), success.num_calls()), (0, 0));
}

#[tokio::test]
async fn when_a_duplicate_event_races_another_delivery_should_leave_it_to_the_claim_holder() {
    let (record, taken, success) = (
        record_event("FINISHED"),
        update_condition_fails("SET claimedUntil"),
        success(),
    );
    let describe = describe(StatusString::Finished, FINISHED_SUBS);
    let c = completer(&[&record, &taken], &[&success], &[&describe]);

    let handled = handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap();

    assert_eq!(handled.completion, "ClaimedElsewhere");
    assert_eq!((describe.num_calls(), success.num_calls()), (0, 0));
}

#[tokio::test]
async fn when_the_task_is_already_closed_should_record_it_and_succeed() {
    let (record, claim, mark) = (record_event("FINISHED"), claim(), mark());
    let describe = describe(StatusString::Finished, FINISHED_SUBS);
    let timed_out = mock!(aws_sdk_sfn::Client::send_task_success).then_error(|| {
        SendTaskSuccessError::TaskTimedOut(
            TaskTimedOut::builder().message("Task Timed Out").build(),
        )
    });
    let closed = update("SET completedAt = :now, outcome", item(&[]));
    let c = completer(
        &[&record, &claim, &closed, &mark],
        &[&timed_out],
        &[&describe],
    );

    let handled = handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap();

    assert_eq!(handled.completion, "TaskAlreadyClosed");
    assert_eq!(closed.num_calls(), 1);
}

#[tokio::test]
async fn when_step_functions_throttles_should_release_the_claim_and_fail_for_a_retry() {
    let (record, claim, release, mark) = (record_event("FINISHED"), claim(), release(), mark());
    let describe = describe(StatusString::Finished, FINISHED_SUBS);
    let throttled_code = mock!(aws_sdk_sfn::Client::send_task_success).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            ),
        )
    });
    let c = completer(
        &[&record, &claim, &release, &mark],
        &[&throttled_code],
        &[&describe],
    );

    let err = handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap_err();

    assert_eq!(err.name(), "CallbackThrottled");
    assert_eq!((release.num_calls(), mark.num_calls()), (1, 0));
}

#[tokio::test]
async fn when_the_statement_details_have_expired_should_still_complete_from_the_event() {
    let (record, claim, mark, success) = (record_event("FINISHED"), claim(), mark(), success());
    let gone = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_error(|| {
        DescribeStatementError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Query does not exist")
                .resource_id(ID)
                .build()
                .unwrap(),
        )
    });
    let c = completer(&[&record, &claim, &mark], &[&success], &[&gone]);

    assert_eq!(
        handle(&c, fixture("completer-finished.json"))
            .await
            .unwrap()
            .completion,
        "Succeeded"
    );
    assert_eq!(success.num_calls(), 1);
}

#[tokio::test]
async fn malformed_and_foreign_events_are_named_errors_that_change_nothing() {
    let record = record_event("FINISHED");
    let c = completer(&[&record], &[], &[]);
    let mut foreign = fixture("completer-finished.json");
    foreign["source"] = "aws.s3".into();
    let mut running = fixture("completer-finished.json");
    running["detail"]["state"] = "STARTED".into();

    assert_eq!(
        handle(&c, foreign).await.unwrap_err().name(),
        "UnexpectedEvent"
    );
    assert_eq!(
        handle(&c, running).await.unwrap_err().name(),
        "MalformedEvent"
    );
    assert_eq!(
        handle(&c, serde_json::json!("hello"))
            .await
            .unwrap_err()
            .name(),
        "MalformedEvent"
    );
    assert_eq!(record.num_calls(), 0);
}

#[test]
fn the_event_fixtures_for_sam_local_invoke_parse() {
    for (name, state) in [
        ("completer-finished.json", "FINISHED"),
        ("completer-failed.json", "FAILED"),
        ("completer-aborted.json", "ABORTED"),
    ] {
        let detail = etl_callback::event::parse_event(fixture(name)).unwrap();
        assert_eq!(detail.state.as_str(), state, "{name}");
        assert!(detail
            .statement_name
            .unwrap()
            .starts_with("redshift-etl-callback/"));
    }
}

#[tokio::test]
async fn when_a_retry_replaced_the_token_while_completing_the_new_token_is_completed_from_the_event(
) {
    const NEW_TOKEN: &str = "AQCEAAAAKgAAAAMAAAAAAAAAAW-retry-token";
    let record = record_event("FINISHED");
    let claim = update("SET claimedUntil", item(&[]));
    let describe = describe(StatusString::Finished, FINISHED_SUBS);
    let dead = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| r.task_token() == Some(TOKEN))
        .then_error(|| {
            SendTaskSuccessError::TaskTimedOut(
                TaskTimedOut::builder().message("Task Timed Out").build(),
            )
        });
    let alive = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| r.task_token() == Some(NEW_TOKEN))
        .then_output(|| SendTaskSuccessOutput::builder().build());
    // The old token's mark loses to the replacement; the new token's mark wins.
    let old_mark = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression().is_some_and(|e| e.starts_with("SET completedAt"))
                && r.expression_attribute_values()
                    .and_then(|v| v.get(":token"))
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|t| t == TOKEN)
        })
        .then_error(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
                aws_sdk_dynamodb::types::error::ConditionalCheckFailedException::builder().build(),
            )
        });
    let new_mark = marked("completer", "SUCCEEDED", NEW_TOKEN);
    let mut replaced = with_token(ID);
    replaced.retain(|(k, _)| *k != "taskToken");
    replaced.extend([
        ("taskToken", NEW_TOKEN),
        ("attempt", "1"),
        ("eventState", "FINISHED"),
        ("eventRows", "4"),
    ]);
    let current = read(item(&replaced));
    let c = completer(
        &[&record, &claim, &old_mark, &new_mark, &current],
        &[&dead, &alive],
        &[&describe],
    );

    let handled = handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap();

    assert_eq!(handled.completion, "Succeeded");
    assert_eq!((dead.num_calls(), alive.num_calls()), (1, 1));
    assert_eq!(
        (
            old_mark.num_calls(),
            current.num_calls(),
            new_mark.num_calls()
        ),
        (1, 1, 1)
    );
    assert_eq!(
        claim.num_calls(),
        2,
        "the new token is claimed before it is completed"
    );
}

#[tokio::test]
async fn completing_takes_the_item_out_of_the_pending_index() {
    let (record, claim, success) = (record_event("FINISHED"), claim(), success());
    let describe = describe(StatusString::Finished, FINISHED_SUBS);
    let mark = marked("completer", "SUCCEEDED", TOKEN);
    let c = completer(&[&record, &claim, &mark], &[&success], &[&describe]);

    handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap();

    assert_eq!(mark.num_calls(), 1);
}

#[tokio::test]
async fn a_step_s_error_names_replace_the_failure_name_and_the_cause_stays_as_it_is() {
    for (event, state, subs, original, mapped) in [
        (
            "completer-failed.json",
            "FAILED",
            FAILED_SUBS,
            "Redshift.StatementFailed",
            "Validation.NoSalesLoaded",
        ),
        (
            "completer-aborted.json",
            "ABORTED",
            &[][..],
            "Redshift.StatementAborted",
            "Pipeline.Cancelled",
        ),
    ] {
        let status = if state == "FAILED" {
            StatusString::Failed
        } else {
            StatusString::Aborted
        };
        let causes = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
        let seen = causes.clone();
        let any_failure = mock!(aws_sdk_sfn::Client::send_task_failure)
            .match_requests(move |r| {
                seen.lock().unwrap().push((
                    r.error().unwrap_or_default().to_owned(),
                    r.cause().unwrap_or_default().to_owned(),
                ));
                true
            })
            .then_output(|| SendTaskFailureOutput::builder().build());
        let names: &[(&str, &str)] = &[(original, mapped)];
        let (plain, with_names) = (
            record_event(state),
            update(
                "SET eventState",
                etl_callback::testing::with_error_names(with_event(state), names),
            ),
        );
        for record in [&plain, &with_names] {
            let (claim, mark, describe) = (claim(), mark(), describe(status.clone(), subs));
            let c = completer(&[record, &claim, &mark], &[&any_failure], &[&describe]);
            let handled = handle(&c, fixture(event)).await.unwrap();
            assert_eq!(handled.completion, "Failed");
        }

        let causes = causes.lock().unwrap();
        assert_eq!(causes.len(), 2);
        assert_eq!(causes[0].0, original, "without a mapping: as before");
        assert_eq!(causes[1].0, mapped, "the step's own name");
        assert_eq!(causes[0].1, causes[1].1, "the cause is the same either way");
    }
}

// --- checks -----------------------------------------------------------------------------------

use aws_sdk_redshiftdata::operation::get_statement_result::{
    GetStatementResultError, GetStatementResultOutput,
};
use aws_sdk_redshiftdata::types::{ColumnMetadata, Field};
use etl_callback::check::CheckRecord;

/// The item of a check's task: the token half with the stored check, and the FINISHED event.
fn check_item(
    severity: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    let mut pairs = with_token(ID);
    pairs.extend([("eventState", "FINISHED"), ("eventRows", "3")]);
    let mut item = item(&pairs);
    item.insert(
        etl_callback::store::CHECK.to_owned(),
        aws_sdk_dynamodb::types::AttributeValue::S(
            serde_json::json!({"severity": severity, "maxRows": 2, "sql": "select id from t where amount < 0"})
                .to_string(),
        ),
    );
    item
}

/// One page of the wrapped check's result: `_violations` first, then the check's column.
fn page(ids: &[i64], next: Option<&'static str>) -> GetStatementResultOutput {
    let column = |name: &str| ColumnMetadata::builder().name(name).build();
    GetStatementResultOutput::builder()
        .column_metadata(column("_violations"))
        .column_metadata(column("id"))
        .set_records(Some(
            ids.iter()
                .map(|id| vec![Field::LongValue(7), Field::LongValue(*id)])
                .collect(),
        ))
        .total_num_rows(2)
        .set_next_token(next.map(str::to_owned))
        .build()
        .unwrap()
}

/// GetStatementResult of the check's statement (`<id>:1`) in two pages of one record each.
fn two_pages() -> (Rule, Rule) {
    let first = mock!(aws_sdk_redshiftdata::Client::get_statement_result)
        .match_requests(|r| r.id() == Some(&format!("{ID}:1")) && r.next_token().is_none())
        .then_output(|| page(&[1], Some("page-2")));
    let second = mock!(aws_sdk_redshiftdata::Client::get_statement_result)
        .match_requests(|r| r.id() == Some(&format!("{ID}:1")) && r.next_token() == Some("page-2"))
        .then_output(|| page(&[2], None));
    (first, second)
}

#[tokio::test]
async fn a_failing_check_fails_its_task_with_the_count_and_the_rows_of_every_page() {
    let (record, claim, mark, describe, success) = (
        update("SET eventState", check_item("error")),
        claim(),
        mark(),
        describe(StatusString::Finished, &[]),
        success(),
    );
    let (first, second) = two_pages();
    let check_failed = mock!(aws_sdk_sfn::Client::send_task_failure)
        .match_requests(|r| {
            let cause: CheckRecord = serde_json::from_str(r.cause().unwrap()).unwrap();
            r.error() == Some("Check.Failed")
                && cause.check == "LoadItem"
                && cause.violations == 7
                && cause.columns == ["id"]
                && cause.rows == [vec![serde_json::json!(1)], vec![serde_json::json!(2)]]
                && cause.sql == "select id from t where amount < 0"
                && cause.statement_id.as_deref() == Some(ID)
        })
        .then_output(|| SendTaskFailureOutput::builder().build());
    let c = completer(
        &[&record, &claim, &mark],
        &[&check_failed, &success],
        &[&describe, &first, &second],
    );

    let handled = handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap();

    assert_eq!(handled.completion, "Failed");
    assert_eq!((check_failed.num_calls(), success.num_calls()), (1, 0));
    assert_eq!(
        (first.num_calls(), second.num_calls()),
        (1, 1),
        "both pages read"
    );
    assert_eq!(mark.num_calls(), 1);
}

#[tokio::test]
async fn a_warn_check_succeeds_with_its_record_in_the_output() {
    let (record, claim, mark, describe, failure) = (
        update("SET eventState", check_item("warn")),
        claim(),
        mark(),
        describe(StatusString::Finished, &[]),
        failure(),
    );
    let (first, second) = two_pages();
    let warned = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| {
            let output: StepResult = serde_json::from_str(r.output().unwrap()).unwrap();
            output.status == "FINISHED"
                && output
                    .check
                    .is_some_and(|c| c.violations == 7 && c.rows.len() == 2)
        })
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let c = completer(
        &[&record, &claim, &mark],
        &[&warned, &failure],
        &[&describe, &first, &second],
    );

    let handled = handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap();

    assert_eq!(handled.completion, "Succeeded");
    assert_eq!((warned.num_calls(), failure.num_calls()), (1, 0));
}

#[tokio::test]
async fn a_throttled_result_read_closes_nothing_and_gives_the_claim_back() {
    let (record, claim, mark, release, describe, success, failure) = (
        update("SET eventState", check_item("error")),
        claim(),
        mark(),
        release(),
        describe(StatusString::Finished, &[]),
        success(),
        failure(),
    );
    let throttled = mock!(aws_sdk_redshiftdata::Client::get_statement_result).then_error(|| {
        GetStatementResultError::ActiveWaitingRequestsExceededException(
            aws_sdk_redshiftdata::types::error::ActiveWaitingRequestsExceededException::builder()
                .message("slow down")
                .build(),
        )
    });
    let c = completer(
        &[&record, &claim, &mark, &release],
        &[&success, &failure],
        &[&describe, &throttled],
    );

    let err = handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap_err();

    assert_eq!(
        err.name(),
        "RedshiftThrottled",
        "EventBridge delivers the event again"
    );
    assert_eq!(
        (success.num_calls(), failure.num_calls(), mark.num_calls()),
        (0, 0, 0)
    );
    assert_eq!(release.num_calls(), 1);
}
