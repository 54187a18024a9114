//! The completer's OpenLineage events: the terminal event of a step comes from the one delivery
//! that closed its task, exactly once, after the callback; a duplicate or a loser emits nothing.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_redshiftdata::types::StatusString;
use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput;
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput;
use aws_smithy_mocks::{mock, Rule};
use completer::handle;
use etl_callback::lineage::{
    redshift_namespace, EventType, Lineage, RecordingSink, StepRun, StepTables, Warehouse,
};
use etl_callback::testing::{
    completed_by, completer, described, item, update, update_condition_fails, with_token, TOKEN,
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

fn step_run() -> StepRun {
    StepRun::new(
        "redshift-etl",
        "sales",
        "LoadItem",
        "arn:aws:states:us-east-1:123456789012:execution:SalesEtl:run-1",
        "2021-06-27T06:00:00.456Z",
        0,
        &StepTables {
            pipeline: Some("sales".into()),
            reads: vec!["public.stg_item".into()],
            writes: vec!["public.item".into()],
        },
        &Warehouse {
            namespace: redshift_namespace("redshift-cluster-1", "us-east-1"),
            database: "dev".into(),
        },
        etl_callback::lineage::now(),
    )
}

/// The item after the event's write: token, event and (lineage on) the step's run.
fn with_event(state: &'static str, lineage: bool) -> HashMap<String, AttributeValue> {
    let mut pairs = with_token(ID);
    pairs.extend([("eventState", state), ("eventRows", "4")]);
    let mut item = item(&pairs);
    if lineage {
        item.insert("lineage".into(), AttributeValue::S(step_run().to_json()));
    }
    item
}

fn claim() -> Rule {
    update("SET claimedUntil", item(&[]))
}

const SUBS: &[(&str, StatusString, i64, Option<&str>)] = &[
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

const FAILED: &[(&str, StatusString, i64, Option<&str>)] = &[
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
];

fn describe(
    status: StatusString,
    subs: &'static [(&'static str, StatusString, i64, Option<&'static str>)],
) -> Rule {
    mock!(aws_sdk_redshiftdata::Client::describe_statement)
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

fn recorded(c: &mut etl_callback::complete::Completer) -> Arc<RecordingSink> {
    let sink = Arc::new(RecordingSink::default());
    c.lineage = Lineage::to(sink.clone()).counting_rows(etl_callback::complete::rows_written);
    sink
}

/// A finished batch as the Data API describes it, each sub-statement with its SQL and rows.
fn describe_sql(subs: &'static [(&'static str, i64)]) -> Rule {
    mock!(aws_sdk_redshiftdata::Client::describe_statement).then_output(move || {
        let sub_statements = subs
            .iter()
            .enumerate()
            .map(|(i, (sql, rows))| {
                aws_sdk_redshiftdata::types::SubStatementData::builder()
                    .id(format!("{ID}:{}", i + 1))
                    .status(aws_sdk_redshiftdata::types::StatementStatusString::Finished)
                    .result_rows(*rows)
                    .query_string(*sql)
                    .build()
                    .unwrap()
            })
            .collect();
        aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput::builder()
            .id(ID)
            .status(StatusString::Finished)
            .duration(1_500_000_000)
            .set_sub_statements(Some(sub_statements))
            .build()
            .unwrap()
    })
}

/// The staging table's rows (temporary: the step's own), a query's rows and another table's
/// rows are not the output's: only the statements that write `public.item` count.
const LOAD_ITEM: &[(&str, i64)] = &[
    ("create temp table stg_item (like item)", 0),
    ("insert into stg_item select * from ext.item_feed", 7),
    (
        "delete from item using stg_item where item.i_item_sk = stg_item.i_item_sk",
        2,
    ),
    ("insert into item select * from stg_item", 3),
    ("select count(*) from item", 1),
    ("insert into audit.loads values ('item')", 1),
];

#[tokio::test]
async fn the_closer_emits_one_complete_with_the_rows_after_the_callback() {
    let (record, claim, mark, describe, success) = (
        update("SET eventState", with_event("FINISHED", true)),
        claim(),
        completed_by("completer"),
        describe_sql(LOAD_ITEM),
        success(),
    );
    let mut c = completer(&[&record, &claim, &mark], &[&success], &[&describe]);
    let sink = recorded(&mut c);

    let handled = handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap();

    assert_eq!(handled.completion, "Succeeded");
    assert_eq!(success.num_calls(), 1);
    let events = sink.events();
    let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [EventType::Start, EventType::Complete],
        "once, after the callback"
    );
    assert_eq!(events[0].run.run_id, events[1].run.run_id);
    let event = serde_json::to_value(&events[1]).unwrap();
    assert_eq!(event["eventType"], "COMPLETE");
    assert_eq!(event["run"]["runId"], step_run().run_id.as_str());
    assert_eq!(event["job"]["name"], "sales.LoadItem");
    assert_eq!(event["outputs"][0]["name"], "dev.public.item");
    assert_eq!(
        event["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"],
        5
    );
}

