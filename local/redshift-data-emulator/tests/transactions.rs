//! Redshift's transaction rules in a batch, against real PostgreSQL with the real SDK client:
//! `TRUNCATE` commits the batch's transaction (r_TRUNCATE), and a statement Redshift refuses
//! inside a transaction block fails there with Redshift's error (r_VACUUM_command, …), while it
//! runs as a single statement and in an `AUTO_COMMIT` batch.

mod common;

use aws_sdk_redshiftdata::types::{ExecutionMode, StatusString};
use aws_sdk_redshiftdata::Client;
use common::*;

fn statuses(
    described: &aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput,
) -> Vec<String> {
    described
        .sub_statements()
        .iter()
        .map(|s| s.status().map_or("", |s| s.as_str()).to_string())
        .collect()
}

async fn column(sql: &str) -> Vec<String> {
    pg(sql)
        .await
        .into_iter()
        .map(|row| row[0].clone().unwrap_or_default())
        .collect()
}

/// `log` (empty) and `stage` (rows 1 and 2) in a fresh schema.
async fn tables() -> String {
    let s = schema().await;
    pg(&format!(
        "create table {s}.log (n int); create table {s}.stage (n int); \
         insert into {s}.stage values (1), (2)"
    ))
    .await;
    s
}

async fn run_batch(client: &Client, sqls: &[String]) -> String {
    let id = batch(client, sqls).await;
    let described = wait_done(client, &id).await;
    assert_eq!(described.status(), Some(&StatusString::Failed), "{id}");
    described.error().unwrap_or_default().to_string()
}

#[tokio::test]
async fn truncate_commits_what_ran_before_it_and_a_later_failure_cannot_roll_it_back() {
    let s = tables().await;
    let emu = emulator().await;
    let client = client(&emu);
    let sqls = [
        format!("insert into {s}.log values (1)"),
        format!("-- empty the staging table\ntruncate {s}.stage"),
        format!("insert into {s}.log values (2)"),
        format!("insert into {s}.no_such_table values (3)"),
    ];
    let id = batch(&client, &sqls).await;
    let described = wait_done(&client, &id).await;
    assert_eq!(described.status(), Some(&StatusString::Failed));
    assert!(
        described
            .error()
            .is_some_and(|e| e.contains("no_such_table")),
        "{:?}",
        described.error()
    );
    assert_eq!(
        statuses(&described),
        ["FINISHED", "FINISHED", "FINISHED", "FAILED"]
    );
    // As on Redshift: the first INSERT and the TRUNCATE are committed, the later INSERT is not.
    assert_eq!(column(&format!("select n from {s}.log")).await, ["1"]);
    assert!(column(&format!("select n from {s}.stage")).await.is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn delete_from_instead_of_truncate_keeps_the_batch_atomic() {
    let s = tables().await;
    let emu = emulator().await;
    let client = client(&emu);
    let sqls = [
        format!("insert into {s}.log values (1)"),
        format!("delete from {s}.stage"),
        format!("insert into {s}.log values (2)"),
        format!("insert into {s}.no_such_table values (3)"),
    ];
    let error = run_batch(&client, &sqls).await;
    assert!(error.contains("no_such_table"), "{error}");
    assert!(column(&format!("select n from {s}.log")).await.is_empty());
    assert_eq!(
        column(&format!("select n from {s}.stage order by n")).await,
        ["1", "2"]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_batch_that_truncates_and_succeeds_keeps_everything() {
    let s = tables().await;
    let emu = emulator().await;
    let client = client(&emu);
    let sqls = [
        format!("TRUNCATE TABLE {s}.stage"),
        format!("insert into {s}.stage values (7)"),
        format!("insert into {s}.log select n from {s}.stage"),
    ];
    let id = batch(&client, &sqls).await;
    let described = wait_done(&client, &id).await;
    assert_eq!(described.status(), Some(&StatusString::Finished));
    assert_eq!(column(&format!("select n from {s}.stage")).await, ["7"]);
    assert_eq!(column(&format!("select n from {s}.log")).await, ["7"]);
    emu.shutdown().await;
}

async fn vacuumed(table: &str) -> bool {
    let rows = column(&format!(
        "select coalesce(vacuum_count, 0)::text from pg_stat_user_tables where relid = '{table}'::regclass"
    ))
    .await;
    rows != ["0"]
}

#[tokio::test]
async fn vacuum_in_a_batch_fails_with_redshifts_error_and_changes_nothing() {
    let s = tables().await;
    let emu = emulator().await;
    let client = client(&emu);
    let sqls = [
        format!("insert into {s}.log values (1)"),
        format!("/* weekly */ VACUUM {s}.stage"),
        format!("insert into {s}.log values (2)"),
    ];
    let id = batch(&client, &sqls).await;
    let described = wait_done(&client, &id).await;
    assert_eq!(described.status(), Some(&StatusString::Failed));
    assert_eq!(
        described.error(),
        Some("ERROR: VACUUM cannot run inside a transaction block")
    );
    assert_eq!(statuses(&described), ["FINISHED", "FAILED", "ABORTED"]);
    assert!(column(&format!("select n from {s}.log")).await.is_empty());
    assert!(!vacuumed(&format!("{s}.stage")).await, "VACUUM was not run");
    emu.shutdown().await;
}

#[tokio::test]
async fn each_statement_refused_in_a_transaction_block_fails_in_a_batch() {
    let emu = emulator().await;
    let client = client(&emu);
    for (sql, error) in [
        (
            // Redshift's VACUUM options (PostgreSQL alone would answer a syntax error).
            "vacuum delete only t to 75 percent",
            "ERROR: VACUUM cannot run inside a transaction block",
        ),
        (
            "alter table t append from s",
            "ERROR: ALTER TABLE APPEND cannot run inside a transaction block",
        ),
        (
            "create database tickit",
            "ERROR: CREATE DATABASE cannot run inside a transaction block",
        ),
        (
            "create external table spectrum.t (n int) stored as parquet location 's3://b/t/'",
            "ERROR: CREATE EXTERNAL TABLE cannot run inside a transaction block",
        ),
    ] {
        assert_eq!(run_batch(&client, &[sql.to_string()]).await, error, "{sql}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn vacuum_runs_as_a_single_statement_and_in_an_auto_commit_batch() {
    let s = tables().await;
    let emu = emulator().await;
    let client = client(&emu);

    let single = execute(&client, &format!("-- maintenance\nvacuum {s}.stage")).await;
    let described = wait_done(&client, &single).await;
    assert_eq!(
        described.status(),
        Some(&StatusString::Finished),
        "{:?}",
        described.error()
    );
    assert!(vacuumed(&format!("{s}.stage")).await);

    let auto = client
        .batch_execute_statement()
        .cluster_identifier("c")
        .database("dev")
        .execution_mode(ExecutionMode::AutoCommit)
        .sqls(format!("insert into {s}.log values (1)"))
        .sqls(format!("VACUUM {s}.log"))
        .send()
        .await
        .expect("BatchExecuteStatement")
        .id()
        .expect("Id")
        .to_string();
    let described = wait_done(&client, &auto).await;
    assert_eq!(
        described.status(),
        Some(&StatusString::Finished),
        "{:?}",
        described.error()
    );
    assert!(vacuumed(&format!("{s}.log")).await);
    assert_eq!(column(&format!("select n from {s}.log")).await, ["1"]);
    emu.shutdown().await;
}
