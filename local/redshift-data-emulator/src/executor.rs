//! Runs statements on PostgreSQL, one connection per statement, and records the outcome.
//!
//! A batch runs its SQL serially inside ONE transaction (`BEGIN` … `COMMIT`, `ROLLBACK` on
//! the first error), like the Data API's default `TRANSACTION` execution mode; `AUTO_COMMIT`
//! runs each statement on its own. CancelStatement sets a flag and sends PostgreSQL a cancel
//! request; the run then ends as ABORTED.
//!
//! Redshift's transaction rules ([`redshift_sql::transaction`]) hold in a batch's transaction:
//! a `TRUNCATE` commits it (what ran before and the `TRUNCATE` itself stay, whatever fails
//! later) and the batch goes on in a new one; a statement Redshift refuses inside a transaction
//! block (`VACUUM`, …) fails with Redshift's error without running, and the transaction is
//! rolled back. A single statement and an `AUTO_COMMIT` batch are not in a transaction block:
//! there such statements run as they are.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use redshift_sql::transaction::{self, Rule};

use crate::copy_options::{self, Statement};
use crate::events::StatusChangeDetail;
use crate::faults::Faults;
use crate::store::{Column, Field, ResultSet, Status, Target};
use crate::translate;
use crate::AppState;
use crate::{load, unload};

/// Why one SQL statement did not finish.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("{0}")]
    Sql(String),
    #[error("cancelled")]
    Cancelled,
}

fn sql_error(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("ERROR: {}", db.message()),
        None => format!("ERROR: {error}"),
    }
}

/// Runs the statement `id` to a terminal state, then publishes its event if asked.
pub async fn run(state: Arc<AppState>, id: String, faults: Faults) {
    let (notify, statement_name) = {
        let store = state.store.lock();
        let Some(st) = store.get(&id) else { return };
        (st.cancel_notify.clone(), st.name.clone())
    };

    if faults.delay_ms > 0 {
        tracing::info!(statement_id = %id, delay_ms = faults.delay_ms, "fault: delaying statement");
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(faults.delay_ms)) => {}
            () = notify.notified() => {}
        }
    }

    let outcome = execute(&state, &id, faults.fail_statement.as_deref()).await;
    let query_id_base = {
        let mut store = state.store.lock();
        let Some(st) = store.get_mut(&id) else { return };
        match outcome {
            Outcome::Finished => st.finish(Status::Finished, None),
            Outcome::Failed(error) => st.finish(Status::Failed, Some(error)),
            Outcome::Aborted(error) => {
                for sub in st.subs.iter_mut().filter(|s| !s.status.is_terminal()) {
                    sub.finish(Status::Aborted, None);
                }
                st.finish(Status::Aborted, Some(error));
            }
        }
        tracing::info!(
            statement_id = %id,
            statement_name = statement_name.as_deref().unwrap_or(""),
            status = st.status.as_str(),
            error = st.error.as_deref().unwrap_or(""),
            "statement ended"
        );
        st.with_event.then(|| event_for(&state, st))
    };

    if let Some((detail, resources)) = query_id_base {
        publish_with_faults(&state, &detail, &resources, &faults).await;
    }
}

fn event_for(state: &AppState, st: &crate::store::Statement) -> (StatusChangeDetail, Vec<String>) {
    let config = &state.config;
    let resource = match &st.target {
        Target::Cluster(c) => format!(
            "arn:aws:redshift:{}:{}:cluster:{c}",
            config.region, config.account
        ),
        Target::Workgroup(w) => format!(
            "arn:aws:redshift-serverless:{}:{}:workgroup/{w}",
            config.region, config.account
        ),
    };
    let detail = StatusChangeDetail {
        principal: config.principal.clone(),
        statement_name: st.name.clone().unwrap_or_default(),
        statement_id: st.id.clone(),
        redshift_query_id: st.redshift_query_id(),
        state: st.status.as_str().to_string(),
        rows: st.result_rows().max(0),
        // Results are kept 24 hours.
        expire_at: st.created_at as i64 + 24 * 3600,
    };
    (detail, vec![resource])
}

