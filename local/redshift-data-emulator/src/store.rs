//! In-memory record of every statement the emulator accepted: status, timings, results.
//!
//! The lock is a plain `std::sync::Mutex`, held only for short, non-async sections.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tokio_postgres::CancelToken;

use crate::error::ApiError;

/// Statement status, as the Data API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Submitted,
    Picked,
    Started,
    Finished,
    Failed,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "SUBMITTED",
            Self::Picked => "PICKED",
            Self::Started => "STARTED",
            Self::Finished => "FINISHED",
            Self::Failed => "FAILED",
            Self::Aborted => "ABORTED",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Finished | Self::Failed | Self::Aborted)
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "SUBMITTED" => Self::Submitted,
            "PICKED" => Self::Picked,
            "STARTED" => Self::Started,
            "FINISHED" => Self::Finished,
            "FAILED" => Self::Failed,
            "ABORTED" => Self::Aborted,
            _ => return None,
        })
    }
}

/// Where a statement is sent: a provisioned cluster or a Serverless workgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Cluster(String),
    Workgroup(String),
}

/// One typed value of a result row (the Data API `Field` union).
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    String(String),
    /// Base64 text of the bytes.
    Blob(String),
}

impl Field {
    pub fn to_json(&self) -> Value {
        match self {
            Field::Null => json!({"isNull": true}),
            Field::Bool(b) => json!({"booleanValue": b}),
            Field::Long(n) => json!({"longValue": n}),
            Field::Double(d) => json!({"doubleValue": d}),
            Field::String(s) => json!({"stringValue": s}),
            Field::Blob(b) => json!({"blobValue": b}),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub type_name: String,
    pub is_signed: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Field>>,
}

/// One SQL statement; a single ExecuteStatement has exactly one.
#[derive(Clone, Debug)]
pub struct SubStatement {
    /// The SQL as the client sent it (QueryString).
    pub query: String,
    /// The SQL with parameters bound, before translation.
    pub sql: String,
    pub status: Status,
    pub error: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
    pub started: Option<Instant>,
    pub duration_ns: Option<i64>,
    pub result_rows: i64,
    pub result_size: i64,
    pub redshift_query_id: i64,
    pub result: Option<ResultSet>,
}

pub struct Statement {
    pub id: String,
    pub name: Option<String>,
    pub is_batch: bool,
    pub auto_commit: bool,
    pub target: Target,
    pub database: String,
    pub db_user: Option<String>,
    pub secret_arn: Option<String>,
    pub with_event: bool,
    pub status: Status,
    pub error: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
    pub started: Option<Instant>,
    pub duration_ns: Option<i64>,
    pub redshift_pid: i64,
    pub parameters: Vec<(String, String)>,
    pub subs: Vec<SubStatement>,
    /// Set by CancelStatement; the executor turns it into ABORTED.
    pub abort_requested: bool,
    pub cancel_token: Option<CancelToken>,
    pub cancel_notify: Arc<Notify>,
    /// Bumped by every [`Statement::touch`] (each status change touches): what long-polling
    /// calls (`WaitTimeSeconds`) wait on, so they wake when the statement changes, never on a
    /// poll of their own.
    pub changed: watch::Sender<u64>,
    /// Calls with `WaitTimeSeconds` waiting on this statement now (DescribeStatement,
    /// GetStatementResult), for `ActiveWaitingRequestsExceededException`.
    pub waiting: usize,
}

/// What a client asked to run.
#[derive(Clone, Debug)]
pub struct NewStatement {
    pub name: Option<String>,
    pub is_batch: bool,
    pub auto_commit: bool,
    pub target: Target,
    pub database: String,
    pub db_user: Option<String>,
    pub secret_arn: Option<String>,
    pub with_event: bool,
    /// (as sent, with parameters bound) per statement.
    pub sqls: Vec<(String, String)>,
    pub parameters: Vec<(String, String)>,
}

pub fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or(0.0)
}

fn elapsed_ns(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX)
}

