//! Submission semantics against real PostgreSQL with the real SDK client: `ClientToken`
//! idempotency, the active-statement quota, faults on the submit answer, and ListStatements
//! paging and timestamps.

mod common;

use std::time::Duration;

use aws_sdk_redshiftdata::config::retry::RetryConfig;
use aws_sdk_redshiftdata::error::ProvideErrorMetadata;
use aws_sdk_redshiftdata::types::StatusString;
use aws_sdk_redshiftdata::Client;
use common::*;
use redshift_data_emulator::faults::Faults;

fn code<E: ProvideErrorMetadata>(error: &E) -> String {
    error.code().unwrap_or("<none>").to_string()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

async fn count_rows(table: &str) -> i64 {
    pg(&format!("select count(*) from {table}")).await[0][0]
        .as_deref()
        .expect("count")
        .parse()
        .expect("number")
}

/// Ids of the statements whose name starts with `prefix`, over all ListStatements pages.
async fn listed_ids(client: &Client, prefix: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_statements()
            .statement_name(prefix)
            .status(StatusString::All)
            .set_next_token(token.take())
            .send()
            .await
            .expect("ListStatements");
        ids.extend(page.statements().iter().map(|s| s.id().to_string()));
        match page.next_token() {
            Some(next) => token = Some(next.to_string()),
            None => return ids,
        }
    }
}

/// One BatchExecuteStatement call that inserts a row into `table` (after a short sleep, so a
/// repeated call arrives while it runs).
async fn batch_insert(
    client: &Client,
    name: &str,
    token: Option<&str>,
    table: &str,
) -> Result<
    String,
    aws_sdk_redshiftdata::error::SdkError<
        aws_sdk_redshiftdata::operation::batch_execute_statement::BatchExecuteStatementError,
    >,
> {
    client
        .batch_execute_statement()
        .cluster_identifier("redshift-cluster-1")
        .database("dev")
        .statement_name(name)
        .with_event(true)
        .set_client_token(token.map(str::to_string))
        .sqls("select pg_sleep(0.3)")
        .sqls(format!("insert into {table} values (1)"))
        .send()
        .await
        .map(|out| out.id().expect("Id").to_string())
}

#[tokio::test]
async fn same_client_token_returns_the_same_statement_and_runs_it_once() {
    let s = schema().await;
    let table = format!("{s}.runs");
    pg(&format!("create table {table} (n int)")).await;
    let sink = EventSink::start().await;
    let endpoint = sink.endpoint.clone();
    let emu = emulator_with(move |c| c.eventbridge_endpoint = Some(endpoint)).await;
    let client = client(&emu);
    let name = unique("idem/LoadItem");
    let token = unique("tok");

    let first = batch_insert(&client, &name, Some(&token), &table)
        .await
        .expect("first call");
    // Again while the first run is still going, then again once it has finished.
    let while_running = batch_insert(&client, &name, Some(&token), &table)
        .await
        .expect("second call");
    assert_eq!(while_running, first);
    let described = wait_done(&client, &first).await;
    assert_eq!(described.status(), Some(&StatusString::Finished));
    let after_finish = batch_insert(&client, &name, Some(&token), &table)
        .await
        .expect("third call");
    assert_eq!(after_finish, first);

    // The same token with a different request still answers with the first statement.
    let different = client
        .execute_statement()
        .cluster_identifier("redshift-cluster-1")
        .database("dev")
        .statement_name(format!("{name}/other"))
        .client_token(&token)
        .sql(format!("insert into {table} values (2)"))
        .send()
        .await
        .expect("reused token")
        .id()
        .expect("Id")
        .to_string();
    assert_eq!(different, first);

    assert_eq!(listed_ids(&client, &name).await, [first.as_str()]);
    assert_eq!(count_rows(&table).await, 1, "the SQL ran once");
    sink.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events: Vec<_> = sink
        .details()
        .into_iter()
        .filter(|d| d["statementId"] == first.as_str())
        .collect();
    assert_eq!(events.len(), 1, "one status-change event");
    assert_eq!(sink.details().len(), 1, "and no other");
    emu.shutdown().await;
}

#[tokio::test]
async fn different_client_tokens_start_different_statements() {
    let s = schema().await;
    let table = format!("{s}.runs");
    pg(&format!("create table {table} (n int)")).await;
    let emu = emulator().await;
    let client = client(&emu);
    let name = unique("idem/two");
    let a = batch_insert(&client, &name, Some(&unique("a")), &table)
        .await
        .expect("a");
    let b = batch_insert(&client, &name, Some(&unique("b")), &table)
        .await
        .expect("b");
    assert_ne!(a, b);
    // Without a ClientToken the SDK makes a fresh one per call.
    let c = batch_insert(&client, &name, None, &table).await.expect("c");
    for id in [&a, &b, &c] {
        wait_done(&client, id).await;
    }
    let mut listed = listed_ids(&client, &name).await;
    listed.sort();
    let mut expected = vec![a, b, c];
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(count_rows(&table).await, 3);
    emu.shutdown().await;
}

