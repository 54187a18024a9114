//! The Data API operations: request shapes, validation as the service does it, responses.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::executor;
use crate::faults::ResponseFault;
use crate::params;
use crate::store::{parse_id, Admission, Idempotency, NewStatement, Status, Target};
use crate::AppState;

/// Service limits.
pub const MAX_BATCH_STATEMENTS: usize = 40;
pub const MAX_SQL_BYTES: usize = 100 * 1024;
pub const MAX_STATEMENT_NAME: usize = 500;
const MAX_LIST_RESULTS: usize = 100;
pub const MAX_CLIENT_TOKEN: usize = 64;
/// `WaitTimeSeconds` (long polling, since 2026-07-29): 1 to 30 seconds.
pub const WAIT_TIME_SECONDS: std::ops::RangeInclusive<i64> = 1..=30;
/// ListStatements `NextToken`: this prefix and the sequence number of the next statement.
const LIST_TOKEN_PREFIX: &str = "from-";
/// GetStatementResult `NextToken`: this prefix and the offset of the next record.
const RESULT_TOKEN_PREFIX: &str = "record-";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Submit {
    sql: Option<String>,
    sqls: Option<Vec<String>>,
    cluster_identifier: Option<String>,
    workgroup_name: Option<String>,
    database: Option<String>,
    db_user: Option<String>,
    secret_arn: Option<String>,
    #[serde(default)]
    with_event: bool,
    statement_name: Option<String>,
    parameters: Option<Vec<SqlParameter>>,
    result_format: Option<String>,
    session_id: Option<String>,
    session_keep_alive_seconds: Option<i64>,
    execution_mode: Option<String>,
    client_token: Option<String>,
    wait_time_seconds: Option<i64>,
}

impl Submit {
    /// A hash of what the request asks to run (everything but the token), to tell a retry of
    /// the same request from a different request reusing a token.
    fn fingerprint(&self, batch: bool) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        batch.hash(&mut hasher);
        // Exhaustive on purpose: a new request member must be classified here.
        let Submit {
            sql,
            sqls,
            cluster_identifier,
            workgroup_name,
            database,
            db_user,
            secret_arn,
            with_event,
            statement_name,
            parameters,
            result_format,
            session_id,
            session_keep_alive_seconds,
            execution_mode,
            client_token: _,
            wait_time_seconds: _,
        } = self;
        (
            (sql, sqls, cluster_identifier, workgroup_name, database),
            (db_user, secret_arn, with_event, statement_name, parameters),
            (
                result_format,
                session_id,
                session_keep_alive_seconds,
                execution_mode,
            ),
        )
            .hash(&mut hasher);
        hasher.finish()
    }
}

#[derive(Debug, Clone, Hash, Deserialize)]
struct SqlParameter {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IdRequest {
    id: Option<String>,
    next_token: Option<String>,
    wait_time_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListRequest {
    next_token: Option<String>,
    max_results: Option<i64>,
    statement_name: Option<String>,
    status: Option<String>,
    database: Option<String>,
    cluster_identifier: Option<String>,
    workgroup_name: Option<String>,
    #[allow(dead_code)]
    role_level: Option<bool>,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::Serialization(e.to_string()))
}

fn null_error(member: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: \
         Member must not be null"
    ))
}

/// Dispatches one `X-Amz-Target: RedshiftData.<operation>` call.
pub async fn dispatch(
    state: &Arc<AppState>,
    operation: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    match operation {
        "ExecuteStatement" => submit(state, parse(body)?, false).await,
        "BatchExecuteStatement" => submit(state, parse(body)?, true).await,
        "DescribeStatement" => describe(state, parse(body)?).await,
        "GetStatementResult" => get_result(state, parse(body)?).await,
        "CancelStatement" => cancel(state, parse(body)?),
        "ListStatements" => list(state, parse(body)?),
        other => Err(ApiError::UnknownOperation(format!(
            "operation {other} is not supported by the redshift-data emulator"
        ))),
    }
}

/// A valid `WaitTimeSeconds` as a duration (`None` when not given), else the service's
/// `ValidationException`.
fn wait_time(value: Option<i64>) -> Result<Option<std::time::Duration>, ApiError> {
    let Some(seconds) = value else {
        return Ok(None);
    };
    let (lo, hi) = (*WAIT_TIME_SECONDS.start(), *WAIT_TIME_SECONDS.end());
    if seconds < lo || seconds > hi {
        let bound = if seconds < lo {
            format!("greater than or equal to {lo}")
        } else {
            format!("less than or equal to {hi}")
        };
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{seconds}' at 'waitTimeSeconds' failed to \
             satisfy constraint: Member must have value {bound}"
        )));
    }
    Ok(Some(std::time::Duration::from_secs(seconds.unsigned_abs())))
}