fn duration_json(started: Option<Instant>, fixed: Option<i64>) -> i64 {
    match (fixed, started) {
        (Some(ns), _) => ns,
        (None, Some(start)) => elapsed_ns(start),
        (None, None) => -1,
    }
}

impl SubStatement {
    fn describe_json(&self, id: &str) -> Value {
        let mut out = json!({
            "Id": id,
            "QueryString": self.query,
            "Status": self.status.as_str(),
            "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at,
            "Duration": duration_json(self.started, self.duration_ns),
            "ResultRows": self.result_rows,
            "ResultSize": self.result_size,
            "RedshiftQueryId": self.redshift_query_id,
            "HasResultSet": self.result.is_some(),
        });
        if let (Some(error), Some(obj)) = (&self.error, out.as_object_mut()) {
            obj.insert("Error".into(), json!(error));
        }
        out
    }
}

impl Statement {
    /// Rows of the whole statement: the sum over its finished sub-statements.
    pub fn result_rows(&self) -> i64 {
        if self.status != Status::Finished {
            return -1;
        }
        self.subs
            .iter()
            .filter(|s| s.result_rows > 0)
            .map(|s| s.result_rows)
            .sum()
    }

    pub fn redshift_query_id(&self) -> i64 {
        if self.is_batch {
            -1
        } else {
            self.subs.first().map_or(-1, |s| s.redshift_query_id)
        }
    }

    fn has_result_set(&self) -> bool {
        if self.is_batch {
            self.subs.iter().any(|s| s.result.is_some())
        } else {
            self.subs.first().is_some_and(|s| s.result.is_some())
        }
    }

    fn query_string(&self) -> String {
        self.subs
            .iter()
            .map(|s| s.query.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn target_json(&self, obj: &mut serde_json::Map<String, Value>) {
        match &self.target {
            Target::Cluster(c) => obj.insert("ClusterIdentifier".into(), json!(c)),
            Target::Workgroup(w) => obj.insert("WorkgroupName".into(), json!(w)),
        };
        obj.insert("Database".into(), json!(self.database));
        if let Some(u) = &self.db_user {
            obj.insert("DbUser".into(), json!(u));
        }
        if let Some(s) = &self.secret_arn {
            obj.insert("SecretArn".into(), json!(s));
        }
    }

    /// The ExecuteStatement / BatchExecuteStatement response.
    pub fn submit_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        out.insert("Id".into(), json!(self.id));
        out.insert("CreatedAt".into(), json!(self.created_at));
        self.target_json(&mut out);
        if let Some(u) = &self.db_user {
            out.insert("DbGroups".into(), json!([]));
            out.insert("DbUser".into(), json!(u));
        }
        Value::Object(out)
    }

    /// The submit response after a long poll (`WaitTimeSeconds`): the plain one plus `Status`,
    /// `RedshiftPid` and `HasResultSet`.
    pub fn submit_waited_json(&self) -> Value {
        let mut out = self.submit_json();
        if let Some(obj) = out.as_object_mut() {
            obj.insert("Status".into(), json!(self.status.as_str()));
            obj.insert("RedshiftPid".into(), json!(self.redshift_pid));
            obj.insert("HasResultSet".into(), json!(self.has_result_set()));
        }
        out
    }

    /// The DescribeStatement response for the whole statement.
    pub fn describe_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        out.insert("Id".into(), json!(self.id));
        out.insert("Status".into(), json!(self.status.as_str()));
        out.insert("CreatedAt".into(), json!(self.created_at));
        out.insert("UpdatedAt".into(), json!(self.updated_at));
        out.insert(
            "Duration".into(),
            json!(duration_json(self.started, self.duration_ns)),
        );
        out.insert("QueryString".into(), json!(self.query_string()));
        out.insert("HasResultSet".into(), json!(self.has_result_set()));
        out.insert("ResultRows".into(), json!(self.result_rows()));
        out.insert(
            "ResultSize".into(),
            json!(self.subs.iter().map(|s| s.result_size.max(0)).sum::<i64>()),
        );
        out.insert("RedshiftQueryId".into(), json!(self.redshift_query_id()));
        out.insert("RedshiftPid".into(), json!(self.redshift_pid));
        out.insert("ResultFormat".into(), json!("JSON"));
        out.insert(
            "ExecutionMode".into(),
            json!(if self.auto_commit {
                "AUTO_COMMIT"
            } else {
                "TRANSACTION"
            }),
        );
        if let Some(error) = &self.error {
            out.insert("Error".into(), json!(error));
        }
        if !self.parameters.is_empty() {
            out.insert("QueryParameters".into(), self.parameters_json());
        }
        self.target_json(&mut out);
        if self.is_batch {
            let subs: Vec<Value> = self
                .subs
                .iter()
                .enumerate()
                .map(|(i, s)| s.describe_json(&format!("{}:{}", self.id, i + 1)))
                .collect();
            out.insert("SubStatements".into(), Value::Array(subs));
        }
        Value::Object(out)
    }