#[tokio::test]
async fn execute_statement_honours_client_token_too() {
    let emu = emulator().await;
    let client = client(&emu);
    let token = unique("exec");
    let run = || {
        client
            .execute_statement()
            .cluster_identifier("c")
            .database("dev")
            .client_token(&token)
            .sql("select 1")
            .send()
    };
    let first = run().await.expect("first").id().expect("Id").to_string();
    wait_done(&client, &first).await;
    let again = run().await.expect("again").id().expect("Id").to_string();
    assert_eq!(again, first);
    emu.shutdown().await;
}

#[tokio::test]
async fn client_token_length_is_validated() {
    let emu = emulator().await;
    let client = client(&emu);
    for (token, ok) in [
        ("x".repeat(64), true),
        ("x".repeat(65), false),
        (String::new(), false),
    ] {
        let result = client
            .batch_execute_statement()
            .cluster_identifier("c")
            .database("dev")
            .client_token(&token)
            .sqls("select 1")
            .send()
            .await;
        match (result, ok) {
            (Ok(out), true) => {
                wait_done(&client, out.id().expect("Id")).await;
            }
            (Err(err), false) => assert_eq!(code(&err), "ValidationException", "{token:?}"),
            (result, _) => panic!("token of {} chars: {result:?}", token.len()),
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn active_statement_quota_answers_active_statements_exceeded() {
    let emu = emulator_with(|c| c.max_active_statements = Some(1)).await;
    let client = client(&emu);
    let token = unique("busy");
    let busy = client
        .execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .client_token(&token)
        .sql("select pg_sleep(60)")
        .send()
        .await
        .expect("first statement")
        .id()
        .expect("Id")
        .to_string();
    let err = client
        .batch_execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .sqls("select 1")
        .send()
        .await
        .expect_err("over the quota");
    assert_eq!(code(&err), "ActiveStatementsExceededException");
    // A retry of the running statement starts nothing, so the quota does not apply.
    let replay = client
        .execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .client_token(&token)
        .sql("select pg_sleep(60)")
        .send()
        .await
        .expect("replay within the quota");
    assert_eq!(replay.id(), Some(busy.as_str()));

    client
        .cancel_statement()
        .id(&busy)
        .send()
        .await
        .expect("cancel");
    assert_eq!(
        wait_done(&client, &busy).await.status(),
        Some(&StatusString::Aborted)
    );
    let id = execute(&client, "select 1").await;
    assert_eq!(
        wait_done(&client, &id).await.status(),
        Some(&StatusString::Finished)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_reject_response_after_submit_fails_the_call_and_the_retry_reattaches() {
    let s = schema().await;
    let table = format!("{s}.runs");
    pg(&format!("create table {table} (n int)")).await;
    let faults = Faults {
        statement_name_contains: Some("/LoadItem".into()),
        reject_response_after_submit: true,
        response_fault_times: 1,
        ..Faults::default()
    };
    let emu = emulator_with(move |c| c.faults = faults.into()).await;
    let client = client(&emu);
    let name = unique("exec/LoadItem");
    let token = unique("tok");

    let err = batch_insert(&client, &name, Some(&token), &table)
        .await
        .expect_err("the answer is the injected error");
    assert_eq!(code(&err), "ValidationException");
    assert!(
        err.message().is_some_and(|m| m.contains("injected fault")),
        "{err:?}"
    );
    // The statement exists and runs although the caller got an error.
    let listed = listed_ids(&client, &name).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        wait_done(&client, &listed[0]).await.status(),
        Some(&StatusString::Finished)
    );
    // The caller's retry (same token) gets that statement; nothing runs again.
    let retried = batch_insert(&client, &name, Some(&token), &table)
        .await
        .expect("retry with the same token");
    assert_eq!(retried, listed[0]);
    assert_eq!(listed_ids(&client, &name).await, listed);
    assert_eq!(count_rows(&table).await, 1);

    // response_fault_times = 1: the fault is spent, a new statement is answered normally.
    let next = batch_insert(&client, &name, Some(&unique("tok")), &table)
        .await
        .expect("the fault is spent");
    wait_done(&client, &next).await;
    assert_eq!(count_rows(&table).await, 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_fail_response_after_submit_is_http_500_and_the_sdk_retry_gets_the_statement() {
    let s = schema().await;
    let table = format!("{s}.runs");
    pg(&format!("create table {table} (n int)")).await;
    let faults = Faults {
        fail_response_after_submit: true,
        ..Faults::default()
    };
    let emu = emulator_with(move |c| c.faults = faults.into()).await;

    // Without retries the caller sees the 500 although its statement runs.
    let no_retry = Client::from_conf(
        client(&emu)
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let name = unique("exec/500");
    let err = batch_insert(&no_retry, &name, None, &table)
        .await
        .expect_err("HTTP 500");
    assert_eq!(code(&err), "InternalServerException");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    let listed = listed_ids(&no_retry, &name).await;
    assert_eq!(listed.len(), 1);
    wait_done(&no_retry, &listed[0]).await;

    // The SDK's standard retry resends the same (auto-filled) ClientToken, so the retry is
    // answered with the statement the failed attempt started.
    let client = client(&emu);
    let name = unique("exec/500-retried");
    let id = batch_insert(&client, &name, None, &table)
        .await
        .expect("the SDK retry succeeds");
    wait_done(&client, &id).await;
    assert_eq!(listed_ids(&client, &name).await, [id]);
    assert_eq!(count_rows(&table).await, 2, "one row per statement");
    emu.shutdown().await;
}

#[tokio::test]
async fn contradictory_fault_set_is_refused_by_the_admin_endpoint() {
    let emu = emulator().await;
    let (status, body) = http(
        "POST",
        &format!("{}/_emulator/faults", emu.endpoint()),
        r#"{"fail_response_after_submit": true, "reject_response_after_submit": true}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(
        "POST",
        &format!("{}/_emulator/faults", emu.endpoint()),
        r#"{"reject_response_after_submit": true, "response_fault_times": 2}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    emu.shutdown().await;
}

#[tokio::test]
async fn list_statements_pages_through_everything_with_subsecond_timestamps() {
    let emu = emulator().await;
    let client = client(&emu);
    let prefix = unique("page");
    let mut ids = Vec::new();
    for i in 0..7 {
        let id = client
            .execute_statement()
            .cluster_identifier("c")
            .database("dev")
            .statement_name(format!("{prefix}/{i}"))
            .sql("select pg_sleep(0.05)")
            .send()
            .await
            .expect("ExecuteStatement")
            .id()
            .expect("Id")
            .to_string();
        ids.push(id);
    }
    for id in &ids {
        wait_done(&client, id).await;
    }

    // Page by 3, submitting a newer matching statement between pages: pages neither repeat
    // nor skip anything.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = client
            .list_statements()
            .statement_name(&prefix)
            .status(StatusString::All)
            .max_results(3)
            .set_next_token(token.take())
            .send()
            .await
            .expect("ListStatements");
        pages += 1;
        assert!(page.statements().len() <= 3);
        seen.extend(page.statements().iter().map(|s| s.id().to_string()));
        execute_named(&client, &format!("{prefix}/late{pages}")).await;
        match page.next_token() {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected, "all seven, newest first, once each");
    assert_eq!(pages, 3);

    // Timestamps carry milliseconds (the service's precision) in List and Describe alike.
    let listed = client
        .list_statements()
        .statement_name(format!("{prefix}/"))
        .max_results(100)
        .send()
        .await
        .expect("ListStatements");
    assert!(listed.statements().len() >= 7);
    let mut fractional = 0;
    for entry in listed.statements() {
        let described = client
            .describe_statement()
            .id(entry.id())
            .send()
            .await
            .expect("describe");
        assert_eq!(entry.created_at(), described.created_at());
        let created = entry.created_at().expect("CreatedAt");
        let updated = entry.updated_at().expect("UpdatedAt");
        assert!(updated >= created);
        fractional += [created, updated]
            .iter()
            .filter(|t| t.subsec_nanos() != 0)
            .count();
    }
    assert!(fractional > 0, "CreatedAt/UpdatedAt have sub-second parts");
    let finished = client
        .describe_statement()
        .id(&ids[0])
        .send()
        .await
        .expect("describe");
    let ran = finished.updated_at().expect("UpdatedAt").as_secs_f64()
        - finished.created_at().expect("CreatedAt").as_secs_f64();
    assert!(
        (0.04..30.0).contains(&ran),
        "UpdatedAt - CreatedAt covers the 50 ms run ({ran} s)"
    );

    let err = client
        .list_statements()
        .next_token("offset-3")
        .send()
        .await
        .expect_err("foreign token");
    assert_eq!(code(&err), "ValidationException");
    emu.shutdown().await;
}

async fn execute_named(client: &Client, name: &str) -> String {
    client
        .execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .statement_name(name)
        .sql("select 1")
        .send()
        .await
        .expect("ExecuteStatement")
        .id()
        .expect("Id")
        .to_string()
}
