//! Long polling (`WaitTimeSeconds`, since 2026-07-29) against real PostgreSQL with the real SDK:
//! the range check, the return when the statement ends (woken by the statement's change, not at
//! the end of the wait), the return with the in-progress status when the wait ends, the same
//! answer as a plain call, and `ActiveWaitingRequestsExceededException` past the configured
//! number of waiting calls on one statement.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_redshiftdata::error::ProvideErrorMetadata;
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::types::{Field, StatementStatusString, StatusString};
use common::*;

fn code<E: ProvideErrorMetadata>(error: &E) -> String {
    error.code().unwrap_or("<none>").to_string()
}

fn epoch(t: Option<&aws_sdk_redshiftdata::primitives::DateTime>) -> f64 {
    t.expect("timestamp").as_secs_f64()
}

/// Everything DescribeStatement reports but the running `Duration` of an unfinished statement.
fn comparable(d: &DescribeStatementOutput) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
        d.id(),
        d.status(),
        d.created_at(),
        d.updated_at(),
        d.query_string(),
        d.has_result_set(),
        d.result_rows(),
        d.redshift_query_id(),
        d.error(),
        d.sub_statements().len(),
    )
}

#[tokio::test]
async fn describe_returns_when_the_statement_ends_with_the_plain_answer() {
    let emu = emulator().await;
    let client = client(&emu);
    let id = execute(&client, "select pg_sleep(0.8), 1 as one").await;
    let asked = Instant::now();
    let waited = client
        .describe_statement()
        .id(&id)
        .wait_time_seconds(20)
        .send()
        .await
        .expect("DescribeStatement with WaitTimeSeconds");
    let took = asked.elapsed();
    let returned_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert_eq!(waited.status(), Some(&StatusString::Finished));
    assert!(
        took >= Duration::from_millis(700),
        "returned early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "waited too long: {took:?}");
    // Woken by the change itself: the answer leaves within moments of the statement's end.
    let lag = returned_at - epoch(waited.updated_at());
    assert!(lag < 0.25, "answered {lag:.3} s after the statement ended");
    let plain = client
        .describe_statement()
        .id(&id)
        .send()
        .await
        .expect("plain DescribeStatement");
    assert_eq!(comparable(&waited), comparable(&plain));
    assert_eq!(waited.duration(), plain.duration(), "fixed once finished");

    // Already ended: at once, same answer.
    let asked = Instant::now();
    let again = client
        .describe_statement()
        .id(&id)
        .wait_time_seconds(30)
        .send()
        .await
        .expect("DescribeStatement of an ended statement");
    assert!(asked.elapsed() < Duration::from_secs(1));
    assert_eq!(comparable(&again), comparable(&plain));

    // GetStatementResult waits too, then answers with the records.
    let id = execute(&client, "select pg_sleep(0.3), 7 as seven").await;
    let result = client
        .get_statement_result()
        .id(&id)
        .wait_time_seconds(10)
        .send()
        .await
        .expect("GetStatementResult with WaitTimeSeconds");
    assert_eq!(result.records()[0][1], Field::LongValue(7));
    emu.shutdown().await;
}

#[tokio::test]
async fn the_wait_ends_with_the_in_progress_status_and_submissions_can_wait() {
    let emu = emulator().await;
    let client = client(&emu);
    let id = execute(&client, "select pg_sleep(60)").await;
    wait_for(&client, &id, |d| d.status() == Some(&StatusString::Started)).await;
    let asked = Instant::now();
    let waited = client
        .describe_statement()
        .id(&id)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("DescribeStatement with WaitTimeSeconds");
    let took = asked.elapsed();
    assert_eq!(waited.status(), Some(&StatusString::Started));
    assert!(
        (Duration::from_millis(950)..Duration::from_secs(3)).contains(&took),
        "{took:?}"
    );
    // GetStatementResult waits the same way, then answers as a plain call would.
    let still = client
        .get_statement_result()
        .id(&id)
        .wait_time_seconds(1)
        .send()
        .await
        .expect_err("no result while running");
    assert_eq!(code(&still), "ResourceNotFoundException");
    client
        .cancel_statement()
        .id(&id)
        .send()
        .await
        .expect("cancel");

    // ExecuteStatement / BatchExecuteStatement with WaitTimeSeconds: the submission answers once
    // the statement ended, with its Status, RedshiftPid and HasResultSet.
    let asked = Instant::now();
    let out = client
        .execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .sql("select pg_sleep(0.3), 1")
        .wait_time_seconds(10)
        .send()
        .await
        .expect("ExecuteStatement with WaitTimeSeconds");
    assert!(asked.elapsed() >= Duration::from_millis(250));
    assert_eq!(out.status(), Some(&StatementStatusString::Finished));
    assert_eq!(out.has_result_set(), Some(true));
    assert!(out.redshift_pid().is_some_and(|p| p > 0));
    let batch = client
        .batch_execute_statement()
        .workgroup_name("wg")
        .database("dev")
        .sqls("select pg_sleep(5)")
        .wait_time_seconds(1)
        .send()
        .await
        .expect("BatchExecuteStatement with WaitTimeSeconds");
    assert_eq!(
        batch.status(),
        Some(&StatementStatusString::Started),
        "the wait ended first"
    );
    client
        .cancel_statement()
        .id(batch.id().expect("Id"))
        .send()
        .await
        .expect("cancel");
    // Without WaitTimeSeconds the answer is the plain one, at once.
    let plain = client
        .execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .sql("select pg_sleep(5)")
        .send()
        .await
        .expect("plain ExecuteStatement");
    assert_eq!(plain.status(), None);
    client
        .cancel_statement()
        .id(plain.id().expect("Id"))
        .send()
        .await
        .expect("cancel");
    emu.shutdown().await;
}

#[tokio::test]
async fn wait_time_outside_1_to_30_is_a_validation_error_that_changes_nothing() {
    let emu = emulator().await;
    let client = client(&emu);
    let id = execute(&client, "select 1").await;
    for bad in [0, 31, -1] {
        let err = client
            .describe_statement()
            .id(&id)
            .wait_time_seconds(bad)
            .send()
            .await
            .expect_err("out of range");
        assert_eq!(code(&err), "ValidationException", "{bad}");
        assert!(
            err.message().unwrap_or("").contains("waitTimeSeconds"),
            "{err:?}"
        );
        let err = client
            .get_statement_result()
            .id(&id)
            .wait_time_seconds(bad)
            .send()
            .await
            .expect_err("out of range");
        assert_eq!(code(&err), "ValidationException", "{bad}");
        let err = client
            .execute_statement()
            .cluster_identifier("c")
            .database("dev")
            .statement_name("must-not-run")
            .sql("select 1")
            .wait_time_seconds(bad)
            .send()
            .await
            .expect_err("out of range");
        assert_eq!(code(&err), "ValidationException", "{bad}");
    }
    let listed = client
        .list_statements()
        .statement_name("must-not-run")
        .send()
        .await
        .expect("ListStatements");
    assert!(listed.statements().is_empty(), "a refused call ran nothing");
    // Every call is counted, refused ones too (GET /_emulator/calls, read by bench/compare.py).
    let (status, body) = http("GET", &format!("{}/_emulator/calls", emu.endpoint()), "").await;
    assert_eq!(status, 200, "{body}");
    let calls: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(calls["DescribeStatement"], 3);
    assert_eq!(calls["GetStatementResult"], 3);
    assert_eq!(calls["ExecuteStatement"], 4);
    assert_eq!(calls["ListStatements"], 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn past_the_configured_waiting_calls_the_next_is_refused_until_one_ends() {
    let emu = emulator_with(|c| c.max_waiting_requests = Some(2)).await;
    let client = client(&emu);
    let id = execute(&client, "select pg_sleep(60)").await;
    wait_for(&client, &id, |d| d.status() == Some(&StatusString::Started)).await;
    let waiter = |client: aws_sdk_redshiftdata::Client, id: String| {
        tokio::spawn(async move {
            let asked = Instant::now();
            let out = client
                .describe_statement()
                .id(&id)
                .wait_time_seconds(25)
                .send()
                .await;
            (out, asked.elapsed())
        })
    };
    let first = waiter(client.clone(), id.clone());
    let second = waiter(client.clone(), id.clone());
    // Once both are waiting (the emulator's own count), a third is refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    while emu.state.store.lock().get(&id).map(|st| st.waiting) != Some(2) {
        assert!(Instant::now() < deadline, "the two calls never waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = client
        .describe_statement()
        .id(&id)
        .wait_time_seconds(1)
        .send()
        .await
        .expect_err("a third waiting call");
    assert_eq!(code(&refused), "ActiveWaitingRequestsExceededException");
    // Plain calls are not limited, and other statements have their own count.
    let plain = client
        .describe_statement()
        .id(&id)
        .send()
        .await
        .expect("plain");
    assert_eq!(plain.status(), Some(&StatusString::Started));
    let other = execute(&client, "select 2").await;
    client
        .describe_statement()
        .id(&other)
        .wait_time_seconds(5)
        .send()
        .await
        .expect("another statement's waiting call");
    // Cancelling ends the statement; both waiters wake at once with ABORTED.
    client
        .cancel_statement()
        .id(&id)
        .send()
        .await
        .expect("cancel");
    for waiting in [first, second] {
        let (out, took) = waiting.await.expect("task");
        let out = out.expect("waiting DescribeStatement");
        assert_eq!(out.status(), Some(&StatusString::Aborted));
        assert!(took < Duration::from_secs(10), "{took:?}");
    }
    // Their places are given back: a new waiting call is admitted (and answers at once).
    client
        .describe_statement()
        .id(&id)
        .wait_time_seconds(30)
        .send()
        .await
        .expect("admitted again");
    emu.shutdown().await;
}

/// A `BatchExecuteStatement` with `WaitTimeSeconds` on `wg`/`dev` under `token`.
async fn waited_batch(
    client: &aws_sdk_redshiftdata::Client,
    sqls: &[&str],
    token: &str,
    wait: i32,
) -> Result<
    aws_sdk_redshiftdata::operation::batch_execute_statement::BatchExecuteStatementOutput,
    aws_sdk_redshiftdata::error::SdkError<
        aws_sdk_redshiftdata::operation::batch_execute_statement::BatchExecuteStatementError,
    >,
> {
    client
        .batch_execute_statement()
        .workgroup_name("wg")
        .database("dev")
        .set_sqls(Some(sqls.iter().map(|s| (*s).to_owned()).collect()))
        .statement_name(format!("waited-{token}"))
        .client_token(token)
        .with_event(true)
        .wait_time_seconds(wait)
        .send()
        .await
}

#[tokio::test]
async fn a_waited_batch_answers_its_end_state_and_a_token_seen_before_its_one_statement() {
    // What the submitter's wait relies on: the batch's terminal Status when it ends within the
    // wait (FINISHED, or FAILED for a failing sub-statement), its running Status when the wait
    // ends first, and, under a ClientToken seen before (an SDK retry, the plain submit a failed
    // wait falls back to, a retried Task), the same statement with nothing run again.
    let emu = emulator().await;
    let client = client(&emu);
    let token = uuid::Uuid::new_v4().simple().to_string();
    let asked = Instant::now();
    let finished = waited_batch(&client, &["select 1", "select pg_sleep(0.3)"], &token, 10)
        .await
        .expect("waited batch");
    assert!(asked.elapsed() >= Duration::from_millis(250));
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "returned at the end, not the wait's"
    );
    assert_eq!(finished.status(), Some(&StatementStatusString::Finished));
    let id = finished.id().expect("Id").to_owned();

    // The same token again, waited or plain: the same statement, already ended, nothing new.
    let again = waited_batch(&client, &["select 1", "select pg_sleep(0.3)"], &token, 10)
        .await
        .expect("replayed waited batch");
    assert_eq!(again.id(), Some(id.as_str()));
    assert_eq!(again.status(), Some(&StatementStatusString::Finished));
    let plain = client
        .batch_execute_statement()
        .workgroup_name("wg")
        .database("dev")
        .sqls("select 1")
        .sqls("select pg_sleep(0.3)")
        .statement_name(format!("waited-{token}"))
        .client_token(&token)
        .with_event(true)
        .send()
        .await
        .expect("plain replay");
    assert_eq!(plain.id(), Some(id.as_str()));
    assert_eq!(plain.status(), None, "a plain submit answers no Status");
    let listed = client
        .list_statements()
        .statement_name(format!("waited-{token}"))
        .send()
        .await
        .expect("ListStatements");
    assert_eq!(listed.statements().len(), 1, "one statement for the token");

    let failing = uuid::Uuid::new_v4().simple().to_string();
    let failed = waited_batch(
        &client,
        &["select 1", "select cast('x' as integer)"],
        &failing,
        10,
    )
    .await
    .expect("waited failing batch");
    assert_eq!(failed.status(), Some(&StatementStatusString::Failed));

    let slow = uuid::Uuid::new_v4().simple().to_string();
    let asked = Instant::now();
    let running = waited_batch(&client, &["select pg_sleep(5)"], &slow, 1)
        .await
        .expect("waited slow batch");
    assert!(asked.elapsed() >= Duration::from_millis(900));
    assert!(matches!(
        running.status(),
        Some(
            StatementStatusString::Started
                | StatementStatusString::Picked
                | StatementStatusString::Submitted
        )
    ));
    client
        .cancel_statement()
        .id(running.id().expect("Id"))
        .send()
        .await
        .expect("cancel");

    // Outside 1..=30 the batch is refused naming waitTimeSeconds, and nothing runs.
    for bad in [0, 31] {
        let refused = uuid::Uuid::new_v4().simple().to_string();
        let err = waited_batch(&client, &["select 1"], &refused, bad)
            .await
            .expect_err("out of range");
        assert_eq!(code(&err), "ValidationException", "{bad}");
        assert!(
            err.message().unwrap_or("").contains("waitTimeSeconds"),
            "{err:?}"
        );
        let listed = client
            .list_statements()
            .statement_name(format!("waited-{refused}"))
            .send()
            .await
            .expect("ListStatements");
        assert!(listed.statements().is_empty(), "{bad}: nothing ran");
    }
    emu.shutdown().await;
}
