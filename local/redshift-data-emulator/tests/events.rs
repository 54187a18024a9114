//! Status-change events (PutEvents to a stand-in EventBridge) and fault injection.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_redshiftdata::types::StatusString;
use common::*;
use redshift_data_emulator::faults::Faults;

const ACCOUNT_ARN_PREFIX: &str = "arn:aws:redshift:us-east-1:123456789012:cluster:";

async fn emulator_for(sink: &EventSink, faults: Faults) -> redshift_data_emulator::Emulator {
    let endpoint = sink.endpoint.clone();
    emulator_with(move |c| {
        c.eventbridge_endpoint = Some(endpoint);
        c.faults = faults.into();
    })
    .await
}

/// Sends one statement with WithEvent=true and returns its id.
async fn execute_with_event(
    client: &aws_sdk_redshiftdata::Client,
    name: &str,
    sql: &str,
) -> String {
    client
        .execute_statement()
        .cluster_identifier("redshift-cluster-1")
        .database("dev")
        .statement_name(name)
        .with_event(true)
        .sql(sql)
        .send()
        .await
        .expect("ExecuteStatement")
        .id()
        .expect("Id")
        .to_string()
}

#[tokio::test]
async fn finished_batch_publishes_the_service_event() {
    let s = schema().await;
    let sink = EventSink::start().await;
    let emu = emulator_for(&sink, Faults::default()).await;
    let client = client(&emu);
    let id = client
        .batch_execute_statement()
        .cluster_identifier("redshift-cluster-1")
        .database("dev")
        .statement_name("stack/exec-1/LoadItem")
        .with_event(true)
        .sqls(format!("create table {s}.t (a int)"))
        .sqls(format!("insert into {s}.t values (1), (2), (3)"))
        .send()
        .await
        .expect("BatchExecuteStatement")
        .id()
        .expect("Id")
        .to_string();
    let described = wait_done(&client, &id).await;
    let requests = sink.wait_for(1).await;
    assert_eq!(requests.len(), 1, "exactly one PutEvents call");
    let request = &requests[0];
    assert_eq!(request.target, "AWSEvents.PutEvents");
    assert_eq!(request.content_type, "application/x-amz-json-1.1");
    let entries = request.body["Entries"].as_array().expect("Entries");
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry["Source"], "aws.redshift-data");
    assert_eq!(entry["DetailType"], "Redshift Data Statement Status Change");
    assert_eq!(entry["EventBusName"], "default");
    assert_eq!(
        entry["Resources"],
        serde_json::json!([format!("{ACCOUNT_ARN_PREFIX}redshift-cluster-1")])
    );

    let detail = &sink.details()[0];
    let keys: Vec<&str> = detail
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "expireAt",
            "principal",
            "redshiftQueryId",
            "rows",
            "state",
            "statementId",
            "statementName"
        ]
    );
    assert_eq!(
        detail["statementId"],
        id.as_str(),
        "a batch's event names the batch id"
    );
    assert_eq!(detail["statementName"], "stack/exec-1/LoadItem");
    assert_eq!(detail["state"], "FINISHED");
    assert_eq!(detail["rows"], 3);
    assert_eq!(detail["redshiftQueryId"], -1);
    assert_eq!(
        detail["principal"],
        "arn:aws:iam::123456789012:user/redshift-data-emulator"
    );
    let created = described.created_at().expect("CreatedAt").secs();
    assert_eq!(detail["expireAt"], created + 24 * 3600);
    emu.shutdown().await;
}