    fn parameters_json(&self) -> Value {
        Value::Array(
            self.parameters
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect(),
        )
    }

    /// The DescribeStatement response for one sub-statement id `<id>:<n>`.
    pub fn describe_sub_json(&self, index: usize) -> Option<Value> {
        let sub = self.subs.get(index)?;
        let mut out = sub.describe_json(&format!("{}:{}", self.id, index + 1));
        if let Some(obj) = out.as_object_mut() {
            self.target_json(obj);
            obj.insert("RedshiftPid".into(), json!(self.redshift_pid));
            obj.insert("ResultFormat".into(), json!("JSON"));
        }
        Some(out)
    }

    /// One entry of ListStatements.
    pub fn list_json(&self) -> Value {
        let mut out = json!({
            "Id": self.id,
            "Status": self.status.as_str(),
            "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at,
            "IsBatchStatement": self.is_batch,
            "ResultFormat": "JSON",
        });
        if let Some(obj) = out.as_object_mut() {
            if self.is_batch {
                obj.insert(
                    "QueryStrings".into(),
                    json!(self.subs.iter().map(|s| &s.query).collect::<Vec<_>>()),
                );
            } else {
                obj.insert("QueryString".into(), json!(self.query_string()));
            }
            if let Some(n) = &self.name {
                obj.insert("StatementName".into(), json!(n));
            }
            if let Some(s) = &self.secret_arn {
                obj.insert("SecretArn".into(), json!(s));
            }
            if !self.parameters.is_empty() {
                obj.insert("QueryParameters".into(), self.parameters_json());
            }
        }
        out
    }

    pub fn touch(&mut self) {
        self.updated_at = now_epoch();
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Whether a long-polling call on this statement (or on its sub-statement `sub`) is done
    /// waiting: the statement, or that sub-statement, is FINISHED, FAILED or ABORTED. An unknown
    /// sub-statement is done at once (the plain call then answers ResourceNotFound).
    pub fn wait_is_over(&self, sub: Option<usize>) -> bool {
        self.status.is_terminal()
            || sub.is_some_and(|i| self.subs.get(i).is_none_or(|s| s.status.is_terminal()))
    }

    /// Moves the whole statement to a terminal state and fixes its duration.
    pub fn finish(&mut self, status: Status, error: Option<String>) {
        self.status = status;
        self.error = error;
        self.duration_ns = Some(self.started.map_or(0, elapsed_ns));
        self.cancel_token = None;
        self.touch();
    }
}

impl SubStatement {
    pub fn start(&mut self, query_id: i64) {
        self.status = Status::Started;
        self.started = Some(Instant::now());
        self.redshift_query_id = query_id;
        self.updated_at = now_epoch();
    }

