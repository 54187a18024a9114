//! The reconciler against real SDK clients answered by aws-smithy-mocks: every decision is checked
//! by the requests it makes (shapes matched) and the ones it must not make (`num_calls() == 0`).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_redshiftdata::operation::cancel_statement::CancelStatementOutput;
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementError;
use aws_sdk_redshiftdata::types::error::{ResourceNotFoundException, ValidationException};
use aws_sdk_redshiftdata::types::StatusString;
use aws_sdk_sfn::operation::describe_execution::{DescribeExecutionError, DescribeExecutionOutput};
use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput;
use aws_sdk_sfn::operation::send_task_heartbeat::{
    SendTaskHeartbeatError, SendTaskHeartbeatOutput,
};
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput;
use aws_sdk_sfn::types::error::{
    ExecutionDoesNotExist, InvalidToken, TaskDoesNotExist, TaskTimedOut,
};
use aws_sdk_sfn::types::ExecutionStatus;
use aws_smithy_mocks::{mock, Rule};
use etl_callback::complete::Completer;
use etl_callback::task::StepFailure;
use etl_callback::testing::{
    completer, described, item, marked, update, update_condition_fails, TOKEN,
};
use reconciler::{parse_trigger, Config, Reconciler, Summary, Trigger};
use serde_json::Value;

const ID: &str = "d9b6c0c9-0747-4bf4-b142-e8883122f766";
const ID2: &str = "0f4c3a55-8a51-4c8e-9f11-2b7b8f6c9e02";
const ID3: &str = "7a1e2b3c-4d5e-4f60-8a9b-0c1d2e3f4a5b";
const EXECUTION: &str = "daily-2021-06-26-3f7ef5c7";
/// The run lock element of `EXECUTION`'s first redrive: `<ARN>#1`.
const REDRIVEN_SLOT: &str = "daily-2021-06-26-3f7ef5c7#1";

const FINISHED_SUBS: &[(&str, StatusString, i64, Option<&str>)] = &[
    (
        "d9b6c0c9-0747-4bf4-b142-e8883122f766:1",
        StatusString::Finished,
        3,
        None,
    ),
    (
        "d9b6c0c9-0747-4bf4-b142-e8883122f766:2",
        StatusString::Finished,
        2,
        None,
    ),
];

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture exists")).unwrap()
}

fn config_with(extra: &'static [(&'static str, &'static str)]) -> Config {
    Config::from_lookup(move |name| match name {
        "TOKEN_TABLE" => Some("tokens".into()),
        "STATE_MACHINE_ARN" => Some(STATE_MACHINE.into()),
        _ => extra
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned()),
    })
    .unwrap()
}

/// A reconciler with `config` and the clients of `clients`.
fn with_clients(config: Config, clients: Completer) -> Reconciler {
    Reconciler {
        config,
        table: clients.table,
        sfn: clients.sfn,
        redshift_data: clients.redshift_data,
        lineage: clients.lineage,
    }
}

fn reconciler(dynamodb: &[&Rule], sfn: &[&Rule], redshift: &[&Rule]) -> Reconciler {
    with_clients(config_with(&[]), completer(dynamodb, sfn, redshift))
}

/// A pending rendezvous item as the index returns it: token stored, no event, not completed.
fn pending(id: &'static str) -> HashMap<String, AttributeValue> {
    item(&[
        ("statementId", id),
        ("taskToken", TOKEN),
        ("step", "LoadItem"),
        ("runDate", "2021-06-26"),
        ("executionName", EXECUTION),
        ("attempt", "0"),
        ("submittedAt", "1624773700"),
        ("pending", "PENDING"),
    ])
}

fn with(
    mut base: HashMap<String, AttributeValue>,
    pairs: &[(&str, &str)],
) -> HashMap<String, AttributeValue> {
    base.extend(item(pairs));
    base
}

fn value<'a>(values: Option<&'a HashMap<String, AttributeValue>>, name: &str) -> Option<&'a str> {
    values
        .and_then(|v| v.get(name))
        .and_then(|v| v.as_s().or_else(|_| v.as_n()).ok())
        .map(String::as_str)
}

/// The scheduled query: the sparse index, pending items submitted before now - grace, oldest first.
fn overdue(items: Vec<HashMap<String, AttributeValue>>) -> Rule {
    mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(|r| {
            let cutoff: i64 = value(r.expression_attribute_values(), ":cutoff")
                .and_then(|v| v.parse().ok())
                .unwrap_or(i64::MAX);
            let expected = chrono::Utc::now().timestamp() - 60;
            r.table_name() == Some("tokens")
                && r.index_name() == Some("PendingBySubmittedAt")
                && r.key_condition_expression()
                    == Some("pending = :pending AND submittedAt < :cutoff")
                && value(r.expression_attribute_values(), ":pending") == Some("PENDING")
                && (expected - 5..=expected).contains(&cutoff)
                && r.scan_index_forward() == Some(true)
                && r.filter_expression().is_none()
        })
        .then_output(move || {
            QueryOutput::builder()
                .set_items(Some(items.clone()))
                .build()
        })
}

/// The execution query: the same index, filtered on the execution's name (no scan).
fn of_execution(items: Vec<HashMap<String, AttributeValue>>) -> Rule {
    mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(|r| {
            r.index_name() == Some("PendingBySubmittedAt")
                && r.key_condition_expression() == Some("pending = :pending")
                && r.filter_expression() == Some("executionName = :execution")
                && value(r.expression_attribute_values(), ":execution") == Some(EXECUTION)
        })
        .then_output(move || {
            QueryOutput::builder()
                .set_items(Some(items.clone()))
                .build()
        })
}

fn describe(id: &'static str, status: StatusString) -> Rule {
    mock!(aws_sdk_redshiftdata::Client::describe_statement)
        .match_requests(move |r| r.id() == Some(id))
        .then_output(move || {
            let subs = if status == StatusString::Finished {
                FINISHED_SUBS
            } else {
                &[]
            };
            described(status.clone(), subs)
        })
}

fn heartbeat() -> Rule {
    mock!(aws_sdk_sfn::Client::send_task_heartbeat)
        .match_requests(|r| r.task_token() == Some(TOKEN))
        .then_output(|| SendTaskHeartbeatOutput::builder().build())
}

fn claim() -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression() == Some("SET claimedUntil = :until")
                && value(r.expression_attribute_values(), ":token") == Some(TOKEN)
        })
        .then_output(|| UpdateItemOutput::builder().build())
}

fn cancel() -> Rule {
    mock!(aws_sdk_redshiftdata::Client::cancel_statement)
        .then_output(|| CancelStatementOutput::builder().status(true).build())
}

fn success() -> Rule {
    mock!(aws_sdk_sfn::Client::send_task_success)
        .then_output(|| SendTaskSuccessOutput::builder().build())
}

fn throttled_describe(id: &'static str) -> Rule {
    mock!(aws_sdk_redshiftdata::Client::describe_statement)
        .match_requests(move |r| r.id() == Some(id))
        .then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                ),
            )
        })
}

async fn sweep(r: &Reconciler) -> Summary {
    r.handle(fixture("reconciler-schedule.json")).await.unwrap()
}

#[tokio::test]
async fn when_a_statement_ended_but_its_event_was_lost_the_reconciler_completes_the_task_as_the_completer_would(
) {
    let query = overdue(vec![pending(ID)]);
    let record = update(
        "SET eventState",
        with(
            pending(ID),
            &[("eventState", "FINISHED"), ("eventRows", "5")],
        ),
    );
    let (claim, mark) = (claim(), marked("reconciler", "SUCCEEDED", TOKEN));
    let describe = describe(ID, StatusString::Finished);
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| {
            let output: Value = serde_json::from_str(r.output().unwrap()).unwrap();
            r.task_token() == Some(TOKEN)
                && output["statementId"] == ID
                && output["status"] == "FINISHED"
                && output["rows"] == 5
        })
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let beat = heartbeat();
    let r = reconciler(
        &[&query, &record, &claim, &mark],
        &[&success, &beat],
        &[&describe],
    );

    let summary = sweep(&r).await;

    assert_eq!(summary.lost_events_recovered, 1);
    assert_eq!(summary.examined, 1);
    assert_eq!(
        (
            record.num_calls(),
            claim.num_calls(),
            success.num_calls(),
            mark.num_calls()
        ),
        (1, 1, 1, 1),
        "the event half is recorded, then the task completed once and marked by the reconciler"
    );
    assert_eq!(beat.num_calls(), 0);
}

#[tokio::test]
async fn when_a_failed_statements_event_was_lost_the_task_fails_with_the_usual_error_name() {
    let query = overdue(vec![pending(ID)]);
    let record = update(
        "SET eventState",
        with(pending(ID), &[("eventState", "FAILED")]),
    );
    let (claim, mark) = (claim(), marked("reconciler", "FAILED", TOKEN));
    let describe = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_output(|| {
        described(
            StatusString::Failed,
            &[(
                "d9b6c0c9-0747-4bf4-b142-e8883122f766:1",
                StatusString::Failed,
                -1,
                Some("ERROR: relation \"stg_item\" does not exist"),
            )],
        )
    });
    let failed = mock!(aws_sdk_sfn::Client::send_task_failure)
        .match_requests(|r| {
            let cause: StepFailure = serde_json::from_str(r.cause().unwrap()).unwrap();
            r.error() == Some("Redshift.StatementFailed")
                && cause.error.contains("stg_item")
                && cause.failed_statement_index == Some(1)
        })
        .then_output(|| SendTaskFailureOutput::builder().build());
    let r = reconciler(&[&query, &record, &claim, &mark], &[&failed], &[&describe]);

    let summary = sweep(&r).await;

    assert_eq!(summary.lost_events_recovered, 1);
    assert_eq!((failed.num_calls(), mark.num_calls()), (1, 1));
}

#[tokio::test]
async fn when_the_statement_still_runs_the_reconciler_sends_a_heartbeat_and_changes_nothing() {
    let query = overdue(vec![pending(ID)]);
    let (describe, beat, claim, cancel) = (
        describe(ID, StatusString::Started),
        heartbeat(),
        claim(),
        cancel(),
    );
    let r = reconciler(&[&query, &claim], &[&beat], &[&describe, &cancel]);

    let summary = sweep(&r).await;

    assert_eq!(summary.heartbeats, 1);
    assert_eq!(beat.num_calls(), 1);
    assert_eq!((claim.num_calls(), cancel.num_calls()), (0, 0));
}