#[tokio::test]
async fn failed_and_aborted_statements_publish_their_state() {
    let sink = EventSink::start().await;
    let emu = emulator_for(&sink, Faults::default()).await;
    let client = client(&emu);

    let failed = execute_with_event(&client, "events/failed", "select 1/0").await;
    wait_done(&client, &failed).await;
    let requests = sink.wait_for(1).await;
    assert_eq!(requests.len(), 1);
    let detail = &sink.details()[0];
    assert_eq!(detail["statementId"], failed.as_str());
    assert_eq!(detail["state"], "FAILED");

    let aborted = execute_with_event(&client, "events/aborted", "select pg_sleep(60)").await;
    wait_for(&client, &aborted, |d| {
        d.status() == Some(&StatusString::Started)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    client
        .cancel_statement()
        .id(&aborted)
        .send()
        .await
        .expect("CancelStatement");
    wait_done(&client, &aborted).await;
    sink.wait_for(2).await;
    let details = sink.details();
    assert_eq!(details.len(), 2);
    assert_eq!(details[1]["statementId"], aborted.as_str());
    assert_eq!(details[1]["state"], "ABORTED");
    emu.shutdown().await;
}

#[tokio::test]
async fn single_statement_event_carries_query_id_and_workgroup_arn() {
    let sink = EventSink::start().await;
    let emu = emulator_for(&sink, Faults::default()).await;
    let client = client(&emu);
    let id = client
        .execute_statement()
        .workgroup_name("my-wg")
        .database("dev")
        .with_event(true)
        .sql("select 1 union all select 2")
        .send()
        .await
        .expect("ExecuteStatement")
        .id()
        .expect("Id")
        .to_string();
    let described = wait_done(&client, &id).await;
    sink.wait_for(1).await;
    let request = &sink.requests()[0];
    assert_eq!(
        request.body["Entries"][0]["Resources"][0],
        "arn:aws:redshift-serverless:us-east-1:123456789012:workgroup/my-wg"
    );
    let detail = &sink.details()[0];
    assert_eq!(detail["redshiftQueryId"], described.redshift_query_id());
    assert_eq!(detail["rows"], 2);
    assert_eq!(detail["statementName"], "", "no StatementName given");
    emu.shutdown().await;
}

#[tokio::test]
async fn no_event_without_with_event() {
    let sink = EventSink::start().await;
    let emu = emulator_for(&sink, Faults::default()).await;
    let client = client(&emu);
    let id = client
        .execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .sql("select 1")
        .send()
        .await
        .expect("ExecuteStatement")
        .id()
        .expect("Id")
        .to_string();
    wait_done(&client, &id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.requests().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn publish_is_retried_after_eventbridge_errors() {
    let sink = EventSink::start_failing_first(2).await;
    let emu = emulator_for(&sink, Faults::default()).await;
    let client = client(&emu);
    let id = execute_with_event(&client, "events/retry", "select 1").await;
    wait_done(&client, &id).await;
    let requests = sink.wait_for(1).await;
    assert_eq!(requests.len(), 1, "delivered on the third attempt");
    assert_eq!(sink.details()[0]["statementId"], id.as_str());
    emu.shutdown().await;
}

#[tokio::test]
async fn unreachable_eventbridge_never_breaks_the_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let emu = emulator_with(move |c| c.eventbridge_endpoint = Some(dead)).await;
    let client = client(&emu);
    let id = execute_with_event(&client, "events/dead", "select 1").await;
    let described = wait_done(&client, &id).await;
    assert_eq!(described.status(), Some(&StatusString::Finished));
    // Still serving while the publisher retries and gives up.
    let again = execute_with_event(&client, "events/dead2", "select 2").await;
    assert_eq!(
        wait_done(&client, &again).await.status(),
        Some(&StatusString::Finished)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_delay_keeps_matching_statements_submitted() {
    let sink = EventSink::start().await;
    let faults = Faults {
        statement_name_contains: Some("/Slow".into()),
        delay_ms: 3000,
        ..Faults::default()
    };
    let emu = emulator_for(&sink, faults).await;
    let client = client(&emu);
    let started = Instant::now();
    let slow = execute_with_event(&client, "x/Slow", "select 1").await;
    let fast = execute_with_event(&client, "x/Fast", "select 1").await;

    let fast_done = wait_done(&client, &fast).await;
    assert_eq!(fast_done.status(), Some(&StatusString::Finished));
    let slow_now = client
        .describe_statement()
        .id(&slow)
        .send()
        .await
        .expect("describe");
    assert_eq!(slow_now.status(), Some(&StatusString::Submitted));

    let slow_done = wait_done(&client, &slow).await;
    assert_eq!(slow_done.status(), Some(&StatusString::Finished));
    assert!(started.elapsed() >= Duration::from_millis(3000));
    emu.shutdown().await;
}

#[tokio::test]
async fn cancel_during_delay_aborts_without_running() {
    let s = schema().await;
    let emu = emulator_with(|c| {
        c.faults = Faults {
            delay_ms: 60_000,
            ..Faults::default()
        }
        .into()
    })
    .await;
    let client = client(&emu);
    let id = client
        .execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .sql(format!("create table {s}.never (a int)"))
        .send()
        .await
        .expect("ExecuteStatement")
        .id()
        .expect("Id")
        .to_string();
    client
        .cancel_statement()
        .id(&id)
        .send()
        .await
        .expect("CancelStatement");
    let described = wait_done(&client, &id).await;
    assert_eq!(described.status(), Some(&StatusString::Aborted));
    let exists = pg(&format!("select to_regclass('{s}.never') is not null")).await;
    assert_eq!(exists[0][0].as_deref(), Some("f"));
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_drop_event_publishes_nothing() {
    let sink = EventSink::start().await;
    let faults = Faults {
        drop_event: true,
        ..Faults::default()
    };
    let emu = emulator_for(&sink, faults).await;
    let client = client(&emu);
    let id = execute_with_event(&client, "faults/drop", "select 1").await;
    assert_eq!(
        wait_done(&client, &id).await.status(),
        Some(&StatusString::Finished)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.requests().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_duplicate_event_publishes_twice() {
    let sink = EventSink::start().await;
    let faults = Faults {
        duplicate_event: true,
        ..Faults::default()
    };
    let emu = emulator_for(&sink, faults).await;
    let client = client(&emu);
    let id = execute_with_event(&client, "faults/dup", "select 1").await;
    wait_done(&client, &id).await;
    sink.wait_for(2).await;
    let details = sink.details();
    assert_eq!(details.len(), 2);
    assert_eq!(details[0], details[1]);
    assert_eq!(details[0]["statementId"], id.as_str());
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_event_before_response_delivers_event_first() {
    let sink = EventSink::start().await;
    let faults = Faults {
        event_before_response: true,
        ..Faults::default()
    };
    let emu = emulator_for(&sink, faults).await;
    let client = client(&emu);
    let id = execute_with_event(&client, "faults/early", "select pg_sleep(0.2)").await;
    // The call has returned: the event is already there and the statement already done.
    let requests = sink.requests();
    assert_eq!(
        requests.len(),
        1,
        "event published before the id was returned"
    );
    assert_eq!(sink.details()[0]["statementId"], id.as_str());
    let described = client
        .describe_statement()
        .id(&id)
        .send()
        .await
        .expect("describe");
    assert_eq!(described.status(), Some(&StatusString::Finished));
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_response_delay_holds_the_answer_back() {
    let sink = EventSink::start().await;
    let faults = Faults {
        response_delay_ms: 700,
        ..Faults::default()
    };
    let emu = emulator_for(&sink, faults).await;
    let client = client(&emu);
    let started = std::time::Instant::now();
    execute_with_event(&client, "faults/slow-answer", "select 1").await;
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(700),
        "the answer came after the configured delay"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_hold_response_answers_when_released_after_the_event() {
    let sink = EventSink::start().await;
    let faults = Faults {
        event_before_response: true,
        response_delay_ms: 30_000,
        hold_response: true,
        ..Faults::default()
    };
    let emu = emulator_for(&sink, faults).await;
    let client = client(&emu);
    let started = Instant::now();
    let submit = tokio::spawn({
        let client = client.clone();
        async move { execute_with_event(&client, "faults/held", "select 1").await }
    });
    let requests = sink.wait_for(1).await;
    assert_eq!(
        requests.len(),
        1,
        "the event is published while the answer is held"
    );
    let id = sink.details()[0]["statementId"]
        .as_str()
        .expect("statementId")
        .to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!submit.is_finished(), "the answer waits for the release");
    let release = format!("{}/_emulator/release", emu.endpoint());
    let (status, body) = http("POST", &release, &format!(r#"{{"statement_id": "{id}"}}"#)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(submit.await.expect("submit task"), id);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered at the release, not after the 30 s bound: {:?}",
        started.elapsed()
    );
    // nothing is held any more: a second release, an unknown id and a bad body are named errors
    let (status, body) = http("POST", &release, &format!(r#"{{"statement_id": "{id}"}}"#)).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("is held"), "{body}");
    let (status, body) = http("POST", &release, r#"{"id": 1}"#).await;
    assert_eq!(status, 400, "{body}");
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_hold_response_answers_at_its_bound_without_a_release() {
    let sink = EventSink::start().await;
    let faults = Faults {
        response_delay_ms: 700,
        hold_response: true,
        ..Faults::default()
    };
    let emu = emulator_for(&sink, faults).await;
    let client = client(&emu);
    let started = Instant::now();
    execute_with_event(&client, "faults/held-unreleased", "select 1").await;
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "the unreleased answer came after its bound"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_event_delay_holds_the_event_back() {
    let sink = EventSink::start().await;
    let faults = Faults {
        event_delay_ms: 800,
        ..Faults::default()
    };
    let emu = emulator_for(&sink, faults).await;
    let client = client(&emu);
    let id = execute_with_event(&client, "faults/late", "select 1").await;
    let done_at = {
        wait_done(&client, &id).await;
        Instant::now()
    };
    let requests = sink.wait_for(1).await;
    assert_eq!(requests.len(), 1);
    assert!(requests[0].at.duration_since(done_at) >= Duration::from_millis(600));
    emu.shutdown().await;
}

#[tokio::test]
async fn faults_flipped_at_runtime_apply_to_new_statements_only() {
    let sink = EventSink::start().await;
    let emu = emulator_for(&sink, Faults::default()).await;
    let client = client(&emu);
    let first = execute_with_event(&client, "runtime/1", "select 1").await;
    wait_done(&client, &first).await;
    sink.wait_for(1).await;

    let faults = Faults {
        statement_name_contains: Some("runtime/2".into()),
        duplicate_event: true,
        ..Faults::default()
    };
    let (status, _) = http(
        "POST",
        &format!("{}/_emulator/faults", emu.endpoint()),
        &faults_json(&faults),
    )
    .await;
    assert_eq!(status, 200);
    let second = execute_with_event(&client, "runtime/2", "select 1").await;
    wait_done(&client, &second).await;
    let third = execute_with_event(&client, "runtime/3", "select 1").await;
    wait_done(&client, &third).await;
    sink.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ids: Vec<String> = sink
        .details()
        .iter()
        .map(|d| d["statementId"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(ids.iter().filter(|i| **i == first).count(), 1);
    assert_eq!(ids.iter().filter(|i| **i == second).count(), 2);
    assert_eq!(ids.iter().filter(|i| **i == third).count(), 1);
    emu.shutdown().await;
}