    pub fn finish(&mut self, status: Status, error: Option<String>) {
        self.status = status;
        self.error = error;
        self.duration_ns = Some(self.started.map_or(0, elapsed_ns));
        self.updated_at = now_epoch();
    }
}

/// Parsed `Id` of DescribeStatement / GetStatementResult / CancelStatement.
#[derive(Debug, PartialEq, Eq)]
pub struct StatementRef {
    pub id: String,
    /// Zero-based sub-statement index when the id had a `:<n>` suffix.
    pub sub: Option<usize>,
}

/// Checks an id against the service's pattern `^[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\d+)?$`.
pub fn parse_id(raw: &str) -> Result<StatementRef, ApiError> {
    let invalid = || {
        ApiError::validation(format!(
            "1 validation error detected: Value '{raw}' at 'id' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: \
             ^[a-z0-9]{{8}}(-[a-z0-9]{{4}}){{3}}-[a-z0-9]{{12}}(:\\d+)?$"
        ))
    };
    let (base, suffix) = match raw.split_once(':') {
        Some((b, s)) => (b, Some(s)),
        None => (raw, None),
    };
    let groups: Vec<&str> = base.split('-').collect();
    let lengths_ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n);
    let chars_ok = groups.iter().all(|g| {
        g.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    if !lengths_ok || !chars_ok {
        return Err(invalid());
    }
    let sub = match suffix {
        None => None,
        Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            let n: usize = s.parse().map_err(|_| invalid())?;
            Some(
                n.checked_sub(1)
                    .ok_or_else(|| ApiError::not_found("Query does not exist.", raw.to_string()))?,
            )
        }
        Some(_) => return Err(invalid()),
    };
    Ok(StatementRef {
        id: base.to_string(),
        sub,
    })
}

/// How long a `ClientToken` keeps answering with its statement (the service keeps tokens 8 hours).
pub const CLIENT_TOKEN_TTL: Duration = Duration::from_secs(8 * 3600);

/// One remembered `ClientToken`: the statement it started and a hash of the request.
struct TokenEntry {
    id: String,
    first_seen: Instant,
    fingerprint: u64,
}

/// What [`Store::admit`] did with a submission.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// A new statement was recorded (SUBMITTED); the caller must start it.
    New(String),
    /// The `ClientToken` was seen less than [`CLIENT_TOKEN_TTL`] ago: nothing was recorded and
    /// the caller answers with the statement the token started. `same_request` is false when
    /// the earlier request had different parameters.
    Replay { id: String, same_request: bool },
}

/// A submission's idempotency key: the client token and a hash of the request it came with.
#[derive(Clone, Debug)]
pub struct Idempotency<'a> {
    pub client_token: &'a str,
    pub fingerprint: u64,
}

/// How a [`Store::wait_for`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitEnd {
    /// The statement (or sub-statement) is in a terminal state, or unknown.
    Done,
    /// The wait time passed first; the statement is still in progress.
    TimedOut,
}

/// One counted waiting call; gives its place back however the wait ends (also when the request
/// is dropped, e.g. the client hung up).
struct WaitSlot<'a> {
    store: &'a Store,
    id: &'a str,
}

impl Drop for WaitSlot<'_> {
    fn drop(&mut self) {
        if let Some(st) = self.store.lock().get_mut(self.id) {
            st.waiting = st.waiting.saturating_sub(1);
        }
    }
}

#[derive(Default)]
pub struct Store {
    statements: Mutex<HashMap<String, Statement>>,
    /// Ids in insertion order (the index is the statement's sequence number), for ListStatements.
    order: Mutex<Vec<String>>,
    /// `ClientToken` → the statement it started. Always locked before `statements`.
    tokens: Mutex<HashMap<String, TokenEntry>>,
    next_query_id: AtomicI64,
    next_pid: AtomicI64,
    /// Data API calls received, by operation (`GET /_emulator/calls`; the benchmark reads it).
    calls: Mutex<std::collections::BTreeMap<String, u64>>,
}