async fn publish_with_faults(
    state: &AppState,
    detail: &StatusChangeDetail,
    resources: &[String],
    faults: &Faults,
) {
    if faults.drop_event {
        tracing::info!(statement_id = %detail.statement_id, "fault: dropping status-change event");
        return;
    }
    if faults.event_delay_ms > 0 {
        tracing::info!(
            statement_id = %detail.statement_id,
            event_delay_ms = faults.event_delay_ms,
            "fault: delaying status-change event"
        );
        tokio::time::sleep(Duration::from_millis(faults.event_delay_ms)).await;
    }
    state.events.publish(detail, resources).await;
    let extra = faults.extra_event_copies();
    for copy in 1..=extra {
        tracing::info!(statement_id = %detail.statement_id, copy, extra, "fault: publishing an extra copy of the event");
        state.events.publish(detail, resources).await;
    }
}

/// SQL that makes PostgreSQL raise `message` as an error (`ERROR: <message>`): a `DO` block
/// whose body is dollar-quoted with a tag the message does not contain, the message a standard
/// string literal (quotes doubled) passed as the argument of a `%` format, so quotes, `$$`,
/// backslashes and `%` in it all arrive verbatim.
fn raise_sql(message: &str) -> String {
    let mut tag = String::from("rde_fault");
    while message.contains(&format!("${tag}$")) {
        tag.push('x');
    }
    let literal = message.replace('\'', "''");
    format!("do ${tag}$ begin raise exception '%', '{literal}'; end ${tag}$")
}

enum Outcome {
    Finished,
    Failed(String),
    Aborted(String),
}

fn abort_message(state: &AppState, id: &str) -> String {
    let store = state.store.lock();
    let qid = store
        .get(id)
        .and_then(|s| {
            s.subs
                .iter()
                .rev()
                .map(|sub| sub.redshift_query_id)
                .find(|q| *q > 0)
        })
        .unwrap_or(0);
    format!("Query ({qid}) cancelled on user's request")
}

fn abort_requested(state: &AppState, id: &str) -> bool {
    state.store.lock().get(id).is_none_or(|s| s.abort_requested)
}

