//! The emulator against real PostgreSQL, driven by the real aws-sdk-redshiftdata client.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_redshiftdata::error::ProvideErrorMetadata;
use aws_sdk_redshiftdata::types::{Field, StatusString};
use common::*;
use redshift_data_emulator::faults::Faults;

fn code<E: ProvideErrorMetadata>(error: &E) -> String {
    error.code().unwrap_or("<none>").to_string()
}

#[tokio::test]
async fn execute_statement_runs_and_returns_typed_records() {
    let emu = emulator().await;
    let client = client(&emu);
    let submitted = client
        .execute_statement()
        .cluster_identifier("cluster-1")
        .database("dev")
        .db_user("awsuser")
        .sql(
            "select 1::int4 as n, 'x'::varchar as s, 12.50::numeric(7,2) as amount, \
              true as flag, 1.5::float8 as f, null::int8 as missing, date '2024-03-01' as d \
              union all select 2, 'y', 0, false, 2.5, 7, date '2024-03-02' order by n",
        )
        .statement_name("tests/execute")
        .send()
        .await
        .expect("ExecuteStatement");
    let id = submitted.id().expect("Id").to_string();
    assert!(
        submitted.created_at().is_some(),
        "CreatedAt parsed as epoch seconds"
    );
    assert_eq!(submitted.cluster_identifier(), Some("cluster-1"));

    let described = wait_done(&client, &id).await;
    assert_eq!(described.status(), Some(&StatusString::Finished));
    assert_eq!(described.result_rows(), 2);
    assert_eq!(described.has_result_set(), Some(true));
    assert!(described.duration() > 0);
    assert!(described.updated_at().is_some());
    assert!(described
        .query_string()
        .is_some_and(|q| q.starts_with("select 1")));
    assert!(described.sub_statements().is_empty());
    assert!(described.redshift_query_id() > 0);
    assert_eq!(described.error(), None);

    let result = client
        .get_statement_result()
        .id(&id)
        .send()
        .await
        .expect("GetStatementResult");
    assert_eq!(result.total_num_rows(), 2);
    let names: Vec<&str> = result
        .column_metadata()
        .iter()
        .filter_map(|c| c.name())
        .collect();
    assert_eq!(names, ["n", "s", "amount", "flag", "f", "missing", "d"]);
    assert_eq!(result.column_metadata()[0].type_name(), Some("int4"));
    assert_eq!(result.column_metadata()[2].type_name(), Some("numeric"));
    let first = &result.records()[0];
    assert_eq!(first[0], Field::LongValue(1));
    assert_eq!(first[1], Field::StringValue("x".into()));
    assert_eq!(first[2], Field::StringValue("12.50".into()));
    assert_eq!(first[3], Field::BooleanValue(true));
    assert_eq!(first[4], Field::DoubleValue(1.5));
    assert_eq!(first[5], Field::IsNull(true));
    assert_eq!(first[6], Field::StringValue("2024-03-01".into()));
    assert_eq!(result.records()[1][5], Field::LongValue(7));
    emu.shutdown().await;
}

#[tokio::test]
async fn batch_runs_serially_and_reports_each_sub_statement() {
    let s = schema().await;
    let emu = emulator().await;
    let client = client(&emu);
    let id = client
        .batch_execute_statement()
        .workgroup_name("wg")
        .database("dev")
        .sqls(format!(
            "create table {s}.item (i_item_sk int4 not null encode az64 distkey, \
             i_category char(50) encode zstd) backup no diststyle key sortkey(i_category)"
        ))
        .sqls(format!(
            "insert into {s}.item values (1, 'a'), (2, 'b'), (3, 'c')"
        ))
        .sqls(format!(
            "update {s}.item set i_category = 'z' where i_item_sk > 1"
        ))
        .sqls(format!(
            "select count(*) as n from {s}.item where i_category = 'z'"
        ))
        .send()
        .await
        .expect("BatchExecuteStatement")
        .id()
        .expect("Id")
        .to_string();
    let described = wait_done(&client, &id).await;
    assert_eq!(
        described.status(),
        Some(&StatusString::Finished),
        "{:?}",
        described.error()
    );
    let subs = described.sub_statements();
    assert_eq!(subs.len(), 4);
    for (i, sub) in subs.iter().enumerate() {
        assert_eq!(sub.id(), format!("{id}:{}", i + 1));
        assert_eq!(sub.status().map(|s| s.as_str()), Some("FINISHED"));
        assert!(sub.redshift_query_id() > 0);
        assert!(sub.created_at().is_some() && sub.updated_at().is_some());
    }
    assert_eq!(subs[1].result_rows(), 3);
    assert_eq!(subs[2].result_rows(), 2);
    assert_eq!(subs[1].has_result_set(), Some(false));
    assert_eq!(subs[3].has_result_set(), Some(true));

    // A sub-statement id works for DescribeStatement and GetStatementResult.
    let sub = client
        .describe_statement()
        .id(format!("{id}:2"))
        .send()
        .await
        .expect("describe sub-statement");
    assert_eq!(sub.result_rows(), 3);
    let result = client
        .get_statement_result()
        .id(format!("{id}:4"))
        .send()
        .await
        .expect("result of sub-statement 4");
    assert_eq!(result.records()[0][0], Field::LongValue(2));

    // A batch's own id has no result; its sub-statements do.
    let err = client
        .get_statement_result()
        .id(&id)
        .send()
        .await
        .expect_err("batch id");
    assert_eq!(code(&err), "ValidationException");

    // A statement without a result set has none to fetch.
    let err = client
        .get_statement_result()
        .id(format!("{id}:2"))
        .send()
        .await
        .expect_err("no result set");
    assert_eq!(code(&err), "ResourceNotFoundException");
    emu.shutdown().await;
}