/// What a valid submit request runs: (client SQL, SQL with parameters bound), target, database.
type Validated = (Vec<(String, String)>, Target, String);

fn validate_submit(req: &Submit, batch: bool) -> Result<Validated, ApiError> {
    wait_time(req.wait_time_seconds)?;
    if let Some(token) = &req.client_token {
        let length = token.chars().count();
        if !(1..=MAX_CLIENT_TOKEN).contains(&length) {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'clientToken' failed to satisfy \
                 constraint: Member must have length between 1 and {MAX_CLIENT_TOKEN} (got {length})"
            )));
        }
    }
    if req.session_id.is_some() || req.session_keep_alive_seconds.is_some() {
        return Err(ApiError::validation(
            "SessionId/SessionKeepAliveSeconds are not supported by the redshift-data emulator",
        ));
    }
    if let Some(format) = req.result_format.as_deref() {
        if format != "JSON" {
            return Err(ApiError::validation(format!(
                "ResultFormat {format} is not supported by the redshift-data emulator (JSON only)"
            )));
        }
    }
    let sqls = if batch {
        let sqls = req.sqls.clone().ok_or_else(|| null_error("sqls"))?;
        if sqls.is_empty() || sqls.len() > MAX_BATCH_STATEMENTS {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'sqls' failed to satisfy constraint: \
                 Member must have length less than or equal to {MAX_BATCH_STATEMENTS} and \
                 greater than or equal to 1 (got {})",
                sqls.len()
            )));
        }
        sqls
    } else {
        vec![req.sql.clone().ok_or_else(|| null_error("sql"))?]
    };
    if let Some((i, _)) = sqls.iter().enumerate().find(|(_, s)| s.trim().is_empty()) {
        return Err(ApiError::validation(format!(
            "SQL statement {} is empty",
            i + 1
        )));
    }
    let total: usize = sqls.iter().map(String::len).sum();
    if total > MAX_SQL_BYTES {
        return Err(ApiError::validation(format!(
            "The SQL text is {total} bytes; the limit is {MAX_SQL_BYTES} bytes (100 KB)"
        )));
    }
    if let Some(name) = &req.statement_name {
        if name.chars().count() > MAX_STATEMENT_NAME {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'statementName' failed to satisfy \
                 constraint: Member must have length less than or equal to {MAX_STATEMENT_NAME}"
            )));
        }
    }
    let target = match (
        req.cluster_identifier.as_deref().filter(|s| !s.is_empty()),
        req.workgroup_name.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(c), None) => Target::Cluster(c.to_string()),
        (None, Some(w)) => Target::Workgroup(w.to_string()),
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "Specify either ClusterIdentifier or WorkgroupName, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::validation(
                "Either ClusterIdentifier or WorkgroupName is required",
            ))
        }
    };
    if matches!(target, Target::Workgroup(_)) && req.db_user.is_some() {
        return Err(ApiError::validation(
            "DbUser is not supported with WorkgroupName",
        ));
    }
    let database = req
        .database
        .clone()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| null_error("database"))?;
    match req.execution_mode.as_deref() {
        None | Some("TRANSACTION") => {}
        Some("AUTO_COMMIT") if batch => {}
        Some(other) => {
            return Err(ApiError::validation(format!(
                "ExecutionMode {other} is not valid here"
            )))
        }
    }
    let params: Vec<(String, String)> = req
        .parameters
        .iter()
        .flatten()
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect();
    let sqls = sqls
        .into_iter()
        .map(|sql| {
            let bound = if params.is_empty() {
                sql.clone()
            } else {
                params::bind(&sql, &params).map_err(|e| ApiError::validation(e.to_string()))?
            };
            Ok((sql, bound))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok((sqls, target, database))
}

async fn submit(state: &Arc<AppState>, req: Submit, batch: bool) -> Result<Value, ApiError> {
    let (sqls, target, database) = validate_submit(&req, batch)?;
    let wait = wait_time(req.wait_time_seconds)?;
    if req.db_user.is_some() || req.secret_arn.is_some() {
        tracing::info!(
            db_user = req.db_user.as_deref().unwrap_or(""),
            has_secret_arn = req.secret_arn.is_some(),
            "credentials are not checked by the emulator"
        );
    }
    let statement_count = sqls.len();
    let fingerprint = req.fingerprint(batch);
    let admission = state.store.admit(
        NewStatement {
            name: req.statement_name.clone(),
            is_batch: batch,
            auto_commit: req.execution_mode.as_deref() == Some("AUTO_COMMIT"),
            target,
            database,
            db_user: req.db_user.clone(),
            secret_arn: req.secret_arn.clone(),
            with_event: req.with_event,
            sqls,
            parameters: req
                .parameters
                .iter()
                .flatten()
                .map(|p| (p.name.clone(), p.value.clone()))
                .collect(),
        },
        req.client_token.as_deref().map(|client_token| Idempotency {
            client_token,
            fingerprint,
        }),
        state.config.max_active_statements,
        std::time::Instant::now(),
    )?;
    let id = match admission {
        Admission::Replay { id, same_request } => {
            if same_request {
                tracing::info!(statement_id = %id, "ClientToken seen before: answering with its statement");
            } else {
                tracing::warn!(
                    statement_id = %id,
                    client_token = req.client_token.as_deref().unwrap_or(""),
                    "ClientToken reused with different parameters: answering with the statement \
                     of the first request, nothing new runs"
                );
            }
            if let Some(wait) = wait {
                state.store.wait_for(&id, None, wait, None).await?;
            }
            return submit_response(state, &id, wait.is_some());
        }
        Admission::New(id) => id,
    };
    let faults = state.faults_for_submission(req.statement_name.as_deref());
    tracing::info!(
        statement_id = %id,
        statement_name = req.statement_name.as_deref().unwrap_or(""),
        statements = statement_count,
        batch,
        with_event = req.with_event,
        "statement submitted"
    );
    if !faults.is_off() {
        tracing::info!(statement_id = %id, faults = ?faults, "fault injection applies to this statement");
    }
    let before_response = faults.event_before_response;
    let response_delay = std::time::Duration::from_millis(faults.response_delay_ms);
    // held from before the statement runs, so a release sent once its event was handled is kept
    let held = faults.hold_response.then(|| state.hold_answer(&id));
    let response_fault = faults.response_fault();
    let task = tokio::spawn(executor::run(state.clone(), id.clone(), faults));
    if before_response {
        tracing::info!(statement_id = %id, "fault: running statement and event before answering");
        if let Err(error) = task.await {
            tracing::error!(statement_id = %id, %error, "statement task failed");
        }
    }
    if let Some(wait) = wait {
        // A submission is a new statement: no other call can be waiting on it yet, so the
        // waiting-requests limit does not apply (the service models it on DescribeStatement and
        // GetStatementResult only).
        let end = state.store.wait_for(&id, None, wait, None).await?;
        tracing::info!(statement_id = %id, ?end, "long poll of the submission ended");
    }
    if let Some(held) = held {
        tracing::info!(statement_id = %id, bound_ms = response_delay.as_millis() as u64, "fault: holding the answer until released");
        let released = held.released_within(response_delay).await;
        tracing::info!(statement_id = %id, released, "fault: held answer goes out");
    } else if !response_delay.is_zero() {
        tracing::info!(statement_id = %id, delay_ms = response_delay.as_millis() as u64, "fault: delaying the answer");
        tokio::time::sleep(response_delay).await;
    }
    match response_fault {
        None => submit_response(state, &id, wait.is_some()),
        Some(fault) => {
            tracing::info!(statement_id = %id, ?fault, "fault: statement submitted, failing the answer");
            let message =
                format!("injected fault: statement {id} was submitted but the answer failed");
            Err(match fault {
                ResponseFault::InternalServerError => ApiError::Internal(message),
                ResponseFault::Validation => ApiError::Validation(message),
            })
        }
    }
}

/// The ExecuteStatement / BatchExecuteStatement answer for a recorded statement; after a long
/// poll (`waited`) also its `Status`, `RedshiftPid` and `HasResultSet`, as the service documents.
fn submit_response(state: &AppState, id: &str, waited: bool) -> Result<Value, ApiError> {
    let store = state.store.lock();
    let st = store
        .get(id)
        .ok_or_else(|| ApiError::Internal("statement vanished".into()))?;
    Ok(if waited {
        st.submit_waited_json()
    } else {
        st.submit_json()
    })
}

/// Validates the id and `WaitTimeSeconds` of a DescribeStatement / GetStatementResult, then waits
/// as asked (long polling) before the plain call answers.
async fn long_poll(state: &AppState, req: &IdRequest) -> Result<(), ApiError> {
    let wait = wait_time(req.wait_time_seconds)?;
    let (Some(wait), Some(raw)) = (wait, req.id.as_deref()) else {
        return Ok(());
    };
    let r = parse_id(raw)?;
    let end = state
        .store
        .wait_for(&r.id, r.sub, wait, state.config.max_waiting_requests)
        .await?;
    tracing::debug!(statement_id = %raw, ?end, "long poll ended");
    Ok(())
}

fn not_found(raw: &str) -> ApiError {
    ApiError::not_found("Query does not exist.", raw)
}

async fn describe(state: &AppState, req: IdRequest) -> Result<Value, ApiError> {
    long_poll(state, &req).await?;
    let raw = req.id.ok_or_else(|| null_error("id"))?;
    let r = parse_id(&raw)?;
    let store = state.store.lock();
    let st = store.get(&r.id).ok_or_else(|| not_found(&raw))?;
    match r.sub {
        None => Ok(st.describe_json()),
        Some(_) if !st.is_batch => Err(not_found(&raw)),
        Some(index) => st.describe_sub_json(index).ok_or_else(|| not_found(&raw)),
    }
}

async fn get_result(state: &AppState, req: IdRequest) -> Result<Value, ApiError> {
    long_poll(state, &req).await?;
    let raw = req.id.ok_or_else(|| null_error("id"))?;
    let r = parse_id(&raw)?;
    let store = state.store.lock();
    let st = store.get(&r.id).ok_or_else(|| not_found(&raw))?;
    let index = match (r.sub, st.is_batch) {
        (Some(i), true) => i,
        (None, false) => 0,
        (Some(_), false) => return Err(not_found(&raw)),
        (None, true) => {
            // The service's own wording.
            return Err(ApiError::validation(
                "BatchExecuteStatement result can only be retrieved with sub-statement id.",
            ));
        }
    };
    let sub = st.subs.get(index).ok_or_else(|| not_found(&raw))?;
    if sub.status != Status::Finished {
        return Err(ApiError::not_found(
            format!(
                "Query does not have result. Please check query status with DescribeStatement. \
                 (status: {})",
                sub.status.as_str()
            ),
            raw,
        ));
    }
    let Some(result) = &sub.result else {
        return Err(ApiError::not_found(
            "Query does not have result. Please check query status with DescribeStatement.",
            raw,
        ));
    };
    // The token is the offset of the page's first record: pages of a finished statement's result
    // never change, so any token handed out stays exact.
    let start = match req.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t
            .strip_prefix(RESULT_TOKEN_PREFIX)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n > 0 && *n < result.rows.len())
            .ok_or_else(|| ApiError::validation("Invalid NextToken"))?,
    };
    let end = state
        .config
        .result_page_rows
        .map_or(result.rows.len(), |n| {
            start.saturating_add(n).min(result.rows.len())
        });
    let columns: Vec<Value> = result
        .columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "label": c.name,
                "typeName": c.type_name,
                "isSigned": c.is_signed,
                "isCaseSensitive": matches!(c.type_name.as_str(), "varchar" | "bpchar" | "text" | "name"),
                "isCurrency": false,
                "nullable": 1,
                "precision": 0,
                "scale": 0,
                "length": 0,
                "schemaName": "",
                "tableName": "",
            })
        })
        .collect();
    let records: Vec<Value> = result.rows[start..end]
        .iter()
        .map(|row| Value::Array(row.iter().map(|f| f.to_json()).collect()))
        .collect();
    let mut out = json!({
        "ColumnMetadata": columns,
        "Records": records,
        "TotalNumRows": result.rows.len(),
    });
    if end < result.rows.len() {
        out["NextToken"] = json!(format!("{RESULT_TOKEN_PREFIX}{end}"));
    }
    Ok(out)
}