/// Runs the statement's SQL. With `fail_statement`, every statement runs, then the failure is
/// raised right after the last one in the same transaction and is reported as that (last)
/// statement's error: the batch's transaction is rolled back (all of it, or what ran after its
/// last `TRUNCATE`). A single statement or an `AUTO_COMMIT` batch, which has no transaction of
/// its own, runs its last statement in one for this, unless Redshift would refuse that statement
/// in a transaction block (then the failure follows it outside one).
async fn execute(state: &Arc<AppState>, id: &str, fail_statement: Option<&str>) -> Outcome {
    if abort_requested(state, id) {
        return Outcome::Aborted(abort_message(state, id));
    }
    let (sqls, auto_commit, notify) = {
        let mut store = state.store.lock();
        let Some(st) = store.get_mut(id) else {
            return Outcome::Failed("statement vanished".into());
        };
        st.status = Status::Picked;
        st.touch();
        (
            st.subs.iter().map(|s| s.sql.clone()).collect::<Vec<_>>(),
            st.auto_commit || !st.is_batch,
            st.cancel_notify.clone(),
        )
    };

    let client = match connect(state).await {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(statement_id = %id, %error, "cannot connect to PostgreSQL");
            return Outcome::Failed(format!("ERROR: could not connect to the database: {error}"));
        }
    };
    {
        let mut store = state.store.lock();
        let Some(st) = store.get_mut(id) else {
            return Outcome::Failed("statement vanished".into());
        };
        if st.abort_requested {
            drop(store);
            return Outcome::Aborted(abort_message(state, id));
        }
        st.cancel_token = Some(client.cancel_token());
        st.status = Status::Started;
        st.started = Some(Instant::now());
        st.touch();
    }

    if !auto_commit {
        if let Err(error) = client.batch_execute("BEGIN").await {
            return Outcome::Failed(sql_error(&error));
        }
    }
    // Whether the statements run in a transaction block, as Redshift sees it (a batch in
    // TRANSACTION mode), and whether a transaction is open (then ROLLBACK on failure, COMMIT at
    // the end): also for a fault raised after the last statement of an AUTO_COMMIT batch.
    let transaction_block = !auto_commit;
    let mut in_transaction = transaction_block;
    let last = sqls.len().saturating_sub(1);

    for (index, sql) in sqls.iter().enumerate() {
        if abort_requested(state, id) {
            rollback(&client, in_transaction).await;
            return Outcome::Aborted(abort_message(state, id));
        }
        // SQL the lexer cannot read fails in `run_one` with the lexer's error.
        let rule = transaction::classify(sql).unwrap_or(Rule::Transactional);
        let fail_here = fail_statement.filter(|_| index == last);
        let not_in_block = matches!(rule, Rule::NotInTransactionBlock(_));
        if fail_here.is_some() && !in_transaction && !not_in_block {
            if let Err(error) = client.batch_execute("BEGIN").await {
                return Outcome::Failed(sql_error(&error));
            }
            in_transaction = true;
        }
        let query_id = state.store.next_query_id();
        if let Some(sub) = state
            .store
            .lock()
            .get_mut(id)
            .and_then(|st| st.subs.get_mut(index))
        {
            sub.start(query_id);
        }
        let result = match rule {
            Rule::NotInTransactionBlock(command) if transaction_block => {
                tracing::info!(statement_id = %id, index, command = command.name, "refused inside the batch's transaction block, as on Redshift");
                Err(RunError::Sql(command.refusal()))
            }
            _ => run_cancellable(state, &client, sql, query_id, &notify).await,
        };
        let result = match (result, rule) {
            (Ok(done), Rule::Commits(command)) if in_transaction => {
                tracing::info!(statement_id = %id, index, command = command.name, "committing the batch's transaction, as on Redshift");
                commit_and_begin(&client).await.map(|()| done)
            }
            (other, _) => other,
        };
        let result = match (result, fail_here) {
            (Ok(_), Some(message)) => {
                tracing::info!(statement_id = %id, index, "fault: failing the statement with an injected SQL error");
                match client.batch_execute(&raise_sql(message)).await {
                    Err(error) => Err(RunError::Sql(sql_error(&error))),
                    Ok(()) => Err(RunError::Sql(format!("ERROR: {message}"))),
                }
            }
            (other, _) => other,
        };
        let result = match result {
            Err(RunError::Sql(_)) if abort_requested(state, id) => Err(RunError::Cancelled),
            other => other,
        };
        // Record the outcome under the lock, then act on it (no lock across an await).
        let failure = {
            let mut store = state.store.lock();
            let Some(st) = store.get_mut(id) else {
                return Outcome::Failed("statement vanished".into());
            };
            st.touch();
            match result {
                Ok((rows, result_set)) => {
                    if let Some(sub) = st.subs.get_mut(index) {
                        sub.result_rows = rows;
                        sub.result_size = result_set.as_ref().map_or(0, result_size);
                        sub.result = result_set;
                        sub.finish(Status::Finished, None);
                    }
                    None
                }
                Err(RunError::Cancelled) => Some(None),
                Err(RunError::Sql(message)) => {
                    if let Some(sub) = st.subs.get_mut(index) {
                        sub.finish(Status::Failed, Some(message.clone()));
                    }
                    for sub in st.subs.iter_mut().skip(index + 1) {
                        sub.finish(Status::Aborted, None);
                    }
                    Some(Some(message))
                }
            }
        };
        match failure {
            None => {}
            Some(None) => {
                rollback(&client, in_transaction).await;
                return Outcome::Aborted(abort_message(state, id));
            }
            Some(Some(message)) => {
                rollback(&client, in_transaction).await;
                tracing::info!(statement_id = %id, failed_index = index, "statement failed, rolled back");
                return Outcome::Failed(message);
            }
        }
    }

    if in_transaction {
        if abort_requested(state, id) {
            rollback(&client, in_transaction).await;
            return Outcome::Aborted(abort_message(state, id));
        }
        if let Err(error) = client.batch_execute("COMMIT").await {
            return Outcome::Failed(sql_error(&error));
        }
    }
    Outcome::Finished
}