#[tokio::test]
async fn when_step_functions_says_the_task_is_closed_the_statement_is_cancelled_and_the_item_closed(
) {
    let closed_errors: [fn() -> SendTaskHeartbeatError; 3] = [
        || SendTaskHeartbeatError::TaskTimedOut(TaskTimedOut::builder().build()),
        || SendTaskHeartbeatError::TaskDoesNotExist(TaskDoesNotExist::builder().build()),
        || SendTaskHeartbeatError::InvalidToken(InvalidToken::builder().build()),
    ];
    for closed in closed_errors {
        let query = overdue(vec![pending(ID)]);
        let describe = describe(ID, StatusString::Picked);
        let beat = mock!(aws_sdk_sfn::Client::send_task_heartbeat).then_error(closed);
        let cancel = mock!(aws_sdk_redshiftdata::Client::cancel_statement)
            .match_requests(|r| r.id() == Some(ID))
            .then_output(|| CancelStatementOutput::builder().status(true).build());
        let (claim, mark) = (claim(), marked("reconciler", "TASK_CLOSED", TOKEN));
        let ended = execution(EXECUTION, ExecutionStatus::Failed);
        let r = reconciler(
            &[&query, &claim, &mark],
            &[&beat, &ended],
            &[&describe, &cancel],
        );

        let summary = sweep(&r).await;

        assert_eq!((summary.cancellations, summary.tasks_closed), (1, 1));
        assert_eq!(
            (
                ended.num_calls(),
                claim.num_calls(),
                cancel.num_calls(),
                mark.num_calls()
            ),
            (1, 1, 1, 1)
        );
    }
}

#[tokio::test]
async fn a_statement_that_is_no_longer_running_when_cancelled_is_not_an_error() {
    let query = overdue(vec![pending(ID)]);
    let describe = describe(ID, StatusString::Started);
    let beat = mock!(aws_sdk_sfn::Client::send_task_heartbeat)
        .then_error(|| SendTaskHeartbeatError::TaskTimedOut(TaskTimedOut::builder().build()));
    let finished = mock!(aws_sdk_redshiftdata::Client::cancel_statement).then_error(|| {
        aws_sdk_redshiftdata::operation::cancel_statement::CancelStatementError::ValidationException(
            ValidationException::builder()
                .message("Could not cancel a query that is already in FINISHED state")
                .build(),
        )
    });
    let (claim, mark) = (claim(), marked("reconciler", "TASK_CLOSED", TOKEN));
    let ended = execution(EXECUTION, ExecutionStatus::Aborted);
    let r = reconciler(
        &[&query, &claim, &mark],
        &[&beat, &ended],
        &[&describe, &finished],
    );

    let summary = sweep(&r).await;

    assert_eq!(
        (summary.cancellations, summary.tasks_closed, summary.errors),
        (0, 1, 0)
    );
    assert_eq!(mark.num_calls(), 1);
}

#[tokio::test]
async fn when_the_data_api_does_not_know_the_statement_the_task_fails_with_statement_not_found() {
    let query = overdue(vec![pending(ID)]);
    let gone = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_error(|| {
        DescribeStatementError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Query does not exist")
                .resource_id(ID)
                .build()
                .unwrap(),
        )
    });
    let not_found = mock!(aws_sdk_sfn::Client::send_task_failure)
        .match_requests(|r| {
            let cause: StepFailure = serde_json::from_str(r.cause().unwrap()).unwrap();
            r.task_token() == Some(TOKEN)
                && r.error() == Some("Redshift.StatementNotFound")
                && cause.statement_id == ID
                && cause.step == "LoadItem"
                && cause.run_date == "2021-06-26"
                && cause.status == "NOT_FOUND"
        })
        .then_output(|| SendTaskFailureOutput::builder().build());
    let (claim, mark, beat) = (claim(), marked("reconciler", "FAILED", TOKEN), heartbeat());
    let r = reconciler(&[&query, &claim, &mark], &[&not_found, &beat], &[&gone]);

    let summary = sweep(&r).await;

    assert_eq!(summary.statements_not_found, 1);
    assert_eq!(
        (not_found.num_calls(), mark.num_calls(), beat.num_calls()),
        (1, 1, 0)
    );
}

/// The reconciler that fails a lost statement's task sends the step's run after the callback:
/// its START and a FAIL saying why, once.
#[tokio::test]
async fn a_statement_the_data_api_does_not_know_sends_start_and_fail_after_the_callback() {
    let run = etl_callback::lineage::StepRun::new(
        "redshift-etl",
        "sales",
        "LoadItem",
        "arn:aws:states:us-east-1:123456789012:execution:SalesEtl:run-1",
        "2021-06-27T06:00:00.456Z",
        0,
        &etl_callback::lineage::StepTables::default(),
        &etl_callback::lineage::Warehouse {
            namespace: etl_callback::lineage::redshift_namespace("c", "us-east-1"),
            database: "dev".into(),
        },
        etl_callback::lineage::now(),
    );
    let mut item = pending(ID);
    item.insert("lineage".into(), AttributeValue::S(run.to_json()));
    let query = overdue(vec![item]);
    let gone = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_error(|| {
        DescribeStatementError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Query does not exist")
                .resource_id(ID)
                .build()
                .unwrap(),
        )
    });
    let not_found = mock!(aws_sdk_sfn::Client::send_task_failure)
        .then_output(|| SendTaskFailureOutput::builder().build());
    let (claim, mark) = (claim(), marked("reconciler", "FAILED", TOKEN));
    let mut r = reconciler(&[&query, &claim, &mark], &[&not_found], &[&gone]);
    let sink = std::sync::Arc::new(etl_callback::lineage::RecordingSink::default());
    r.lineage = etl_callback::lineage::Lineage::to(sink.clone());

    let summary = sweep(&r).await;

    assert_eq!(summary.statements_not_found, 1);
    let events = sink.events();
    let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            etl_callback::lineage::EventType::Start,
            etl_callback::lineage::EventType::Fail
        ]
    );
    assert!(events[1]
        .to_json()
        .contains("DescribeStatement does not know the statement"));
    assert!(events.iter().all(|e| e.run.run_id == run.run_id));
}

#[tokio::test]
async fn when_the_data_api_does_not_know_the_statement_and_the_task_is_closed_the_item_is_task_closed(
) {
    let query = overdue(vec![pending(ID)]);
    let gone = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_error(|| {
        DescribeStatementError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Query does not exist")
                .resource_id(ID)
                .build()
                .unwrap(),
        )
    });
    let timed_out = mock!(aws_sdk_sfn::Client::send_task_failure).then_error(|| {
        aws_sdk_sfn::operation::send_task_failure::SendTaskFailureError::TaskTimedOut(
            TaskTimedOut::builder().build(),
        )
    });
    let (claim, mark) = (claim(), marked("reconciler", "TASK_CLOSED", TOKEN));
    let r = reconciler(&[&query, &claim, &mark], &[&timed_out], &[&gone]);

    let summary = sweep(&r).await;

    assert_eq!((summary.statements_not_found, summary.tasks_closed), (1, 1));
    assert_eq!(mark.num_calls(), 1);
}

#[tokio::test]
async fn a_throttled_task_is_skipped_and_counted_and_the_others_are_still_reconciled() {
    let query = overdue(vec![pending(ID), pending(ID2)]);
    let (slow, running, beat) = (
        throttled_describe(ID),
        describe(ID2, StatusString::Submitted),
        heartbeat(),
    );
    let r = reconciler(&[&query], &[&beat], &[&slow, &running]);

    let summary = sweep(&r).await;

    assert_eq!(
        (summary.examined, summary.throttled, summary.heartbeats),
        (2, 1, 1)
    );
    assert_eq!(summary.errors, 0);
    assert_eq!(slow.num_calls(), 1, "no retry within the round");
}

#[tokio::test]
async fn a_task_completed_by_the_completer_meanwhile_is_left_alone() {
    // The index is eventually consistent: the item it returned may be completed by now.
    let query = overdue(vec![pending(ID)]);
    let done = update(
        "SET eventState",
        with(
            pending(ID),
            &[
                ("eventState", "FINISHED"),
                ("completedAt", "1624773800"),
                ("outcome", "SUCCEEDED"),
            ],
        ),
    );
    let (describe, claim, success) = (describe(ID, StatusString::Finished), claim(), success());
    let r = reconciler(&[&query, &done, &claim], &[&success], &[&describe]);
    let summary = sweep(&r).await;
    assert_eq!((summary.skipped, summary.lost_events_recovered), (1, 0));
    assert_eq!((claim.num_calls(), success.num_calls()), (0, 0));
}

#[tokio::test]
async fn a_task_the_completer_is_completing_right_now_is_left_to_it() {
    let query = overdue(vec![pending(ID)]);
    let open = update(
        "SET eventState",
        with(pending(ID), &[("eventState", "FINISHED")]),
    );
    let (describe, taken, success) = (
        describe(ID, StatusString::Finished),
        update_condition_fails("SET claimedUntil"),
        success(),
    );
    let r = reconciler(&[&query, &open, &taken], &[&success], &[&describe]);
    let summary = sweep(&r).await;
    assert_eq!(summary.skipped, 1);
    assert_eq!((taken.num_calls(), success.num_calls()), (1, 0));
}

#[tokio::test]
async fn a_task_completed_between_the_heartbeat_and_the_claim_has_nothing_cancelled() {
    let query = overdue(vec![pending(ID)]);
    let describe = describe(ID, StatusString::Started);
    let beat = mock!(aws_sdk_sfn::Client::send_task_heartbeat)
        .then_error(|| SendTaskHeartbeatError::TaskTimedOut(TaskTimedOut::builder().build()));
    let (taken, cancel, mark) = (
        update_condition_fails("SET claimedUntil"),
        cancel(),
        marked("reconciler", "TASK_CLOSED", TOKEN),
    );
    let ended = execution(EXECUTION, ExecutionStatus::TimedOut);
    let r = reconciler(
        &[&query, &taken, &mark],
        &[&beat, &ended],
        &[&describe, &cancel],
    );
    let summary = sweep(&r).await;
    assert_eq!((summary.skipped, summary.tasks_closed), (1, 0));
    assert_eq!((cancel.num_calls(), mark.num_calls()), (0, 0));
}

