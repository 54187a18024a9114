//! Criterion benchmark of the completer's per-event work without the network, on the fixtures in
//! `events/`: parse the EventBridge payload, read the rendezvous item the `UpdateItem` returned,
//! decide, and build the `SendTaskSuccess` output or `SendTaskFailure` error and cause from the
//! `DescribeStatement` output. The SDK calls themselves (signing, HTTP) are not in it.
//!
//! `cargo bench -p etl-callback --bench completer` (`make bench` checks the medians with
//! `bench/check_criterion.py`).

use std::collections::HashMap;
use std::hint::black_box;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::types::{StatusString, SubStatementData};
use criterion::{criterion_group, criterion_main, Criterion};
use etl_callback::complete::{decide, task_callback, Decision, Report, TaskCallback};
use etl_callback::event::parse_event;
use etl_callback::store::Rendezvous;

const FINISHED: &str = include_str!("../../../events/completer-finished.json");
const FAILED: &str = include_str!("../../../events/completer-failed.json");

/// The item as `UpdateItem` (`ALL_NEW`) returns it once the token and the event are both there.
/// Real task tokens are about 700 characters.
fn item(statement_id: &str, state: &str) -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let n = |v: i64| AttributeValue::N(v.to_string());
    HashMap::from([
        ("statementId".to_owned(), s(statement_id)),
        (
            "taskToken".to_owned(),
            s(&"AQCEAAAAKgAAAAMAAAAA".repeat(36)),
        ),
        ("step".to_owned(), s("LoadItem")),
        ("runDate".to_owned(), s("2021-06-26")),
        ("executionName".to_owned(), s("daily-2021-06-26-3f7ef5c7")),
        ("attempt".to_owned(), n(0)),
        ("submittedAt".to_owned(), n(1_624_860_000)),
        ("pending".to_owned(), s("PENDING")),
        ("eventState".to_owned(), s(state)),
        ("eventAt".to_owned(), n(1_624_860_072)),
        ("eventRows".to_owned(), n(2)),
        ("expiresAt".to_owned(), n(1_625_464_872)),
    ])
}

/// A batch of three statements as `DescribeStatement` reports it; with `failed`, the second failed.
fn described(statement_id: &str, failed: bool) -> DescribeStatementOutput {
    let subs = (1..=3)
        .map(|i| {
            let status = match (failed, i) {
                (true, 2) => StatusString::Failed,
                (true, 3) => StatusString::Aborted,
                _ => StatusString::Finished,
            };
            SubStatementData::builder()
                .id(format!("{statement_id}:{i}"))
                .status(status.as_str().into())
                .result_rows(if failed { 0 } else { 1 })
                .query_string("insert into sales.item select * from stg.item where sold_on = '2021-06-26'::date")
                .set_error((failed && i == 2).then(|| "ERROR: relation \"stg.item\" does not exist".to_owned()))
                .build()
                .expect("sub-statement data has its id")
        })
        .collect();
    DescribeStatementOutput::builder()
        .id(statement_id)
        .status(if failed {
            StatusString::Failed
        } else {
            StatusString::Finished
        })
        .duration(1_500_000_000)
        .set_sub_statements(Some(subs))
        .build()
        .expect("describe output has its id")
}

/// One event's work, as `handle` and `TaskClients::close` do it.
fn per_event(
    payload: &str,
    item: &HashMap<String, AttributeValue>,
    described: &DescribeStatementOutput,
) -> TaskCallback {
    let payload: serde_json::Value = serde_json::from_str(payload).expect("fixture is JSON");
    let event = parse_event(payload).expect("fixture is a status change");
    let rendezvous =
        Rendezvous::from_item(&event.statement_id, item.clone()).expect("item is well formed");
    match decide(&rendezvous) {
        Decision::Close { task, event } => task_callback(
            &rendezvous.statement_id,
            task,
            event,
            Report::from_described(described, event),
        ),
        Decision::Done(completion) => panic!("expected to close the task, got {completion:?}"),
    }
}

fn completer_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("completer_event");
    for (name, fixture, state, failed) in [
        ("finished", FINISHED, "FINISHED", false),
        ("failed", FAILED, "FAILED", true),
    ] {
        let id = serde_json::from_str::<serde_json::Value>(fixture).unwrap()["detail"]
            ["statementId"]
            .as_str()
            .unwrap()
            .to_owned();
        let (item, described) = (item(&id, state), described(&id, failed));
        let callback = per_event(fixture, &item, &described);
        assert_eq!(matches!(callback, TaskCallback::Failure { .. }), failed);
        group.bench_function(name, |b| {
            b.iter(|| per_event(black_box(fixture), black_box(&item), black_box(&described)))
        });
    }
    group.finish();
}

criterion_group!(benches, completer_event);
criterion_main!(benches);