/// Runs one statement; once CancelStatement has been called, keeps sending PostgreSQL cancel
/// requests (every 100 ms) until the statement ends, so a cancel that arrives just before the
/// query reaches the server is not lost.
async fn run_cancellable(
    state: &AppState,
    client: &Client,
    sql: &str,
    query_id: i64,
    notify: &Notify,
) -> Result<(i64, Option<ResultSet>), RunError> {
    let query = run_one(state, client, sql, query_id);
    tokio::pin!(query);
    let token = client.cancel_token();
    let mut cancelling = false;
    loop {
        tokio::select! {
            result = &mut query => return result,
            () = notify.notified(), if !cancelling => cancelling = true,
            () = tokio::time::sleep(Duration::from_millis(100)), if cancelling => {}
        }
        if let Err(error) = token.cancel_query(NoTls).await {
            tracing::warn!(%error, "PostgreSQL cancel request failed");
        }
    }
}

/// What a statement that commits its transaction (`TRUNCATE`) does to a batch's: commit what ran
/// so far, itself included, and go on in a new transaction.
async fn commit_and_begin(client: &Client) -> Result<(), RunError> {
    for command in ["COMMIT", "BEGIN"] {
        client
            .batch_execute(command)
            .await
            .map_err(|e| RunError::Sql(sql_error(&e)))?;
    }
    Ok(())
}

async fn rollback(client: &Client, in_transaction: bool) {
    if in_transaction {
        if let Err(error) = client.batch_execute("ROLLBACK").await {
            tracing::warn!(%error, "ROLLBACK failed");
        }
    }
}

async fn connect(state: &AppState) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = state.pg_config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "PostgreSQL connection ended with an error");
        }
    });
    state
        .compat_installed
        .get_or_try_init(|| install_compat(&client))
        .await?;
    configure_session(&client).await?;
    Ok(client)
}

/// Installs the Redshift compatibility functions and views (`redshift_sql::compat`) unless the
/// database already has this version: in one transaction, under an advisory lock, so emulators
/// sharing a database do not race.
pub async fn install_compat(client: &Client) -> Result<(), tokio_postgres::Error> {
    let version = redshift_sql::compat::version();
    client
        .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(7236301523)")
        .await?;
    let installed = client
        .query_opt(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1",
            &[&redshift_sql::compat::SCHEMA],
        )
        .await?
        .and_then(|row| row.get::<_, Option<String>>(0));
    if installed.as_deref() != Some(version.as_str()) {
        client.batch_execute(redshift_sql::compat::SQL).await?;
        client
            .batch_execute(&format!(
                "COMMENT ON SCHEMA {} IS '{version}'",
                redshift_sql::compat::SCHEMA
            ))
            .await?;
    }
    client.batch_execute("COMMIT").await
}

/// A session as Redshift starts one: UTC, and the search path that finds the compatibility
/// functions after the user's schemas.
pub async fn configure_session(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(&format!(
            "SET TIME ZONE 'UTC'; SET search_path = {}",
            redshift_sql::compat::SEARCH_PATH
        ))
        .await
}