#[tokio::test]
async fn failing_batch_rolls_back_and_marks_sub_statements() {
    let s = schema().await;
    pg(&format!(
        "create table {s}.dim (k int primary key, v text); insert into {s}.dim values (1, 'old')"
    ))
    .await;
    let emu = emulator().await;
    let client = client(&emu);
    let id = client
        .batch_execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .sqls(format!("insert into {s}.dim values (2, 'new')"))
        .sqls(format!("update {s}.dim set v = 'changed' where k = 1"))
        .sqls(format!("insert into {s}.no_such_table values (1)"))
        .sqls(format!("delete from {s}.dim"))
        .send()
        .await
        .expect("BatchExecuteStatement")
        .id()
        .expect("Id")
        .to_string();
    let described = wait_done(&client, &id).await;
    assert_eq!(described.status(), Some(&StatusString::Failed));
    let error = described.error().expect("Error is set");
    assert!(
        error.contains("relation")
            && error.contains("no_such_table")
            && error.contains("does not exist"),
        "{error}"
    );
    let statuses: Vec<&str> = described
        .sub_statements()
        .iter()
        .map(|s| s.status().map_or("", |s| s.as_str()))
        .collect();
    assert_eq!(statuses, ["FINISHED", "FINISHED", "FAILED", "ABORTED"]);
    assert_eq!(described.sub_statements()[2].error(), Some(error));

    // Nothing of the batch is left: same rows, same values.
    let rows = pg(&format!("select k, v from {s}.dim order by k")).await;
    assert_eq!(
        rows,
        vec![vec![Some("1".to_string()), Some("old".to_string())]]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn single_statement_failure_is_failed_with_postgres_message() {
    let emu = emulator().await;
    let client = client(&emu);
    let id = execute(&client, "select 1/0").await;
    let described = wait_done(&client, &id).await;
    assert_eq!(described.status(), Some(&StatusString::Failed));
    assert!(described
        .error()
        .is_some_and(|e| e.contains("division by zero")));
    let err = client
        .get_statement_result()
        .id(&id)
        .send()
        .await
        .expect_err("failed statements have no result");
    assert_eq!(code(&err), "ResourceNotFoundException");
    emu.shutdown().await;
}

#[tokio::test]
async fn cancel_running_statement_ends_aborted() {
    let emu = emulator().await;
    let client = client(&emu);
    let id = execute(&client, "select pg_sleep(60)").await;
    // Cancel as soon as it is STARTED: the query may not have reached PostgreSQL yet.
    wait_for(&client, &id, |d| d.status() == Some(&StatusString::Started)).await;
    let started = Instant::now();
    let cancelled = client
        .cancel_statement()
        .id(&id)
        .send()
        .await
        .expect("CancelStatement");
    assert_eq!(cancelled.status(), Some(true));
    let described = wait_done(&client, &id).await;
    assert_eq!(described.status(), Some(&StatusString::Aborted));
    assert!(started.elapsed() < Duration::from_secs(10));

    let err = client
        .cancel_statement()
        .id(&id)
        .send()
        .await
        .expect_err("already aborted");
    assert_eq!(code(&err), "ValidationException");
    emu.shutdown().await;
}

#[tokio::test]
async fn cancelled_batch_rolls_back_earlier_statements() {
    let s = schema().await;
    let emu = emulator().await;
    let client = client(&emu);
    let id = client
        .batch_execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .sqls(format!("create table {s}.t (a int)"))
        .sqls("select pg_sleep(60)")
        .sqls(format!("insert into {s}.t values (1)"))
        .send()
        .await
        .expect("BatchExecuteStatement")
        .id()
        .expect("Id")
        .to_string();
    wait_for(&client, &id, |d| {
        d.sub_statements()
            .get(1)
            .is_some_and(|s| s.status().map(|s| s.as_str()) == Some("STARTED"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    client
        .cancel_statement()
        .id(&id)
        .send()
        .await
        .expect("CancelStatement");
    let described = wait_done(&client, &id).await;
    assert_eq!(described.status(), Some(&StatusString::Aborted));
    let statuses: Vec<&str> = described
        .sub_statements()
        .iter()
        .map(|s| s.status().map_or("", |s| s.as_str()))
        .collect();
    assert_eq!(statuses, ["FINISHED", "ABORTED", "ABORTED"]);
    let exists = pg(&format!("select to_regclass('{s}.t') is not null")).await;
    assert_eq!(
        exists[0][0].as_deref(),
        Some("f"),
        "the CREATE TABLE was rolled back"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn limits_and_bad_requests_match_the_service() {
    let emu = emulator().await;
    let client = client(&emu);

    let mut batch = client
        .batch_execute_statement()
        .cluster_identifier("c")
        .database("dev");
    for _ in 0..41 {
        batch = batch.sqls("select 1");
    }
    let err = batch.send().await.expect_err("41 statements");
    assert_eq!(code(&err), "ValidationException");

    let mut batch = client
        .batch_execute_statement()
        .cluster_identifier("c")
        .database("dev");
    for _ in 0..40 {
        batch = batch.sqls("select 1");
    }
    let id = batch
        .send()
        .await
        .expect("40 statements are fine")
        .id()
        .expect("Id")
        .to_string();
    assert_eq!(wait_done(&client, &id).await.sub_statements().len(), 40);

    let big = format!("select '{}'", "x".repeat(100 * 1024));
    let err = client
        .execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .sql(big)
        .send()
        .await
        .expect_err("more than 100 KB");
    assert_eq!(code(&err), "ValidationException");

    let err = client
        .execute_statement()
        .database("dev")
        .sql("select 1")
        .send()
        .await
        .expect_err("no cluster or workgroup");
    assert_eq!(code(&err), "ValidationException");

    let err = client
        .execute_statement()
        .cluster_identifier("c")
        .sql("select 1")
        .send()
        .await
        .expect_err("no database");
    assert_eq!(code(&err), "ValidationException");

    let err = client
        .execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .statement_name("n".repeat(501))
        .sql("select 1")
        .send()
        .await
        .expect_err("StatementName too long");
    assert_eq!(code(&err), "ValidationException");

    let err = client
        .describe_statement()
        .id("not-an-id")
        .send()
        .await
        .expect_err("malformed id");
    assert_eq!(code(&err), "ValidationException");

    let unknown = uuid::Uuid::new_v4().to_string();
    let err = client
        .describe_statement()
        .id(&unknown)
        .send()
        .await
        .expect_err("unknown id");
    assert_eq!(code(&err), "ResourceNotFoundException");
    let err = client
        .get_statement_result()
        .id(&unknown)
        .send()
        .await
        .expect_err("unknown id");
    assert_eq!(code(&err), "ResourceNotFoundException");
    let err = client
        .cancel_statement()
        .id(&unknown)
        .send()
        .await
        .expect_err("unknown id");
    assert_eq!(code(&err), "ResourceNotFoundException");
    let err = client
        .describe_statement()
        .id(format!("{id}:41"))
        .send()
        .await
        .expect_err("sub-statement beyond the batch");
    assert_eq!(code(&err), "ResourceNotFoundException");
    emu.shutdown().await;
}

#[tokio::test]
async fn list_statements_filters_by_name_prefix_and_status_and_pages() {
    let emu = emulator().await;
    let client = client(&emu);
    let prefix = format!("list-{}/", uuid::Uuid::new_v4().simple());
    let mut ids = Vec::new();
    for (i, sql) in ["select 1", "select 1/0", "select 2"].iter().enumerate() {
        let id = client
            .execute_statement()
            .cluster_identifier("c")
            .database("dev")
            .statement_name(format!("{prefix}{i}"))
            .sql(*sql)
            .send()
            .await
            .expect("ExecuteStatement")
            .id()
            .expect("Id")
            .to_string();
        wait_done(&client, &id).await;
        ids.push(id);
    }
    client
        .execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .statement_name("other/0")
        .sql("select 3")
        .send()
        .await
        .expect("ExecuteStatement");

    let listed = client
        .list_statements()
        .statement_name(&prefix)
        .send()
        .await
        .expect("ListStatements");
    let listed_ids: Vec<&str> = listed.statements().iter().map(|s| s.id()).collect();
    assert_eq!(
        listed_ids,
        [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()],
        "newest first"
    );
    assert!(listed.statements().iter().all(|s| s.created_at().is_some()));

    let failed = client
        .list_statements()
        .statement_name(&prefix)
        .status(StatusString::Failed)
        .send()
        .await
        .expect("ListStatements FAILED");
    assert_eq!(failed.statements().len(), 1);
    assert_eq!(failed.statements()[0].id(), ids[1]);

    let page1 = client
        .list_statements()
        .statement_name(&prefix)
        .max_results(2)
        .send()
        .await
        .expect("page 1");
    assert_eq!(page1.statements().len(), 2);
    let token = page1.next_token().expect("a next page").to_string();
    let page2 = client
        .list_statements()
        .statement_name(&prefix)
        .max_results(2)
        .next_token(token)
        .send()
        .await
        .expect("page 2");
    assert_eq!(page2.statements().len(), 1);
    assert!(page2.next_token().is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn redshift_ddl_and_date_functions_run_after_translation() {
    let s = schema().await;
    let emu = emulator().await;
    let client = client(&emu);
    let id = client
        .batch_execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .sqls(format!(
            "create table {s}.date_dim (d_date_sk integer not null encode az64, \
             d_date date encode az64, primary key (d_date_sk)) diststyle all \
             compound sortkey(d_date_sk)"
        ))
        .sqls(format!(
            "insert into {s}.date_dim values (1, sysdate::date), (2, getdate()::date)"
        ))
        .sqls(format!(
            "select count(*) from {s}.date_dim where d_date = (now() at time zone 'utc')::date \
             and 'sysdate encode zstd' = 'sysdate encode zstd'"
        ))
        .send()
        .await
        .expect("BatchExecuteStatement")
        .id()
        .expect("Id")
        .to_string();
    let described = wait_done(&client, &id).await;
    assert_eq!(
        described.status(),
        Some(&StatusString::Finished),
        "{:?}",
        described.error()
    );
    let result = client
        .get_statement_result()
        .id(format!("{id}:3"))
        .send()
        .await
        .expect("result");
    assert_eq!(result.records()[0][0], Field::LongValue(2));
    // The QueryString is what the client sent, not the translation.
    assert!(described.sub_statements()[0]
        .query_string()
        .is_some_and(|q| q.contains("diststyle all")));
    emu.shutdown().await;
}

#[tokio::test]
async fn health_endpoint_answers_200() {
    let emu = emulator().await;
    let (status, _) = http("GET", &format!("{}/_emulator/health", emu.endpoint()), "").await;
    assert_eq!(status, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn unknown_operation_is_rejected() {
    let emu = emulator().await;
    let client = client(&emu);
    // An operation the emulator does not implement, through the real client.
    let err = client
        .list_databases()
        .cluster_identifier("c")
        .database("dev")
        .send()
        .await
        .expect_err("not implemented");
    assert_eq!(code(&err), "UnknownOperationException");
    emu.shutdown().await;
}

#[tokio::test]
async fn start_fails_when_postgres_is_unreachable() {
    // A closed port on loopback: connection refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let config =
        redshift_data_emulator::Config::new(format!("postgres://postgres@127.0.0.1:{port}/dev"));
    let result = redshift_data_emulator::start(config).await;
    assert!(matches!(
        result,
        Err(redshift_data_emulator::StartError::Database(_))
    ));
}

#[tokio::test]
async fn faults_admin_endpoint_reads_replaces_and_resets() {
    let emu = emulator().await;
    let url = format!("{}/_emulator/faults", emu.endpoint());
    let (status, body) = http("GET", &url, "").await;
    assert_eq!(status, 200);
    let current: Faults = serde_json::from_str(&body).expect("faults");
    assert!(current.is_off());

    let wanted = Faults {
        statement_name_contains: Some("LoadItem".into()),
        delay_ms: 100,
        duplicate_event: true,
        ..Faults::default()
    };
    let (status, _) = http("POST", &url, &faults_json(&wanted)).await;
    assert_eq!(status, 200);
    assert_eq!(emu.state.faults(), wanted.clone().into());

    let (status, body) = http("POST", &url, r#"{"delay": 5}"#).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        emu.state.faults(),
        wanted.into(),
        "a bad request changes nothing"
    );

    let (status, _) = http("DELETE", &url, "").await;
    assert_eq!(status, 200);
    assert!(emu.state.faults().is_off());
    emu.shutdown().await;
}

#[tokio::test]
async fn binary_prints_ready_line_and_serves_health() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_redshift-data-emulator"))
        .args(["--listen", "127.0.0.1:0", "--database-url", &database_url()])
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_EVENTBRIDGE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the emulator binary");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("join")
    .expect("read ready line");
    let endpoint = line
        .trim()
        .strip_prefix("redshift-data-emulator listening on ")
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
        .to_string();
    let (status, _) = http("GET", &format!("{endpoint}/_emulator/health"), "").await;
    assert_eq!(status, 200);
    child.kill().expect("kill");
    child.wait().expect("wait");
}

#[tokio::test]
async fn named_parameters_are_bound() {
    use aws_sdk_redshiftdata::types::SqlParameter;
    let emu = emulator().await;
    let client = client(&emu);
    let param = |name: &str, value: &str| {
        SqlParameter::builder()
            .name(name)
            .value(value)
            .build()
            .expect("parameter")
    };
    let id = client
        .execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .sql("select :day::date + 1 as next_day, :who as who")
        .parameters(param("day", "2024-02-28"))
        .parameters(param("who", "O'Brien"))
        .send()
        .await
        .expect("ExecuteStatement")
        .id()
        .expect("Id")
        .to_string();
    let described = wait_done(&client, &id).await;
    assert_eq!(
        described.status(),
        Some(&StatusString::Finished),
        "{:?}",
        described.error()
    );
    assert_eq!(described.query_parameters().len(), 2);
    let result = client
        .get_statement_result()
        .id(&id)
        .send()
        .await
        .expect("result");
    assert_eq!(
        result.records()[0][0],
        Field::StringValue("2024-02-29".into())
    );
    assert_eq!(result.records()[0][1], Field::StringValue("O'Brien".into()));

    let err = client
        .execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .sql("select :missing")
        .parameters(param("other", "1"))
        .send()
        .await
        .expect_err("unbound parameter");
    assert_eq!(code(&err), "ValidationException");
    emu.shutdown().await;
}

/// A Data API batch is one session (Redshift): a temporary table lives only inside the batch that
/// created it, so two batches at once each see their own, and the next batch sees none. The
/// scripts' `stg_*` staging tables rely on it.
#[tokio::test]
async fn a_temporary_table_lives_only_in_its_batch_session() {
    let emu = emulator().await;
    let client = client(&emu);
    let session = |value: i32| {
        let client = client.clone();
        async move {
            let id = batch(
                &client,
                &[
                    "create temp table stg_scope (v int4 encode az64) diststyle even".into(),
                    format!("insert into stg_scope values ({value}), ({value})"),
                    "select pg_sleep(0.3)".into(),
                    "select sum(v) as total, count(*) as n from stg_scope".into(),
                ],
            )
            .await;
            let described = wait_done(&client, &id).await;
            assert_eq!(
                described.status(),
                Some(&StatusString::Finished),
                "{:?}",
                described.error()
            );
            let result = client
                .get_statement_result()
                .id(format!("{id}:4"))
                .send()
                .await
                .expect("result");
            (
                result.records()[0][0].clone(),
                result.records()[0][1].clone(),
            )
        }
    };
    // at the same time: each batch its own table of the same name
    let (a, b) = tokio::join!(session(1), session(10));
    assert_eq!(a, (Field::LongValue(2), Field::LongValue(2)));
    assert_eq!(b, (Field::LongValue(20), Field::LongValue(2)));
    // and afterwards: gone with its session
    let id = execute(&client, "select count(*) from stg_scope").await;
    let described = wait_done(&client, &id).await;
    assert_eq!(described.status(), Some(&StatusString::Failed));
    assert!(
        described.error().unwrap_or_default().contains("stg_scope"),
        "{:?}",
        described.error()
    );
    emu.shutdown().await;
}