fn unpoison<T>(result: std::sync::LockResult<MutexGuard<'_, T>>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another request panicked mid-update; the data is still usable.
    result.unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Store {
    pub fn new() -> Self {
        Self {
            next_query_id: AtomicI64::new(1000),
            next_pid: AtomicI64::new(1073000000),
            ..Self::default()
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, HashMap<String, Statement>> {
        unpoison(self.statements.lock())
    }

    pub fn next_query_id(&self) -> i64 {
        self.next_query_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Records a new statement in SUBMITTED state and returns its id (no token, no limit).
    pub fn insert(&self, new: NewStatement) -> String {
        let mut statements = self.lock();
        self.insert_locked(&mut statements, new)
    }

    /// Admits one submission atomically: a `ClientToken` seen within [`CLIENT_TOKEN_TTL`] of
    /// `now` answers with its statement (whatever its state, nothing new runs); otherwise the
    /// statement is recorded, unless `max_active` statements are already SUBMITTED, PICKED or
    /// STARTED (`ActiveStatementsExceededException`).
    pub fn admit(
        &self,
        new: NewStatement,
        idempotency: Option<Idempotency<'_>>,
        max_active: Option<usize>,
        now: Instant,
    ) -> Result<Admission, ApiError> {
        let mut tokens = unpoison(self.tokens.lock());
        tokens
            .retain(|_, entry| now.saturating_duration_since(entry.first_seen) < CLIENT_TOKEN_TTL);
        if let Some(key) = &idempotency {
            if let Some(entry) = tokens.get(key.client_token) {
                return Ok(Admission::Replay {
                    id: entry.id.clone(),
                    same_request: entry.fingerprint == key.fingerprint,
                });
            }
        }
        let mut statements = self.lock();
        if let Some(max) = max_active {
            let active = statements
                .values()
                .filter(|s| !s.status.is_terminal())
                .count();
            if active >= max {
                return Err(ApiError::ActiveStatementsExceeded(format!(
                    "Active statements exceeded the allowed quota ({max})."
                )));
            }
        }
        let id = self.insert_locked(&mut statements, new);
        if let Some(key) = idempotency {
            tokens.insert(
                key.client_token.to_string(),
                TokenEntry {
                    id: id.clone(),
                    first_seen: now,
                    fingerprint: key.fingerprint,
                },
            );
        }
        Ok(Admission::New(id))
    }

    fn insert_locked(
        &self,
        statements: &mut HashMap<String, Statement>,
        new: NewStatement,
    ) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_epoch();
        let subs = new
            .sqls
            .into_iter()
            .map(|(query, sql)| SubStatement {
                query,
                sql,
                status: Status::Submitted,
                error: None,
                created_at: now,
                updated_at: now,
                started: None,
                duration_ns: None,
                result_rows: -1,
                result_size: -1,
                redshift_query_id: 0,
                result: None,
            })
            .collect();
        let statement = Statement {
            id: id.clone(),
            name: new.name,
            is_batch: new.is_batch,
            auto_commit: new.auto_commit,
            target: new.target,
            database: new.database,
            db_user: new.db_user,
            secret_arn: new.secret_arn,
            with_event: new.with_event,
            status: Status::Submitted,
            error: None,
            created_at: now,
            updated_at: now,
            started: None,
            duration_ns: None,
            redshift_pid: self.next_pid.fetch_add(1, Ordering::Relaxed),
            parameters: new.parameters,
            subs,
            abort_requested: false,
            cancel_token: None,
            cancel_notify: Arc::new(Notify::new()),
            changed: watch::Sender::new(0),
            waiting: 0,
        };
        statements.insert(id.clone(), statement);
        unpoison(self.order.lock()).push(id.clone());
        id
    }

    /// (sequence number, id) of the statements older than sequence number `before` (all when
    /// `None`), newest first. Sequence numbers never change, so they make stable page cursors.
    pub fn ids_newest_first(&self, before: Option<usize>) -> Vec<(usize, String)> {
        let order = unpoison(self.order.lock());
        let end = before.map_or(order.len(), |b| b.min(order.len()));
        order[..end]
            .iter()
            .enumerate()
            .rev()
            .map(|(seq, id)| (seq, id.clone()))
            .collect()
    }

    /// Long polling (`WaitTimeSeconds`): returns once statement `id` (or its sub-statement `sub`)
    /// is FINISHED, FAILED or ABORTED, or when `wait` has passed, whichever comes first; at once
    /// when it already is (or is unknown: the plain call that follows answers for it). The wait
    /// is woken by the statement's own change notification ([`Statement::changed`]), never by a
    /// poll. With `max_waiting`, a call that would be the statement's `max_waiting + 1`-th
    /// waiting call is refused with `ActiveWaitingRequestsExceededException` before it waits.
    pub async fn wait_for(
        &self,
        id: &str,
        sub: Option<usize>,
        wait: Duration,
        max_waiting: Option<usize>,
    ) -> Result<WaitEnd, ApiError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut changed = {
            let mut statements = self.lock();
            let Some(st) = statements.get_mut(id) else {
                return Ok(WaitEnd::Done);
            };
            if st.wait_is_over(sub) {
                return Ok(WaitEnd::Done);
            }
            if let Some(max) = max_waiting {
                if st.waiting >= max {
                    return Err(ApiError::ActiveWaitingRequestsExceeded(format!(
                        "The number of active requests with WaitTimeSeconds for statement {id} \
                         exceeds the limit ({max})."
                    )));
                }
                st.waiting += 1;
            }
            st.changed.subscribe()
        };
        let _slot = max_waiting.map(|_| WaitSlot { store: self, id });
        loop {
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Err(_elapsed) => return Ok(WaitEnd::TimedOut),
                Ok(Err(_closed)) => return Ok(WaitEnd::Done),
                Ok(Ok(())) => {
                    if self.lock().get(id).is_none_or(|st| st.wait_is_over(sub)) {
                        return Ok(WaitEnd::Done);
                    }
                }
            }
        }
    }

    /// Counts one call of `operation` (whatever its outcome).
    pub fn count_call(&self, operation: &str) {
        *unpoison(self.calls.lock())
            .entry(operation.to_string())
            .or_default() += 1;
    }

    /// Calls received so far, by operation.
    pub fn calls(&self) -> std::collections::BTreeMap<String, u64> {
        unpoison(self.calls.lock()).clone()
    }

    /// Statements not yet in a terminal state.
    pub fn active_count(&self) -> usize {
        self.lock()
            .values()
            .filter(|s| !s.status.is_terminal())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_id_accepts_uuid_and_sub_suffix() {
        let id = "d9b6c0c9-0747-4bf4-b142-e8883122f766";
        assert_eq!(
            parse_id(id).expect("valid"),
            StatementRef {
                id: id.into(),
                sub: None
            }
        );
        assert_eq!(parse_id(&format!("{id}:2")).expect("valid").sub, Some(1));
    }

    #[test]
    fn parse_id_rejects_malformed_ids() {
        for bad in [
            "",
            "nope",
            "D9B6C0C9-0747-4BF4-B142-E8883122F766",
            "d9b6c0c9-0747-4bf4-b142-e8883122f766:",
            "d9b6c0c9-0747-4bf4-b142-e8883122f766:x",
            "d9b6c0c9-0747-4bf4-b142",
        ] {
            let err = parse_id(bad).expect_err(bad);
            assert_eq!(err.code(), "ValidationException", "{bad}");
        }
    }

    #[test]
    fn sub_index_zero_does_not_exist() {
        let err = parse_id("d9b6c0c9-0747-4bf4-b142-e8883122f766:0").expect_err("zero");
        assert_eq!(err.code(), "ResourceNotFoundException");
    }

    fn new_statement(sql: &str) -> NewStatement {
        NewStatement {
            name: None,
            is_batch: false,
            auto_commit: false,
            target: Target::Cluster("c".into()),
            database: "dev".into(),
            db_user: None,
            secret_arn: None,
            with_event: false,
            sqls: vec![(sql.into(), sql.into())],
            parameters: Vec::new(),
        }
    }

    fn token(t: &str, fingerprint: u64) -> Option<Idempotency<'_>> {
        Some(Idempotency {
            client_token: t,
            fingerprint,
        })
    }

    #[test]
    fn client_token_replays_within_eight_hours_and_expires_after() {
        let store = Store::new();
        let t0 = Instant::now();
        let Admission::New(first) = store
            .admit(new_statement("select 1"), token("tok", 1), None, t0)
            .expect("admitted")
        else {
            panic!("first use is new");
        };
        let again = store
            .admit(
                new_statement("select 1"),
                token("tok", 1),
                None,
                t0 + CLIENT_TOKEN_TTL - Duration::from_secs(1),
            )
            .expect("admitted");
        assert_eq!(
            again,
            Admission::Replay {
                id: first.clone(),
                same_request: true
            }
        );
        let other = store
            .admit(new_statement("select 2"), token("tok", 2), None, t0)
            .expect("admitted");
        assert_eq!(
            other,
            Admission::Replay {
                id: first.clone(),
                same_request: false
            },
            "different parameters still answer with the first statement"
        );
        assert_eq!(store.ids_newest_first(None).len(), 1);
        let later = store
            .admit(
                new_statement("select 1"),
                token("tok", 1),
                None,
                t0 + CLIENT_TOKEN_TTL,
            )
            .expect("admitted");
        assert!(
            matches!(&later, Admission::New(id) if *id != first),
            "{later:?}"
        );
        assert_eq!(store.ids_newest_first(None).len(), 2);
    }

    #[test]
    fn active_limit_counts_unfinished_statements_but_not_replays() {
        let store = Store::new();
        let now = Instant::now();
        let Ok(Admission::New(first)) =
            store.admit(new_statement("select 1"), token("a", 1), Some(1), now)
        else {
            panic!("first statement admitted");
        };
        let err = store
            .admit(new_statement("select 1"), token("b", 1), Some(1), now)
            .expect_err("over the limit");
        assert_eq!(err.code(), "ActiveStatementsExceededException");
        assert_eq!(
            store
                .admit(new_statement("select 1"), token("a", 1), Some(1), now)
                .expect("a replay starts nothing"),
            Admission::Replay {
                id: first.clone(),
                same_request: true
            }
        );
        if let Some(st) = store.lock().get_mut(&first) {
            st.finish(Status::Finished, None);
        }
        assert!(matches!(
            store.admit(new_statement("select 1"), token("b", 1), Some(1), now),
            Ok(Admission::New(_))
        ));
        // Unlimited: far more than the service's 200 may be active at once.
        for _ in 0..300 {
            assert!(matches!(
                store.admit(new_statement("select 1"), None, None, now),
                Ok(Admission::New(_))
            ));
        }
        assert!(store.active_count() >= 300);
    }

    #[test]
    fn sequence_cursor_lists_older_statements_newest_first() {
        let store = Store::new();
        let ids: Vec<String> = (0..3)
            .map(|_| store.insert(new_statement("select 1")))
            .collect();
        let all = store.ids_newest_first(None);
        assert_eq!(
            all.iter().map(|(_, id)| id.as_str()).collect::<Vec<_>>(),
            [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]
        );
        let older = store.ids_newest_first(Some(all[1].0));
        assert_eq!(older, vec![(0, ids[0].clone())]);
    }
}