#[tokio::test]
async fn a_failed_statement_emits_fail_with_the_sql_error_and_not_the_statement() {
    let (record, claim, mark, describe, failure) = (
        update("SET eventState", with_event("FAILED", true)),
        claim(),
        completed_by("completer"),
        describe(StatusString::Failed, FAILED),
        failure(),
    );
    let mut c = completer(&[&record, &claim, &mark], &[&failure], &[&describe]);
    let sink = recorded(&mut c);

    handle(&c, fixture("completer-failed.json")).await.unwrap();

    let events = sink.events();
    let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::Start, EventType::Fail]);
    let text = events[1].to_json();
    assert!(
        text.contains(r#"ERROR: relation \"stg_item\" does not exist"#),
        "{text}"
    );
    assert!(
        !text.contains("statement d9b6c0c9"),
        "the statement text is not sent: {text}"
    );
    assert!(!text.contains(TOKEN), "never the token");
}

#[tokio::test]
async fn a_duplicate_event_after_completion_emits_nothing() {
    let mut done = with_event("FINISHED", true);
    done.extend(item(&[
        ("completedAt", "1700000000"),
        ("outcome", "SUCCEEDED"),
    ]));
    let (record, claim, success) = (update("SET eventState", done), claim(), success());
    let mut c = completer(&[&record, &claim], &[&success], &[]);
    let sink = recorded(&mut c);

    let handled = handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap();

    assert_eq!(handled.completion, "AlreadyCompleted");
    assert!(sink.events().is_empty());
}

#[tokio::test]
async fn the_loser_of_the_claim_race_emits_nothing() {
    let (record, taken, success) = (
        update("SET eventState", with_event("FINISHED", true)),
        update_condition_fails("SET claimedUntil"),
        success(),
    );
    let mut c = completer(&[&record, &taken], &[&success], &[]);
    let sink = recorded(&mut c);

    let handled = handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap();

    assert_eq!(handled.completion, "ClaimedElsewhere");
    assert!(sink.events().is_empty());
}

#[tokio::test]
async fn a_closed_task_whose_mark_was_lost_to_a_retry_emits_nothing_for_the_old_token() {
    // The callback went out, but a retry replaced the token before the mark: the retry's own
    // settle closes (and emits for) the run; this delivery must not.
    let (record, claim, describe, success) = (
        update("SET eventState", with_event("FINISHED", true)),
        claim(),
        describe(StatusString::Finished, SUBS),
        success(),
    );
    let lost_mark = update_condition_fails("SET completedAt");
    let reread = etl_callback::testing::read({
        let mut done = with_event("FINISHED", true);
        done.extend(item(&[
            ("completedAt", "1700000000"),
            ("outcome", "SUCCEEDED"),
        ]));
        done
    });
    let mut c = completer(
        &[&record, &claim, &lost_mark, &reread],
        &[&success],
        &[&describe],
    );
    let sink = recorded(&mut c);

    handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap();

    assert_eq!(success.num_calls(), 1);
    assert!(sink.events().is_empty(), "{:?}", sink.events());
}

#[tokio::test]
async fn an_item_without_a_run_emits_nothing_even_with_lineage_on() {
    let (record, claim, mark, describe, success) = (
        update("SET eventState", with_event("FINISHED", false)),
        claim(),
        completed_by("completer"),
        describe(StatusString::Finished, SUBS),
        success(),
    );
    let mut c = completer(&[&record, &claim, &mark], &[&success], &[&describe]);
    let sink = recorded(&mut c);

    let handled = handle(&c, fixture("completer-finished.json"))
        .await
        .unwrap();

    assert_eq!(handled.completion, "Succeeded");
    assert!(sink.events().is_empty());
}