fn cancel(state: &AppState, req: IdRequest) -> Result<Value, ApiError> {
    let raw = req.id.ok_or_else(|| null_error("id"))?;
    let r = parse_id(&raw)?;
    if r.sub.is_some() {
        return Err(ApiError::validation(
            "Cancel a batch with its statement id, not a sub-statement id",
        ));
    }
    let mut store = state.store.lock();
    let st = store.get_mut(&r.id).ok_or_else(|| not_found(&raw))?;
    if st.status.is_terminal() {
        return Err(ApiError::validation(format!(
            "Could not cancel a query that is already in {} state.",
            st.status.as_str()
        )));
    }
    // The executor sees the flag before each statement and, while one runs, sends PostgreSQL
    // the cancel request when notified.
    st.abort_requested = true;
    st.cancel_notify.notify_one();
    tracing::info!(statement_id = %r.id, "cancel requested");
    Ok(json!({"Status": true}))
}

fn list(state: &AppState, req: ListRequest) -> Result<Value, ApiError> {
    let max = match req.max_results {
        None | Some(0) => MAX_LIST_RESULTS,
        Some(n) if (1..=MAX_LIST_RESULTS as i64).contains(&n) => n as usize,
        Some(n) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy \
                 constraint: Member must have value less than or equal to {MAX_LIST_RESULTS}"
            )))
        }
    };
    let status_filter = match req.status.as_deref() {
        None | Some("ALL") => None,
        Some(s) => Some(
            Status::parse(s)
                .ok_or_else(|| ApiError::validation(format!("Invalid Status {s:?}")))?,
        ),
    };
    // The token is the sequence number of the next statement to list: pages stay exact while
    // new statements arrive (they are newer, so they never shift the remaining pages).
    let before: Option<usize> = match req.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            t.strip_prefix(LIST_TOKEN_PREFIX)
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| n.checked_add(1))
                .ok_or_else(|| ApiError::validation("Invalid NextToken"))?,
        ),
    };
    let ids = state.store.ids_newest_first(before);
    let store = state.store.lock();
    let matching: Vec<(usize, &crate::store::Statement)> = ids
        .iter()
        .filter_map(|(seq, id)| store.get(id).map(|st| (*seq, st)))
        .filter(|(_, st)| {
            let name_ok = match &req.statement_name {
                Some(prefix) => st
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(prefix.as_str())),
                None => true,
            };
            let status_ok = status_filter.is_none_or(|s| st.status == s);
            let db_ok = req.database.as_deref().is_none_or(|d| st.database == d);
            let target_ok = match (&req.cluster_identifier, &req.workgroup_name, &st.target) {
                (Some(c), _, Target::Cluster(t)) => c == t,
                (Some(_), _, Target::Workgroup(_)) => false,
                (None, Some(w), Target::Workgroup(t)) => w == t,
                (None, Some(_), Target::Cluster(_)) => false,
                (None, None, _) => true,
            };
            name_ok && status_ok && db_ok && target_ok
        })
        .take(max + 1)
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .take(max)
        .map(|(_, st)| st.list_json())
        .collect();
    let mut out = json!({"Statements": page});
    if let (Some((next_seq, _)), Some(obj)) = (matching.get(max), out.as_object_mut()) {
        obj.insert(
            "NextToken".into(),
            json!(format!("{LIST_TOKEN_PREFIX}{next_seq}")),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit_req(json: Value) -> Submit {
        serde_json::from_value(json).expect("request")
    }

    #[test]
    fn batch_limits_match_the_service() {
        let ok =
            submit_req(json!({"Sqls": ["select 1"], "ClusterIdentifier": "c", "Database": "dev"}));
        assert!(validate_submit(&ok, true).is_ok());
        let too_many = submit_req(json!({
            "Sqls": vec!["select 1"; 41], "ClusterIdentifier": "c", "Database": "dev"}));
        assert_eq!(
            validate_submit(&too_many, true).expect_err("41").code(),
            "ValidationException"
        );
        let none = submit_req(json!({"Sqls": [], "ClusterIdentifier": "c", "Database": "dev"}));
        assert!(validate_submit(&none, true).is_err());
        let big = submit_req(json!({
            "Sql": "x".repeat(MAX_SQL_BYTES + 1), "ClusterIdentifier": "c", "Database": "dev"}));
        assert!(validate_submit(&big, false).is_err());
    }

    #[test]
    fn target_and_database_are_required() {
        let no_target = submit_req(json!({"Sql": "select 1", "Database": "dev"}));
        assert!(validate_submit(&no_target, false).is_err());
        let both = submit_req(json!({
            "Sql": "select 1", "Database": "dev", "ClusterIdentifier": "c", "WorkgroupName": "w"}));
        assert!(validate_submit(&both, false).is_err());
        let no_db = submit_req(json!({"Sql": "select 1", "WorkgroupName": "w"}));
        assert!(validate_submit(&no_db, false).is_err());
        let name = submit_req(json!({
            "Sql": "select 1", "Database": "dev", "WorkgroupName": "w",
            "StatementName": "n".repeat(501)}));
        assert!(validate_submit(&name, false).is_err());
    }
}