#[tokio::test]
async fn a_recorded_event_whose_completion_was_lost_is_completed_without_asking_the_data_api_twice()
{
    let query = overdue(vec![with(pending(ID), &[("eventState", "FINISHED")])]);
    let (claim, mark, success) = (claim(), marked("reconciler", "SUCCEEDED", TOKEN), success());
    let describe = describe(ID, StatusString::Finished);
    let r = reconciler(&[&query, &claim, &mark], &[&success], &[&describe]);

    let summary = sweep(&r).await;

    assert_eq!(summary.lost_events_recovered, 1);
    assert_eq!((describe.num_calls(), success.num_calls()), (1, 1));
}

#[tokio::test]
async fn pages_are_followed_and_the_work_per_run_is_bounded() {
    let first = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(|r| r.exclusive_start_key().is_none() && r.limit() == Some(2))
        .then_output(|| {
            QueryOutput::builder()
                .set_items(Some(vec![pending(ID)]))
                .set_last_evaluated_key(Some(item(&[("statementId", ID)])))
                .build()
        });
    let second = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(|r| r.exclusive_start_key().is_some() && r.limit() == Some(1))
        .then_output(|| {
            QueryOutput::builder()
                .set_items(Some(vec![pending(ID2), pending(ID3)]))
                .set_last_evaluated_key(Some(item(&[("statementId", ID3)])))
                .build()
        });
    let running = mock!(aws_sdk_redshiftdata::Client::describe_statement)
        .then_output(|| described(StatusString::Started, &[]));
    let beat = heartbeat();
    let r = with_clients(
        config_with(&[("RECONCILE_MAX_ITEMS", "2")]),
        completer(&[&first, &second], &[&beat], &[&running]),
    );

    let summary = sweep(&r).await;

    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    assert_eq!((summary.examined, summary.heartbeats), (2, 2));
}

#[tokio::test]
async fn when_every_task_fails_for_a_reason_other_than_throttling_the_invocation_fails() {
    let denied = || {
        mock!(aws_sdk_redshiftdata::Client::describe_statement).then_error(|| {
            DescribeStatementError::ValidationException(
                ValidationException::builder()
                    .message("not authorized")
                    .build(),
            )
        })
    };
    let (query, broken) = (overdue(vec![pending(ID)]), denied());
    let r = reconciler(&[&query], &[], &[&broken]);
    let err = r
        .handle(fixture("reconciler-schedule.json"))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "ReconcileFailed");

    // One success among the failures keeps the round Ok; the failure is counted.
    let query = overdue(vec![pending(ID), pending(ID2)]);
    let broken = mock!(aws_sdk_redshiftdata::Client::describe_statement)
        .match_requests(|r| r.id() == Some(ID))
        .then_error(|| {
            DescribeStatementError::ValidationException(
                ValidationException::builder()
                    .message("not authorized")
                    .build(),
            )
        });
    let (running, beat) = (describe(ID2, StatusString::Started), heartbeat());
    let r = reconciler(&[&query], &[&beat], &[&broken, &running]);
    let summary = sweep(&r).await;
    assert_eq!((summary.errors, summary.heartbeats), (1, 1));
}

#[tokio::test]
async fn a_throttled_pending_query_fails_the_run_with_the_store_error_name() {
    let throttled = mock!(aws_sdk_dynamodb::Client::query).then_error(|| {
        aws_sdk_dynamodb::operation::query::QueryError::ProvisionedThroughputExceededException(
            aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .build(),
        )
    });
    let r = reconciler(&[&throttled], &[], &[]);
    let err = r
        .handle(fixture("reconciler-schedule.json"))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "TokenStoreThrottled");
}

#[tokio::test]
async fn when_an_execution_is_aborted_its_running_statements_are_cancelled_and_items_closed() {
    let query = of_execution(vec![pending(ID), pending(ID2)]);
    let (claim, cancel) = (claim(), cancel());
    let mark = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            let values = r.expression_attribute_values();
            r.update_expression()
                == Some(
                    "SET completedAt = :now, outcome = :outcome, completedBy = :side, \
                 executionStatus = :executionStatus REMOVE claimedUntil, pending",
                )
                && r.condition_expression() == Some("taskToken = :token")
                && value(values, ":outcome") == Some("TASK_CLOSED")
                && value(values, ":side") == Some("reconciler")
                && value(values, ":executionStatus") == Some("ABORTED")
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let (beat, describe) = (heartbeat(), describe(ID, StatusString::Started));
    let r = reconciler(&[&query, &claim, &mark], &[&beat], &[&cancel, &describe]);

    let summary = r.handle(fixture("execution-aborted.json")).await.unwrap();

    assert_eq!(summary.trigger, "execution");
    assert_eq!(
        (
            summary.examined,
            summary.cancellations,
            summary.tasks_closed
        ),
        (2, 2, 2)
    );
    assert_eq!(
        (claim.num_calls(), cancel.num_calls(), mark.num_calls()),
        (2, 2, 2)
    );
    assert_eq!((beat.num_calls(), describe.num_calls()), (0, 0));
}

#[tokio::test]
async fn a_redelivered_execution_event_finds_nothing_pending_and_does_nothing() {
    let query = of_execution(vec![]);
    let (claim, cancel) = (claim(), cancel());
    let r = reconciler(&[&query, &claim], &[], &[&cancel]);

    let summary = r.handle(fixture("execution-aborted.json")).await.unwrap();

    assert_eq!(summary.examined, 0);
    assert_eq!(
        (query.num_calls(), claim.num_calls(), cancel.num_calls()),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn foreign_and_malformed_events_are_named_errors_that_touch_nothing() {
    let query = overdue(vec![pending(ID)]);
    let r = reconciler(&[&query], &[], &[]);
    let mut foreign = fixture("execution-aborted.json");
    foreign["source"] = "aws.s3".into();
    let mut running = fixture("execution-aborted.json");
    running["detail"]["status"] = "RUNNING".into();
    let mut nameless = fixture("execution-aborted.json");
    nameless["detail"].as_object_mut().unwrap().remove("name");
    let mut statement_event = fixture("reconciler-schedule.json");
    statement_event["detail-type"] = "Redshift Data Statement Status Change".into();

    for (event, name) in [
        (foreign, "UnexpectedEvent"),
        (statement_event, "UnexpectedEvent"),
        (running, "UnexpectedExecutionStatus"),
        (nameless, "MalformedEvent"),
        (serde_json::json!("hello"), "MalformedEvent"),
    ] {
        assert_eq!(r.handle(event).await.unwrap_err().name(), name);
    }
    assert_eq!(query.num_calls(), 0);
}

#[test]
fn the_event_fixtures_parse_into_their_triggers() {
    assert_eq!(
        parse_trigger(fixture("reconciler-schedule.json")).unwrap(),
        Trigger::Schedule
    );
    match parse_trigger(fixture("execution-aborted.json")).unwrap() {
        Trigger::ExecutionEnded(detail) => {
            assert_eq!(
                (detail.name.as_str(), detail.status.as_str()),
                (EXECUTION, "ABORTED")
            );
            assert!(detail
                .state_machine_arn
                .ends_with(":stateMachine:redshift-etl-callback-etl"));
        }
        other => panic!("unexpected trigger {other:?}"),
    }
}

#[test]
fn the_counts_are_published_as_one_embedded_metric_format_line() {
    let summary = Summary {
        trigger: "schedule".into(),
        lost_events_recovered: 2,
        heartbeats: 3,
        throttled: 1,
        ..Summary::default()
    };
    let line = summary.emf_line(
        "redshift-etl-callback-ReconcilerFunction",
        1_624_773_600_000,
    );
    assert!(!line.contains('\n'));
    let emf: Value = serde_json::from_str(&line).unwrap();
    let directive = &emf["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(emf["_aws"]["Timestamp"], 1_624_773_600_000_i64);
    assert_eq!(directive["Namespace"], "RedshiftEtlCallback");
    assert_eq!(directive["Dimensions"], serde_json::json!([["Function"]]));
    assert_eq!(emf["Function"], "redshift-etl-callback-ReconcilerFunction");
    for name in [
        "LostEventsRecovered",
        "Heartbeats",
        "Cancellations",
        "TasksClosed",
        "StatementsNotFound",
        "Throttled",
        "LocksReleased",
    ] {
        assert!(
            directive["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["Name"] == name && m["Unit"] == "Count"),
            "{name}"
        );
        assert!(emf[name].is_u64(), "{name} has a value");
    }
    assert_eq!(
        (
            emf["LostEventsRecovered"].as_u64(),
            emf["Throttled"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["lostEventsRecovered"], 2);
    assert_eq!(json["statementsNotFound"], 0);
}

#[test]
fn configuration_has_defaults_and_names_every_problem_at_once() {
    let defaults = config_with(&[]);
    assert_eq!(defaults.pending_index, "PendingBySubmittedAt");
    assert_eq!((defaults.grace_seconds, defaults.max_items), (60, 100));
    assert_eq!(defaults.function_name, "reconciler");

    let err = Config::from_lookup(|name| match name {
        "RECONCILE_GRACE_SECONDS" => Some("soon".into()),
        "RECONCILE_MAX_ITEMS" => Some("0".into()),
        "TOKEN_TTL_SECONDS" => Some("-1".into()),
        _ => None,
    })
    .unwrap_err()
    .to_string();
    for name in [
        "TOKEN_TABLE",
        "RECONCILE_GRACE_SECONDS",
        "RECONCILE_MAX_ITEMS",
        "TOKEN_TTL_SECONDS",
    ] {
        assert!(err.contains(name), "{err}");
    }
}

// The run lock (the Step Functions semaphore pattern): `lockName` = RUN_LOCK_NAME, and the string
// set `holders` of the holding executions' ARNs.

const LOCK_TABLE: &str = "run-lock";
const STATE_MACHINE: &str =
    "arn:aws:states:us-east-1:123456789012:stateMachine:redshift-etl-callback-etl";

fn execution_arn(name: &str) -> String {
    format!("arn:aws:states:us-east-1:123456789012:execution:redshift-etl-callback-etl:{name}")
}

fn locking(dynamodb: &[&Rule], sfn: &[&Rule], redshift: &[&Rule]) -> Reconciler {
    with_clients(
        config_with(&[("RUN_LOCK_TABLE", LOCK_TABLE), ("RUN_LOCK_NAME", "etl")]),
        completer(dynamodb, sfn, redshift),
    )
}

/// The state machine's own release for `execution`, shape checked: table, key, expressions,
/// `:me` (the ARN as a one-element set) and `:id` (the ARN).
fn release_matches(
    r: &aws_sdk_dynamodb::operation::update_item::UpdateItemInput,
    execution: &str,
) -> bool {
    let arn = execution_arn(execution);
    let values = r.expression_attribute_values();
    r.table_name() == Some(LOCK_TABLE)
        && r.key().map(|k| k.len()) == Some(1)
        && value(r.key(), "lockName") == Some("etl")
        && r.update_expression() == Some("DELETE holders :me")
        && r.condition_expression() == Some("contains(holders, :id)")
        && r.expression_attribute_names().is_none_or(|n| n.is_empty())
        && values.map(|v| v.len()) == Some(2)
        && values
            .and_then(|v| v.get(":me"))
            .and_then(|v| v.as_ss().ok())
            == Some(&vec![arn.clone()])
        && values
            .and_then(|v| v.get(":id"))
            .and_then(|v| v.as_s().ok())
            == Some(&arn)
}

fn release(execution: &'static str) -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |r| release_matches(r, execution))
        .then_output(|| UpdateItemOutput::builder().build())
}

fn already_released(execution: &'static str) -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |r| release_matches(r, execution))
        .then_error(|| {
            UpdateItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .message("The conditional request failed")
                    .build(),
            )
        })
}

/// The consistent read of the lock item, answering with `holders` (execution names).
fn lock_item(holders: &'static [&'static str]) -> Rule {
    mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| {
            r.table_name() == Some(LOCK_TABLE)
                && value(r.key(), "lockName") == Some("etl")
                && r.consistent_read() == Some(true)
        })
        .then_output(move || {
            let mut item = item(&[("lockName", "etl")]);
            if !holders.is_empty() {
                item.insert(
                    "holders".into(),
                    AttributeValue::Ss(holders.iter().map(|name| execution_arn(name)).collect()),
                );
            }
            GetItemOutput::builder().set_item(Some(item)).build()
        })
}

fn execution(name: &'static str, status: ExecutionStatus) -> Rule {
    redriven_execution(name, status, None)
}

/// `DescribeExecution` of `name`, last redriven at `redriven_at` (epoch seconds) if at all.
fn redriven_execution(
    name: &'static str,
    status: ExecutionStatus,
    redriven_at: Option<i64>,
) -> Rule {
    mock!(aws_sdk_sfn::Client::describe_execution)
        .match_requests(move |r| r.execution_arn() == Some(execution_arn(name).as_str()))
        .then_output(move || {
            DescribeExecutionOutput::builder()
                .execution_arn(execution_arn(name))
                .state_machine_arn(STATE_MACHINE)
                .name(name)
                .status(status.clone())
                .start_date(aws_smithy_types::DateTime::from_secs(1_624_773_600))
                .set_redrive_date(redriven_at.map(aws_smithy_types::DateTime::from_secs))
                .set_redrive_count(redriven_at.map(|_| 1))
                .build()
                .unwrap()
        })
}

fn execution_gone(name: &'static str) -> Rule {
    mock!(aws_sdk_sfn::Client::describe_execution)
        .match_requests(move |r| r.execution_arn() == Some(execution_arn(name).as_str()))
        .then_error(|| {
            DescribeExecutionError::ExecutionDoesNotExist(
                ExecutionDoesNotExist::builder()
                    .message("Execution Does Not Exist")
                    .build(),
            )
        })
}

fn execution_throttled(name: &'static str) -> Rule {
    mock!(aws_sdk_sfn::Client::describe_execution)
        .match_requests(move |r| r.execution_arn() == Some(execution_arn(name).as_str()))
        .then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                ),
            )
        })
}