/// Runs one SQL statement: returns (rows affected or returned, result set if it has one).
async fn run_one(
    state: &AppState,
    client: &Client,
    sql: &str,
    query_id: i64,
) -> Result<(i64, Option<ResultSet>), RunError> {
    // Redshift's COPY from S3 and UNLOAD to S3 (docs/copy-unload.md), on this connection so
    // they are part of the batch's transaction. Rows loaded / unloaded are the statement's rows.
    match copy_options::parse(sql) {
        Ok(None) => {}
        Ok(Some(Statement::Copy(copy))) => {
            let s3 = state.s3.as_ref();
            return load::copy(client, &state.pg_config, s3, query_id, &copy)
                .await
                .map(|rows| (rows, None))
                .map_err(|e| RunError::Sql(format!("ERROR: {e}")));
        }
        Ok(Some(Statement::Unload(statement))) => {
            return unload::unload(client, state.s3.as_ref(), &statement)
                .await
                .map(|rows| (rows, None))
                .map_err(|e| RunError::Sql(format!("ERROR: {e}")));
        }
        Err(e) => return Err(RunError::Sql(format!("ERROR: {e}"))),
    }
    let translated =
        translate::to_postgres(sql).map_err(|e| RunError::Sql(format!("ERROR: {e}")))?;
    // Parse first: the prepared statement gives the column types; the simple query protocol
    // then runs it once and returns text values (no extra codecs needed for numeric/date…).
    let prepared = client
        .prepare(&translated)
        .await
        .map_err(|e| RunError::Sql(sql_error(&e)))?;
    let columns: Vec<Column> = prepared
        .columns()
        .iter()
        .map(|c| Column {
            name: c.name().to_string(),
            type_name: c.type_().name().to_string(),
            is_signed: matches!(
                *c.type_(),
                Type::INT2 | Type::INT4 | Type::INT8 | Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC
            ),
        })
        .collect();
    let types: Vec<Type> = prepared
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    let messages = client
        .simple_query(&translated)
        .await
        .map_err(|e| RunError::Sql(sql_error(&e)))?;
    let mut rows = Vec::new();
    let mut affected: i64 = 0;
    for message in messages {
        match message {
            SimpleQueryMessage::Row(row) => {
                let fields = (0..row.len())
                    .map(|i| to_field(row.get(i), types.get(i)))
                    .collect();
                rows.push(fields);
            }
            SimpleQueryMessage::CommandComplete(n) => {
                affected = i64::try_from(n).unwrap_or(i64::MAX);
            }
            _ => {}
        }
    }
    if columns.is_empty() {
        Ok((affected, None))
    } else {
        let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        Ok((count, Some(ResultSet { columns, rows })))
    }
}

fn result_size(result: &ResultSet) -> i64 {
    let bytes: usize = result
        .rows
        .iter()
        .flatten()
        .map(|f| match f {
            Field::String(s) | Field::Blob(s) => s.len(),
            Field::Null => 0,
            _ => 8,
        })
        .sum();
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// Converts one text value of the simple query protocol into a typed Data API field.
fn to_field(text: Option<&str>, ty: Option<&Type>) -> Field {
    let Some(text) = text else { return Field::Null };
    let Some(ty) = ty else {
        return Field::String(text.to_string());
    };
    match *ty {
        Type::BOOL => Field::Bool(text == "t"),
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => text
            .parse()
            .map(Field::Long)
            .unwrap_or_else(|_| Field::String(text.to_string())),
        Type::FLOAT4 | Type::FLOAT8 => match text.parse::<f64>() {
            Ok(d) if d.is_finite() => Field::Double(d),
            _ => Field::String(text.to_string()),
        },
        Type::BYTEA => match text.strip_prefix("\\x").and_then(decode_hex) {
            Some(bytes) => Field::Blob(base64(&bytes)),
            None => Field::String(text.to_string()),
        },
        _ => Field::String(text.to_string()),
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_become_typed_fields() {
        assert_eq!(to_field(None, Some(&Type::INT4)), Field::Null);
        assert_eq!(to_field(Some("t"), Some(&Type::BOOL)), Field::Bool(true));
        assert_eq!(to_field(Some("42"), Some(&Type::INT8)), Field::Long(42));
        assert_eq!(
            to_field(Some("1.5"), Some(&Type::FLOAT8)),
            Field::Double(1.5)
        );
        assert_eq!(
            to_field(Some("NaN"), Some(&Type::FLOAT8)),
            Field::String("NaN".into())
        );
        assert_eq!(
            to_field(Some("12.50"), Some(&Type::NUMERIC)),
            Field::String("12.50".into())
        );
        assert_eq!(
            to_field(Some("\\x68656c6c6f"), Some(&Type::BYTEA)),
            Field::Blob("aGVsbG8=".into())
        );
    }

    #[test]
    fn raise_sql_quotes_any_message() {
        assert_eq!(
            raise_sql("boom"),
            "do $rde_fault$ begin raise exception '%', 'boom'; end $rde_fault$"
        );
        assert_eq!(
            raise_sql("it's $rde_fault$ 100%"),
            "do $rde_faultx$ begin raise exception '%', 'it''s $rde_fault$ 100%'; end $rde_faultx$"
        );
    }

    #[test]
    fn base64_pads_like_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }
}