#[tokio::test]
async fn when_an_execution_is_aborted_its_run_lock_holder_is_released_after_its_statements_are_cancelled(
) {
    let query = of_execution(vec![pending(ID)]);
    let (claim, cancel) = (claim(), cancel());
    let mark = marked_closed();
    let release = release(EXECUTION);
    let ended = execution(EXECUTION, ExecutionStatus::Aborted);
    let r = locking(&[&query, &claim, &mark, &release], &[&ended], &[&cancel]);

    let summary = r.handle(fixture("execution-aborted.json")).await.unwrap();

    assert_eq!(
        (
            summary.tasks_closed,
            summary.cancellations,
            summary.locks_released
        ),
        (1, 1, 1)
    );
    assert_eq!((cancel.num_calls(), release.num_calls()), (1, 1));
    let emf: Value = serde_json::from_str(&summary.emf_line("reconciler", 0)).unwrap();
    assert_eq!(emf["LocksReleased"], 1);
    assert_eq!(serde_json::to_value(&summary).unwrap()["locksReleased"], 1);
}

fn marked_closed() -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                .is_some_and(|e| e.starts_with("SET completedAt"))
        })
        .then_output(|| UpdateItemOutput::builder().build())
}

#[tokio::test]
async fn a_run_lock_the_run_already_released_is_not_an_error_and_counts_nothing() {
    let query = of_execution(vec![]);
    let gone = already_released(EXECUTION);
    let ended = execution(EXECUTION, ExecutionStatus::Aborted);
    let r = locking(&[&query, &gone], &[&ended], &[]);

    let summary = r.handle(fixture("execution-aborted.json")).await.unwrap();

    assert_eq!(gone.num_calls(), 1);
    assert_eq!(
        (summary.locks_released, summary.errors, summary.throttled),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn the_lock_is_released_even_when_the_pending_tasks_cannot_be_listed() {
    let broken = mock!(aws_sdk_dynamodb::Client::query).then_error(|| {
        aws_sdk_dynamodb::operation::query::QueryError::ProvisionedThroughputExceededException(
            aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .build(),
        )
    });
    let release = release(EXECUTION);
    let ended = execution(EXECUTION, ExecutionStatus::Aborted);
    let r = locking(&[&broken, &release], &[&ended], &[]);

    let err = r
        .handle(fixture("execution-aborted.json"))
        .await
        .unwrap_err();

    assert_eq!(err.name(), "TokenStoreThrottled");
    assert_eq!(release.num_calls(), 1);
}

#[tokio::test]
async fn a_release_refused_for_a_reason_other_than_throttling_fails_the_invocation_by_name() {
    let query = of_execution(vec![]);
    let denied = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| release_matches(r, EXECUTION))
        .then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    r#"{"__type":"com.amazon.coral.service#AccessDeniedException","message":"no"}"#,
                ),
            )
        });
    let ended = execution(EXECUTION, ExecutionStatus::Aborted);
    let r = locking(&[&query, &denied], &[&ended], &[]);

    let err = r
        .handle(fixture("execution-aborted.json"))
        .await
        .unwrap_err();

    assert_eq!(err.name(), "RunLockFailed");
}

#[tokio::test]
async fn on_the_schedule_holders_whose_executions_ended_or_vanished_are_released_and_running_ones_left(
) {
    let query = overdue(vec![]);
    let lock = lock_item(&[
        "run-aborted",
        "run-failed",
        "run-gone",
        "run-live",
        "run-succeeded",
    ]);
    let described = [
        execution("run-succeeded", ExecutionStatus::Succeeded),
        execution("run-failed", ExecutionStatus::Failed),
        execution("run-aborted", ExecutionStatus::Aborted),
        execution("run-live", ExecutionStatus::Running),
        execution_gone("run-gone"),
    ];
    let releases = [
        release("run-succeeded"),
        release("run-failed"),
        release("run-aborted"),
        release("run-gone"),
    ];
    let live_release = release("run-live");
    let mut dynamodb: Vec<&Rule> = vec![&query, &lock, &live_release];
    dynamodb.extend(releases.iter());
    let sfn: Vec<&Rule> = described.iter().collect();
    let r = locking(&dynamodb, &sfn, &[]);

    let summary = sweep(&r).await;

    assert_eq!(summary.trigger, "schedule");
    assert_eq!((summary.locks_released, summary.errors), (4, 0));
    assert_eq!(lock.num_calls(), 1);
    for rule in described.iter() {
        assert_eq!(rule.num_calls(), 1);
    }
    for rule in releases.iter() {
        assert_eq!(rule.num_calls(), 1);
    }
    assert_eq!(
        live_release.num_calls(),
        0,
        "a running holder is left alone"
    );
}

#[tokio::test]
async fn a_stale_holder_released_meanwhile_by_its_run_is_not_counted() {
    let query = overdue(vec![]);
    let lock = lock_item(&["run-failed"]);
    let described = execution("run-failed", ExecutionStatus::Failed);
    let gone = already_released("run-failed");
    let r = locking(&[&query, &lock, &gone], &[&described], &[]);

    let summary = sweep(&r).await;

    assert_eq!(gone.num_calls(), 1);
    assert_eq!((summary.locks_released, summary.errors), (0, 0));
}

#[tokio::test]
async fn a_throttled_describe_execution_skips_that_holder_and_counts_it() {
    let query = overdue(vec![]);
    let lock = lock_item(&["run-failed", "run-slow"]);
    let (failed, slow) = (
        execution("run-failed", ExecutionStatus::Failed),
        execution_throttled("run-slow"),
    );
    let (released, slow_release) = (release("run-failed"), release("run-slow"));
    let r = locking(
        &[&query, &lock, &released, &slow_release],
        &[&failed, &slow],
        &[],
    );

    let summary = sweep(&r).await;

    assert_eq!(
        (summary.locks_released, summary.throttled, summary.errors),
        (1, 1, 0)
    );
    assert_eq!((released.num_calls(), slow_release.num_calls()), (1, 0));
}

#[tokio::test]
async fn the_holders_looked_at_per_run_are_bounded() {
    let query = overdue(vec![]);
    let lock = lock_item(&["run-a", "run-b", "run-c"]);
    let described = [
        execution("run-a", ExecutionStatus::Failed),
        execution("run-b", ExecutionStatus::Failed),
        execution("run-c", ExecutionStatus::Failed),
    ];
    let releases = [release("run-a"), release("run-b"), release("run-c")];
    let mut dynamodb: Vec<&Rule> = vec![&query, &lock];
    dynamodb.extend(releases.iter());
    let sfn: Vec<&Rule> = described.iter().collect();
    let r = with_clients(
        config_with(&[("RUN_LOCK_TABLE", LOCK_TABLE), ("RECONCILE_MAX_ITEMS", "2")]),
        completer(&dynamodb, &sfn, &[]),
    );

    let summary = sweep(&r).await;

    assert_eq!(summary.locks_released, 2);
    assert_eq!(
        releases.iter().map(Rule::num_calls).collect::<Vec<_>>(),
        [1, 1, 0]
    );
}

#[tokio::test]
async fn a_throttled_lock_read_is_counted_and_the_run_still_succeeds() {
    let query = overdue(vec![]);
    let throttled = mock!(aws_sdk_dynamodb::Client::get_item).then_error(|| {
        aws_sdk_dynamodb::operation::get_item::GetItemError::ProvisionedThroughputExceededException(
            aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .build(),
        )
    });
    let r = locking(&[&query, &throttled], &[], &[]);

    let summary = sweep(&r).await;

    assert_eq!((summary.throttled, summary.errors), (1, 0));
}

#[tokio::test]
async fn without_a_run_lock_table_the_lock_is_never_read_or_released() {
    let (query, pending_of_execution) = (overdue(vec![]), of_execution(vec![]));
    let lock = lock_item(&["run-failed"]);
    let (released, ended_release) = (release("run-failed"), release(EXECUTION));
    let described = execution("run-failed", ExecutionStatus::Failed);
    let r = reconciler(
        &[
            &query,
            &pending_of_execution,
            &lock,
            &released,
            &ended_release,
        ],
        &[&described],
        &[],
    );
    assert_eq!(r.config.run_lock, None);

    let scheduled = sweep(&r).await;
    let ended = r.handle(fixture("execution-aborted.json")).await.unwrap();

    assert_eq!((scheduled.locks_released, ended.locks_released), (0, 0));
    assert_eq!(
        (
            lock.num_calls(),
            released.num_calls(),
            ended_release.num_calls(),
            described.num_calls()
        ),
        (0, 0, 0, 0)
    );
}

#[test]
fn the_run_lock_settings_are_optional_typed_and_checked() {
    let on = config_with(&[("RUN_LOCK_TABLE", "redshift-etl-RunLockTable-1X2Y")]);
    let lock = on.run_lock.unwrap();
    assert_eq!(
        (lock.table.as_str(), lock.name.as_str()),
        ("redshift-etl-RunLockTable-1X2Y", "etl")
    );
    assert_eq!(config_with(&[("RUN_LOCK_TABLE", " ")]).run_lock, None);
    let named = config_with(&[("RUN_LOCK_TABLE", LOCK_TABLE), ("RUN_LOCK_NAME", "nightly")]);
    assert_eq!(named.run_lock.unwrap().name, "nightly");

    let err = Config::from_lookup(|name| match name {
        "TOKEN_TABLE" => Some("tokens".into()),
        "RUN_LOCK_TABLE" => Some("no/such table".into()),
        "RUN_LOCK_NAME" => Some("bad\u{7}name".into()),
        _ => None,
    })
    .unwrap_err()
    .to_string();
    for name in ["RUN_LOCK_TABLE", "RUN_LOCK_NAME"] {
        assert!(err.contains(name), "{err}");
    }
}

fn with_names(
    base: HashMap<String, AttributeValue>,
    names: &[(&str, &str)],
) -> HashMap<String, AttributeValue> {
    etl_callback::testing::with_error_names(base, names)
}

#[tokio::test]
async fn a_lost_failure_event_recovered_by_the_reconciler_fails_the_task_with_the_step_s_error_name(
) {
    let names = &[("Redshift.StatementFailed", "Validation.NoSalesLoaded")];
    let query = overdue(vec![with_names(pending(ID), names)]);
    let record = update(
        "SET eventState",
        with_names(with(pending(ID), &[("eventState", "FAILED")]), names),
    );
    let (claim, mark) = (claim(), marked("reconciler", "FAILED", TOKEN));
    let describe = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_output(|| {
        described(
            StatusString::Failed,
            &[(
                "d9b6c0c9-0747-4bf4-b142-e8883122f766:1",
                StatusString::Failed,
                -1,
                Some("ERROR: no sales for 2021-06-26"),
            )],
        )
    });
    let failed = mock!(aws_sdk_sfn::Client::send_task_failure)
        .match_requests(|r| {
            let cause: StepFailure = serde_json::from_str(r.cause().unwrap()).unwrap();
            r.error() == Some("Validation.NoSalesLoaded")
                && cause.status == "FAILED"
                && cause.error == "ERROR: no sales for 2021-06-26"
                && cause.failed_statement_index == Some(1)
        })
        .then_output(|| SendTaskFailureOutput::builder().build());
    let r = reconciler(&[&query, &record, &claim, &mark], &[&failed], &[&describe]);

    let summary = sweep(&r).await;

    assert_eq!(summary.lost_events_recovered, 1);
    assert_eq!((failed.num_calls(), mark.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_statement_the_data_api_does_not_know_fails_the_task_with_the_step_s_error_name() {
    let names = &[("Redshift.StatementNotFound", "Pipeline.StatementExpired")];
    let query = overdue(vec![with_names(pending(ID), names)]);
    let gone = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_error(|| {
        DescribeStatementError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Query does not exist")
                .resource_id(ID)
                .build()
                .unwrap(),
        )
    });
    let not_found = mock!(aws_sdk_sfn::Client::send_task_failure)
        .match_requests(|r| {
            let cause: StepFailure = serde_json::from_str(r.cause().unwrap()).unwrap();
            r.task_token() == Some(TOKEN)
                && r.error() == Some("Pipeline.StatementExpired")
                && cause.status == "NOT_FOUND"
                && cause.statement_id == ID
        })
        .then_output(|| SendTaskFailureOutput::builder().build());
    let (claim, mark) = (claim(), marked("reconciler", "FAILED", TOKEN));
    let r = reconciler(&[&query, &claim, &mark], &[&not_found], &[&gone]);

    let summary = sweep(&r).await;

    assert_eq!(summary.statements_not_found, 1);
    assert_eq!((not_found.num_calls(), mark.num_calls()), (1, 1));
}

/// An execution name Step Functions accepts that the old `[A-Za-z0-9_-]` rule refused.
const ODD_EXECUTION: &str = "backfill-2021.06.26-o'brien(1)=@+!-Zürich-日本";

#[tokio::test]
async fn an_ended_execution_with_any_name_step_functions_accepts_has_its_statements_cancelled_and_lock_released(
) {
    let query = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(|r| {
            r.filter_expression() == Some("executionName = :execution")
                && value(r.expression_attribute_values(), ":execution") == Some(ODD_EXECUTION)
        })
        .then_output(|| {
            QueryOutput::builder()
                .items(with(pending(ID), &[("executionName", ODD_EXECUTION)]))
                .build()
        });
    let (claim, cancel, mark) = (claim(), cancel(), marked_closed());
    let release = release(ODD_EXECUTION);
    let ended = execution(ODD_EXECUTION, ExecutionStatus::Aborted);
    let r = locking(&[&query, &claim, &mark, &release], &[&ended], &[&cancel]);
    let mut event = fixture("execution-aborted.json");
    event["detail"]["name"] = ODD_EXECUTION.into();
    event["detail"]["executionArn"] = execution_arn(ODD_EXECUTION).into();

    let summary = r.handle(event).await.unwrap();

    assert_eq!(
        (
            summary.tasks_closed,
            summary.cancellations,
            summary.locks_released
        ),
        (1, 1, 1)
    );
    assert_eq!((query.num_calls(), release.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_stale_lock_holder_with_any_name_step_functions_accepts_is_released_on_the_schedule() {
    let query = overdue(vec![]);
    let lock = lock_item(&[ODD_EXECUTION]);
    let ended = execution(ODD_EXECUTION, ExecutionStatus::Aborted);
    let release = release(ODD_EXECUTION);
    let r = locking(&[&query, &lock, &release], &[&ended], &[]);

    let summary = sweep(&r).await;

    assert_eq!((summary.locks_released, summary.errors), (1, 0));
    assert_eq!((ended.num_calls(), release.num_calls()), (1, 1));
}

// A closed token is not a stopped run (issue 15, item 1): a Task attempt that failed after storing
// its token is retried, and the retry re-attaches to the same statement with a new token.

const TOKEN2: &str = "AQCEAAAAKgAAAAMAAAAAAAAAAW-retry-token";

/// A pending item of `EXECUTION` whose latest token (`token`) was stored `age` seconds ago.
fn pending_since(
    id: &'static str,
    token: &'static str,
    age: i64,
) -> HashMap<String, AttributeValue> {
    let mut item = with(pending(ID), &[("statementId", id), ("taskToken", token)]);
    item.insert(
        "submittedAt".into(),
        AttributeValue::N((chrono::Utc::now().timestamp() - age).to_string()),
    );
    item
}

fn closed_heartbeat() -> Rule {
    mock!(aws_sdk_sfn::Client::send_task_heartbeat)
        .match_requests(|r| r.task_token() == Some(TOKEN))
        .then_error(|| SendTaskHeartbeatError::TaskTimedOut(TaskTimedOut::builder().build()))
}

fn cancel_of(id: &'static str) -> Rule {
    mock!(aws_sdk_redshiftdata::Client::cancel_statement)
        .match_requests(move |r| r.id() == Some(id))
        .then_output(|| CancelStatementOutput::builder().status(true).build())
}

#[tokio::test]
async fn a_closed_token_of_a_running_execution_leaves_the_statement_running_for_the_retry_to_re_attach(
) {
    for status in [ExecutionStatus::Running, ExecutionStatus::PendingRedrive] {
        // The attempt that stored TOKEN failed (Lambda.ServiceException); its retry is backing off.
        let query = overdue(vec![pending_since(ID, TOKEN, 120)]);
        let (describe, beat, cancel) = (
            describe(ID, StatusString::Started),
            closed_heartbeat(),
            cancel(),
        );
        let running = execution(EXECUTION, status);
        let (claim, mark) = (claim(), marked_closed());
        let r = reconciler(
            &[&query, &claim, &mark],
            &[&beat, &running],
            &[&describe, &cancel],
        );

        let summary = sweep(&r).await;

        assert_eq!(
            (beat.num_calls(), running.num_calls()),
            (1, 1),
            "the closed token makes the reconciler ask about its execution"
        );
        assert_eq!(
            (cancel.num_calls(), claim.num_calls(), mark.num_calls()),
            (0, 0, 0),
            "nothing is cancelled or closed while the execution runs"
        );
        assert_eq!(summary.closed_tokens_of_running_executions, 1);
        assert_eq!(
            (summary.cancellations, summary.tasks_closed, summary.errors),
            (0, 0, 0)
        );
        let emf: Value = serde_json::from_str(&summary.emf_line("reconciler", 0)).unwrap();
        assert_eq!(emf["ClosedTokenOfRunningExecution"], 1);
    }

    // The retry re-attached: the item carries its token, which the next sweep heartbeats.
    let query = overdue(vec![pending_since(ID, TOKEN2, 5)]);
    let describe = describe(ID, StatusString::Started);
    let beat = mock!(aws_sdk_sfn::Client::send_task_heartbeat)
        .match_requests(|r| r.task_token() == Some(TOKEN2))
        .then_output(|| SendTaskHeartbeatOutput::builder().build());
    let (running, cancel) = (execution(EXECUTION, ExecutionStatus::Running), cancel());
    let r = reconciler(&[&query], &[&beat, &running], &[&describe, &cancel]);

    let summary = sweep(&r).await;

    assert_eq!((summary.heartbeats, beat.num_calls()), (1, 1));
    assert_eq!((running.num_calls(), cancel.num_calls()), (0, 0));
}

#[tokio::test]
async fn a_closed_token_of_an_execution_that_succeeded_or_no_longer_exists_cancels_its_statement() {
    for ended in [
        execution(EXECUTION, ExecutionStatus::Succeeded),
        execution_gone(EXECUTION),
    ] {
        let query = overdue(vec![pending_since(ID, TOKEN, 120)]);
        let (describe, beat, cancel) = (
            describe(ID, StatusString::Started),
            closed_heartbeat(),
            cancel_of(ID),
        );
        let (claim, mark) = (claim(), marked("reconciler", "TASK_CLOSED", TOKEN));
        let r = reconciler(
            &[&query, &claim, &mark],
            &[&beat, &ended],
            &[&describe, &cancel],
        );

        let summary = sweep(&r).await;

        assert_eq!(
            (ended.num_calls(), cancel.num_calls(), mark.num_calls()),
            (1, 1, 1)
        );
        assert_eq!(
            (
                summary.cancellations,
                summary.tasks_closed,
                summary.closed_tokens_of_running_executions
            ),
            (1, 1, 0)
        );
    }
}

#[tokio::test]
async fn a_closed_token_of_a_running_execution_is_cancelled_once_no_retry_can_re_attach_to_it() {
    {
        // Bound 1: no retry re-attached within the step timeout (STEP_TIMEOUT_SECONDS) of the token.
        let query = overdue(vec![pending_since(ID, TOKEN, 1_300)]);
        let (describe, beat, cancel) = (
            describe(ID, StatusString::Started),
            closed_heartbeat(),
            cancel_of(ID),
        );
        let running = execution(EXECUTION, ExecutionStatus::Running);
        let (claim, mark) = (claim(), marked("reconciler", "TASK_CLOSED", TOKEN));
        let r = with_clients(
            config_with(&[("STEP_TIMEOUT_SECONDS", "1200")]),
            completer(
                &[&query, &claim, &mark],
                &[&beat, &running],
                &[&describe, &cancel],
            ),
        );
        assert_eq!(r.config.reattach_wait_seconds(), 1_200);

        let summary = sweep(&r).await;

        assert_eq!((cancel.num_calls(), mark.num_calls()), (1, 1));
        assert_eq!(
            (
                summary.cancellations,
                summary.closed_tokens_of_running_executions
            ),
            (1, 0)
        );
    }
    {
        // Bound 2: the execution was redriven after the token was stored; that attempt is over.
        let query = overdue(vec![pending_since(ID, TOKEN, 120)]);
        let (describe, beat, cancel) = (
            describe(ID, StatusString::Started),
            closed_heartbeat(),
            cancel_of(ID),
        );
        let redriven = redriven_execution(
            EXECUTION,
            ExecutionStatus::Running,
            Some(chrono::Utc::now().timestamp() - 60),
        );
        let (claim, mark) = (claim(), marked("reconciler", "TASK_CLOSED", TOKEN));
        let r = reconciler(
            &[&query, &claim, &mark],
            &[&beat, &redriven],
            &[&describe, &cancel],
        );

        let summary = sweep(&r).await;

        assert_eq!((cancel.num_calls(), mark.num_calls()), (1, 1));
        assert_eq!(summary.cancellations, 1);
    }
    {
        // A step timeout shorter than the Task's retries cannot cut them short: the wait is at least
        // MIN_REATTACH_WAIT_SECONDS.
        let query = overdue(vec![pending_since(ID, TOKEN, 300)]);
        let (describe, beat, cancel) = (
            describe(ID, StatusString::Started),
            closed_heartbeat(),
            cancel(),
        );
        let running = execution(EXECUTION, ExecutionStatus::Running);
        let r = with_clients(
            config_with(&[("STEP_TIMEOUT_SECONDS", "60")]),
            completer(&[&query], &[&beat, &running], &[&describe, &cancel]),
        );
        assert_eq!(
            r.config.reattach_wait_seconds(),
            reconciler::MIN_REATTACH_WAIT_SECONDS
        );

        let summary = sweep(&r).await;

        assert_eq!(cancel.num_calls(), 0);
        assert_eq!(summary.closed_tokens_of_running_executions, 1);
    }
}

#[tokio::test]
async fn when_describe_execution_is_throttled_a_closed_token_s_statement_is_left_for_the_next_run()
{
    let query = overdue(vec![pending_since(ID, TOKEN, 120)]);
    let (describe, beat, cancel) = (
        describe(ID, StatusString::Started),
        closed_heartbeat(),
        cancel(),
    );
    let slow = execution_throttled(EXECUTION);
    let claim = claim();
    let r = reconciler(&[&query, &claim], &[&beat, &slow], &[&describe, &cancel]);

    let summary = sweep(&r).await;

    assert_eq!(slow.num_calls(), 1);
    assert_eq!((cancel.num_calls(), claim.num_calls()), (0, 0));
    assert_eq!(
        (summary.throttled, summary.errors, summary.cancellations),
        (1, 0, 0)
    );
}

#[test]
fn the_closed_token_decision_follows_the_execution_the_redrive_and_the_token_s_age() {
    use reconciler::execution::{Execution, ExecutionState};
    use reconciler::{closed_token, ClosedToken};
    let now = 1_700_000_000;
    let live = |redriven_at| Execution {
        state: ExecutionState::Live("RUNNING".into()),
        redriven_at,
        redrive_count: u32::from(redriven_at.is_some()),
    };
    let ended = Execution {
        state: ExecutionState::Ended("FAILED".into()),
        redriven_at: None,
        redrive_count: 0,
    };
    let gone = Execution {
        state: ExecutionState::DoesNotExist,
        redriven_at: None,
        redrive_count: 0,
    };
    assert_eq!(
        closed_token(&live(None), Some(now - 899), now, 900),
        ClosedToken::KeepForRetry
    );
    assert_eq!(
        closed_token(&live(Some(now - 899)), Some(now - 899), now, 900),
        ClosedToken::KeepForRetry,
        "a redrive in the same second is not known to be later"
    );
    for (execution, submitted) in [
        (&ended, Some(now - 1)),
        (&gone, Some(now - 1)),
        (&live(None), Some(now - 901)),
        (&live(None), None),
        (&live(Some(now - 10)), Some(now - 11)),
    ] {
        assert!(
            matches!(
                closed_token(execution, submitted, now, 900),
                ClosedToken::Cancel(_)
            ),
            "{execution:?} {submitted:?}"
        );
    }
}

// A late execution-ended event can hit a later attempt (issue 15, item 2): after a redrive (same
// name, same ARN), an old FAILED event processed late must not touch the redriven run.

/// The fixture's execution as a FAILED event (stopDate 1624774800456).
fn failed_event() -> Value {
    let mut event = fixture("execution-aborted.json");
    event["detail"]["status"] = "FAILED".into();
    event
}

/// A pending item of `EXECUTION` stored at `submitted_at` (epoch seconds).
fn pending_submitted(
    id: &'static str,
    submitted_at: &'static str,
) -> HashMap<String, AttributeValue> {
    with(
        pending(ID),
        &[("statementId", id), ("submittedAt", submitted_at)],
    )
}

#[tokio::test]
async fn a_late_failed_event_after_a_redrive_cancels_only_the_ended_attempt_s_statements_and_releases_only_its_slot(
) {
    for now in [ExecutionStatus::Running, ExecutionStatus::PendingRedrive] {
        // ID: stored before the event's stopDate (the failed attempt, its token is dead);
        // ID2: stored after it (the redriven attempt, its token lives).
        let query = of_execution(vec![
            pending_submitted(ID, "1624773700"),
            pending_submitted(ID2, "1624775000"),
        ]);
        let (old, new) = (cancel_of(ID), cancel_of(ID2));
        let (claim, mark) = (claim(), marked("reconciler", "TASK_CLOSED", TOKEN));
        // The failed attempt held its slot under the bare ARN (AcquireRunLock); the redriven
        // attempt holds its own, `<ARN>#1` (the submitter took it).
        let redriven_slot = release(REDRIVEN_SLOT);
        let release = release(EXECUTION);
        let redriven = redriven_execution(EXECUTION, now, Some(1_624_774_900));
        let r = locking(
            &[&query, &claim, &mark, &release, &redriven_slot],
            &[&redriven],
            &[&old, &new],
        );

        let summary = r.handle(failed_event()).await.unwrap();

        assert_eq!(
            (old.num_calls(), claim.num_calls(), mark.num_calls()),
            (1, 1, 1),
            "the ended attempt's statement is cancelled even though the execution runs again"
        );
        assert_eq!(
            new.num_calls(),
            0,
            "the redriven attempt's statement runs on"
        );
        assert_eq!(redriven.num_calls(), 1);
        assert_eq!(
            (release.num_calls(), redriven_slot.num_calls()),
            (1, 0),
            "the failed attempt's slot is given back, the redriven attempt's is left to it"
        );
        assert_eq!(
            (
                summary.examined,
                summary.cancellations,
                summary.skipped,
                summary.locks_released,
                summary.errors
            ),
            (2, 1, 1, 1, 0)
        );
    }
}

#[tokio::test]
async fn a_late_event_of_an_execution_that_is_still_ended_releases_its_lock_and_spares_later_items()
{
    let query = of_execution(vec![
        pending_submitted(ID, "1624773700"),
        pending_submitted(ID2, "1624775000"),
    ]);
    let (old, new) = (cancel_of(ID), cancel_of(ID2));
    let (claim, mark) = (claim(), marked_closed());
    let release = release(EXECUTION);
    let ended = execution(EXECUTION, ExecutionStatus::Failed);
    let r = locking(&[&query, &claim, &mark, &release], &[&ended], &[&old, &new]);

    let summary = r.handle(failed_event()).await.unwrap();

    assert_eq!((old.num_calls(), new.num_calls()), (1, 0));
    assert_eq!((ended.num_calls(), release.num_calls()), (1, 1));
    assert_eq!((summary.cancellations, summary.locks_released), (1, 1));
}

#[tokio::test]
async fn an_item_stored_in_the_second_the_execution_stopped_belongs_to_the_ended_attempt() {
    // stopDate 1624774800456: submittedAt 1624774800 is within that second; 1624774801 is after.
    let query = of_execution(vec![
        pending_submitted(ID, "1624774800"),
        pending_submitted(ID2, "1624774801"),
    ]);
    let (same, after) = (cancel_of(ID), cancel_of(ID2));
    let (claim, mark) = (claim(), marked_closed());
    let r = reconciler(&[&query, &claim, &mark], &[], &[&same, &after]);

    let summary = r.handle(failed_event()).await.unwrap();

    assert_eq!((same.num_calls(), after.num_calls()), (1, 0));
    assert_eq!((summary.cancellations, summary.skipped), (1, 1));
}

#[tokio::test]
async fn execution_events_without_a_valid_stop_date_or_with_a_foreign_arn_are_named_errors_that_change_nothing(
) {
    let query = of_execution(vec![pending(ID)]);
    let (claim, cancel, release) = (claim(), cancel(), release(EXECUTION));
    let ended = execution(EXECUTION, ExecutionStatus::Failed);
    let r = locking(&[&query, &claim, &release], &[&ended], &[&cancel]);
    let edit = |edit: &dyn Fn(&mut Value)| {
        let mut event = failed_event();
        edit(&mut event["detail"]);
        event
    };
    let other_machine = "arn:aws:states:us-east-1:123456789012:stateMachine:etl-dev-etl";
    let cases = [
        (
            edit(&|d| {
                d.as_object_mut().unwrap().remove("stopDate");
            }),
            "MalformedEvent",
        ),
        (edit(&|d| d["stopDate"] = Value::Null), "MalformedEvent"),
        (
            edit(&|d| d["stopDate"] = "1624774800456".into()),
            "MalformedEvent",
        ),
        (
            edit(&|d| d["stopDate"] = serde_json::json!(1.6247748e12)),
            "MalformedEvent",
        ),
        (edit(&|d| d["stopDate"] = (-1).into()), "MalformedEvent"),
        (edit(&|d| d["stopDate"] = 0.into()), "MalformedEvent"),
        (
            edit(&|d| d["startDate"] = 1_624_774_800_457_i64.into()),
            "MalformedEvent",
        ),
        (
            edit(&|d| d["startDate"] = "yesterday".into()),
            "MalformedEvent",
        ),
        (edit(&|d| d["redriveCount"] = (-1).into()), "MalformedEvent"),
        (
            edit(&|d| d["executionArn"] = execution_arn("someone-else").into()),
            "MalformedEvent",
        ),
        (
            edit(&|d| d["executionArn"] = "not-an-arn".into()),
            "MalformedEvent",
        ),
        (
            edit(&|d| d["stateMachineArn"] = "etl".into()),
            "MalformedEvent",
        ),
        (
            edit(&|d| {
                d["stateMachineArn"] = other_machine.into();
                d["executionArn"] = format!(
                    "arn:aws:states:us-east-1:123456789012:execution:etl-dev-etl:{EXECUTION}"
                )
                .into();
            }),
            "ForeignExecution",
        ),
    ];
    for (event, name) in cases {
        let err = r.handle(event.clone()).await.unwrap_err();
        assert_eq!(err.name(), name, "{}", event["detail"]);
    }
    assert_eq!(
        (
            query.num_calls(),
            claim.num_calls(),
            cancel.num_calls(),
            ended.num_calls(),
            release.num_calls()
        ),
        (0, 0, 0, 0, 0)
    );

    // The fixture itself, with the fields a current event also carries, is accepted.
    let mut current = failed_event();
    current["detail"]["redriveCount"] = 0.into();
    current["detail"]["redriveStatus"] = "REDRIVABLE".into();
    current["detail"]["error"] = "Redshift.StatementFailed".into();
    match parse_trigger(current).unwrap() {
        Trigger::ExecutionEnded(detail) => {
            assert_eq!(
                (detail.stop_date, detail.start_date, detail.redrive_count),
                (1_624_774_800_456, Some(1_624_773_600_123), Some(0))
            );
        }
        other => panic!("unexpected trigger {other:?}"),
    }
}

#[test]
fn the_state_machine_arn_is_required_and_checked_and_the_step_timeout_is_typed() {
    let config = config_with(&[]);
    assert_eq!(config.state_machine_arn, STATE_MACHINE);
    assert_eq!(
        (config.step_timeout_seconds, config.reattach_wait_seconds()),
        (3600, 3600)
    );
    for (arn, timeout) in [
        (None, None),
        (Some("redshift-etl-callback-etl"), Some("an hour")),
        (
            Some("arn:aws:states:us-east-1:123456789012:stateMachine:etl:3"),
            Some("0"),
        ),
    ] {
        let err = Config::from_lookup(|name| match name {
            "TOKEN_TABLE" => Some("tokens".into()),
            "STATE_MACHINE_ARN" => arn.map(str::to_owned),
            "STEP_TIMEOUT_SECONDS" => timeout.map(str::to_owned),
            _ => None,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("STATE_MACHINE_ARN"), "{err}");
        assert_eq!(
            timeout.is_some(),
            err.contains("STEP_TIMEOUT_SECONDS"),
            "{err}"
        );
    }
}

// A holders element that is no execution ARN (a hand edit, a bad copy) can never end: left there it
// would hold a slot for good and, with RunConcurrency=1, make every later run wait and fail
// RunAlreadyInProgress. The scheduled sweep removes it (the state machine's own conditional
// release) and counts it; a real holder whose execution still runs keeps its slot.
#[tokio::test]
async fn a_holder_that_is_no_execution_arn_is_removed_so_no_slot_leaks_for_good() {
    let query = overdue(vec![]);
    let lock = mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| r.table_name() == Some(LOCK_TABLE) && r.consistent_read() == Some(true))
        .then_output(|| {
            let mut item = item(&[("lockName", "etl")]);
            item.insert(
                "holders".into(),
                AttributeValue::Ss(vec!["by-hand".into(), execution_arn("run-live")]),
            );
            GetItemOutput::builder().set_item(Some(item)).build()
        });
    let garbage_release = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            let values = r.expression_attribute_values();
            r.update_expression() == Some("DELETE holders :me")
                && r.condition_expression() == Some("contains(holders, :id)")
                && values
                    .and_then(|v| v.get(":me"))
                    .and_then(|v| v.as_ss().ok())
                    == Some(&vec!["by-hand".to_owned()])
                && values
                    .and_then(|v| v.get(":id"))
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some("by-hand")
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let live_release = release("run-live");
    let live = execution("run-live", ExecutionStatus::Running);
    let r = locking(
        &[&query, &lock, &garbage_release, &live_release],
        &[&live],
        &[],
    );

    let summary = sweep(&r).await;

    assert_eq!(garbage_release.num_calls(), 1);
    assert_eq!(
        live_release.num_calls(),
        0,
        "a running holder keeps its slot"
    );
    assert_eq!((summary.locks_released, summary.errors), (1, 0));
}

#[tokio::test]
async fn on_the_schedule_the_slot_of_an_attempt_before_a_redrive_is_released_and_the_redriven_one_kept(
) {
    let query = overdue(vec![]);
    let lock = lock_item(&[EXECUTION, REDRIVEN_SLOT]);
    let (first, redriven_slot) = (release(EXECUTION), release(REDRIVEN_SLOT));
    let running = redriven_execution(EXECUTION, ExecutionStatus::Running, Some(1_624_774_900));
    let r = locking(&[&query, &lock, &first, &redriven_slot], &[&running], &[]);

    let summary = sweep(&r).await;

    assert_eq!(
        (first.num_calls(), redriven_slot.num_calls()),
        (1, 0),
        "attempt 0 is over (the execution was redriven); attempt 1 runs"
    );
    assert_eq!((summary.locks_released, summary.errors), (1, 0));
}

#[tokio::test]
async fn when_a_redriven_attempt_ends_its_own_slot_is_released_on_its_event_and_on_the_schedule() {
    // Its event: every attempt's element (the earlier ones are gone already: nothing to count).
    let query = of_execution(vec![]);
    let (first, redriven_slot) = (already_released(EXECUTION), release(REDRIVEN_SLOT));
    let failed_again = mock!(aws_sdk_sfn::Client::describe_execution).then_output(|| {
        DescribeExecutionOutput::builder()
            .execution_arn(execution_arn(EXECUTION))
            .state_machine_arn(STATE_MACHINE)
            .name(EXECUTION)
            .status(ExecutionStatus::Failed)
            .start_date(aws_smithy_types::DateTime::from_secs(1_624_773_600))
            .redrive_count(1)
            .build()
            .unwrap()
    });
    let r = locking(&[&query, &first, &redriven_slot], &[&failed_again], &[]);

    let summary = r.handle(failed_event()).await.unwrap();

    assert_eq!((first.num_calls(), redriven_slot.num_calls()), (1, 1));
    assert_eq!((summary.locks_released, summary.errors), (1, 0));

    // The schedule, when that event was lost.
    let query = overdue(vec![]);
    let lock = lock_item(&[REDRIVEN_SLOT]);
    let redriven_slot = release(REDRIVEN_SLOT);
    let r = locking(&[&query, &lock, &redriven_slot], &[&failed_again], &[]);

    let summary = sweep(&r).await;

    assert_eq!(redriven_slot.num_calls(), 1);
    assert_eq!(summary.locks_released, 1);
}

// ------------------------------------------------------------ the execution's own lineage run

/// `DescribeStateMachineForExecution` of `EXECUTION`: the generated sales ETL definition.
fn definition_of_execution() -> Rule {
    mock!(aws_sdk_sfn::Client::describe_state_machine_for_execution)
        .match_requests(|r| r.execution_arn() == Some(execution_arn(EXECUTION).as_str()))
        .then_output(|| {
            aws_sdk_sfn::operation::describe_state_machine_for_execution::DescribeStateMachineForExecutionOutput::builder()
                .state_machine_arn(STATE_MACHINE)
                .name("redshift-etl-callback-etl")
                .definition(include_str!("../../../statemachine/etl.asl.json"))
                .role_arn("arn:aws:iam::123456789012:role/etl")
                .update_date(aws_smithy_types::DateTime::from_secs(1_624_770_000))
                .build()
                .unwrap()
        })
}

fn run_mark_matches(r: &aws_sdk_dynamodb::operation::update_item::UpdateItemInput) -> bool {
    r.table_name() == Some("tokens")
        && value(r.key(), "statementId").is_some_and(|k| k.starts_with("executionRun#"))
        && r.condition_expression() == Some("attribute_not_exists(statementId)")
        && r.update_expression() == Some("SET lineageSentAt = :now, expiresAt = :expires")
}

/// The mark that this ended attempt's lineage run is sent: written by the first delivery, refused
/// to every later one.
fn run_mark() -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(run_mark_matches)
        .sequence()
        .output(|| UpdateItemOutput::builder().build())
        .error(|| {
            UpdateItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .message("The conditional request failed")
                    .build(),
            )
        })
        .repeatedly()
        .build()
}

fn ended_event(status: &str, error: Option<&str>, cause: Option<&str>) -> Value {
    let mut event = fixture("execution-aborted.json");
    event["detail"]["status"] = status.into();
    event["detail"]["error"] = error.into();
    event["detail"]["cause"] = cause.into();
    event
}

/// A locking reconciler with lineage on, recording what it sends.
fn with_lineage(
    dynamodb: &[&Rule],
    sfn: &[&Rule],
) -> (
    Reconciler,
    std::sync::Arc<etl_callback::lineage::RecordingSink>,
) {
    let mark = run_mark();
    let dynamodb: Vec<&Rule> = dynamodb.iter().copied().chain([&mark]).collect();
    let mut r = with_clients(
        config_with(&[
            ("RUN_LOCK_TABLE", LOCK_TABLE),
            ("RUN_LOCK_NAME", "etl"),
            ("STACK_NAME", "redshift-etl-callback"),
        ]),
        completer(&dynamodb, sfn, &[]),
    );
    let sink = std::sync::Arc::new(etl_callback::lineage::RecordingSink::default());
    r.lineage = etl_callback::lineage::Lineage::to(sink.clone());
    (r, sink)
}

fn types(events: &[etl_callback::lineage::RunEvent]) -> Vec<etl_callback::lineage::EventType> {
    events.iter().map(|e| e.event_type).collect()
}

#[tokio::test]
async fn a_succeeded_execution_sends_its_own_start_and_complete_and_touches_nothing_else() {
    use etl_callback::lineage::EventType;
    let query = of_execution(vec![pending(ID)]);
    let (lock, release) = (lock_item(&[EXECUTION]), release(EXECUTION));
    let (described, definition) = (
        execution(EXECUTION, ExecutionStatus::Succeeded),
        definition_of_execution(),
    );
    let (r, sink) = with_lineage(&[&query, &lock, &release], &[&described, &definition]);

    let summary = r
        .handle(ended_event("SUCCEEDED", None, None))
        .await
        .unwrap();

    assert_eq!(summary.trigger, "execution");
    assert_eq!(
        summary,
        Summary {
            trigger: "execution".into(),
            ..Summary::default()
        }
    );
    let events = sink.events();
    assert_eq!(types(&events), [EventType::Start, EventType::Complete]);
    let json: Value = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(
        json["job"],
        serde_json::json!({"namespace": "redshift-etl-callback", "name": "SalesEtl"})
    );
    assert_eq!(
        json["run"]["runId"],
        etl_callback::lineage::execution_run_id(&execution_arn(EXECUTION))
    );
    assert!(json["run"]["facets"].get("parent").is_none(), "{json}");
    assert_eq!(
        json["eventTime"], "2021-06-27T06:00:00.123Z",
        "START at startDate"
    );
    assert_eq!(
        events[1].event_time, "2021-06-27T06:20:00.456Z",
        "COMPLETE at stopDate"
    );
    assert!(events[1].run.facets.error_message.is_none());
    // nothing pending is looked at, the run lock is neither read nor released
    assert_eq!(
        (
            query.num_calls(),
            lock.num_calls(),
            release.num_calls(),
            described.num_calls()
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(definition.num_calls(), 1);
}

#[tokio::test]
async fn with_lineage_off_a_succeeded_execution_changes_nothing_and_asks_nothing() {
    let query = of_execution(vec![pending(ID)]);
    let (lock, release) = (lock_item(&[EXECUTION]), release(EXECUTION));
    let (described, definition) = (
        execution(EXECUTION, ExecutionStatus::Succeeded),
        definition_of_execution(),
    );
    let r = locking(&[&query, &lock, &release], &[&described, &definition], &[]);
    assert!(!r.lineage.is_on());

    let summary = r
        .handle(ended_event("SUCCEEDED", None, None))
        .await
        .unwrap();

    assert_eq!(
        summary,
        Summary {
            trigger: "execution".into(),
            ..Summary::default()
        }
    );
    assert_eq!(
        (
            query.num_calls(),
            lock.num_calls(),
            release.num_calls(),
            described.num_calls(),
            definition.num_calls()
        ),
        (0, 0, 0, 0, 0)
    );
}

#[tokio::test]
async fn a_failed_execution_sends_fail_with_its_step_and_sql_error_after_releasing_its_lock() {
    use etl_callback::lineage::EventType;
    let query = of_execution(vec![]);
    let (lock, release) = (lock_item(&[EXECUTION]), release(EXECUTION));
    let (described, definition) = (
        execution(EXECUTION, ExecutionStatus::Failed),
        definition_of_execution(),
    );
    let (r, sink) = with_lineage(&[&query, &lock, &release], &[&described, &definition]);
    let cause = r#"{"step":"LoadItem","error":"ERROR: invalid input syntax for type integer: \"not a number\"\nDETAIL: x","statementId":"s"}"#;

    let summary = r
        .handle(ended_event(
            "FAILED",
            Some("Redshift.StatementFailed"),
            Some(cause),
        ))
        .await
        .unwrap();

    assert_eq!(summary.locks_released, 1);
    let events = sink.events();
    assert_eq!(types(&events), [EventType::Start, EventType::Fail]);
    let message = &events[1].run.facets.error_message.as_ref().unwrap().message;
    assert_eq!(
        message,
        "Redshift.StatementFailed: step LoadItem: ERROR: invalid input syntax for type integer: \"not a number\"\nDETAIL: x"
    );
    assert!(events[0].run.facets.error_message.is_none());

    // a timed-out run is a FAIL too; without error and cause the message says how it ended
    let (query, lock) = (of_execution(vec![]), lock_item(&[EXECUTION]));
    let release = self::release(EXECUTION);
    let (described, definition) = (
        execution(EXECUTION, ExecutionStatus::TimedOut),
        definition_of_execution(),
    );
    let (r, sink) = with_lineage(&[&query, &lock, &release], &[&described, &definition]);
    r.handle(ended_event("TIMED_OUT", None, None))
        .await
        .unwrap();
    let events = sink.events();
    assert_eq!(types(&events), [EventType::Start, EventType::Fail]);
    assert_eq!(
        events[1].run.facets.error_message.as_ref().unwrap().message,
        "the execution ended TIMED_OUT"
    );
}

#[tokio::test]
async fn an_aborted_execution_sends_abort_once_and_a_repeated_delivery_nothing() {
    use etl_callback::lineage::EventType;
    let query = of_execution(vec![]);
    let (lock, release) = (lock_item(&[]), already_released(EXECUTION));
    let (described, definition) = (
        execution(EXECUTION, ExecutionStatus::Aborted),
        definition_of_execution(),
    );
    let (r, sink) = with_lineage(&[&query, &lock, &release], &[&described, &definition]);

    r.handle(fixture("execution-aborted.json")).await.unwrap();
    r.handle(fixture("execution-aborted.json")).await.unwrap();

    let events = sink.events();
    assert_eq!(types(&events), [EventType::Start, EventType::Abort]);
    // the second delivery found the mark: it did not even look up the pipeline
    assert_eq!(definition.num_calls(), 1);
}

#[tokio::test]
async fn lineage_never_fails_the_invocation_when_the_pipeline_cannot_be_read() {
    let query = of_execution(vec![]);
    let (lock, release) = (lock_item(&[EXECUTION]), release(EXECUTION));
    let described = execution(EXECUTION, ExecutionStatus::Failed);
    let denied = mock!(aws_sdk_sfn::Client::describe_state_machine_for_execution)
        .then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    r#"{"__type":"AccessDeniedException","message":"no"}"#,
                ),
            )
        });
    let (r, sink) = with_lineage(&[&query, &lock, &release], &[&described, &denied]);

    let summary = r
        .handle(ended_event("FAILED", Some("States.TaskFailed"), None))
        .await
        .unwrap();

    assert_eq!(summary.locks_released, 1);
    assert!(sink.events().is_empty());
    assert_eq!(denied.num_calls(), 1);
}
