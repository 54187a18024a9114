//! OpenLineage run events (spec 2-0-2) for every step of every run: the event model, the names
//! (jobs, runs, datasets), the deterministic run ids, and the [`LineageSink`] the events go to.
//!
//! - **What is emitted when.** The submitter fixes the step's run ([`StepRun`], with the submit's
//!   time) and stores it with the statement's first token (a retry re-attaching by `ClientToken`
//!   keeps it: the same run). The one delivery that won the completion claim and marked the item
//!   completed (completer, reconciler, or the submitter's settle) sends, after it closed the task,
//!   the run's `START` (stamped with the submit's time) and its `COMPLETE`, `FAIL` or `ABORT`.
//!   A submit that does not close the task sends nothing: Step Functions ends a `lambda:invoke`
//!   Task only when the invocation has returned, so an event sent there would delay the step
//!   whenever the endpoint is slow (measured: 2.2 s per step against an endpoint that never
//!   answers). A submitter that closes the task itself sends the run after its callback, and the
//!   step then ends after the events ([`PAUSE_AFTER_FAILURE`] bounds what an outage costs).
//! - **Names.** Job namespace: the stack (`STACK_NAME`); job name: `<pipeline>.<step>`; the parent
//!   run facet names the execution (job `<pipeline>`, run id from the execution).
//!   The execution's own run ([`ExecutionRun`], sent by the reconciler from its status change event)
//!   is that parent.
//!   Datasets: namespace `redshift://<cluster-or-workgroup>.<region>:5439`, name
//!   `<database>.<schema>.<table>` ([`dataset_name`]).
//! - **Run ids** ([`step_run_id`], [`execution_run_id`]): UUID v5 (RFC 9562, SHA-1) of the
//!   execution ARN and, for a step, the step name, the Task entry's `$$.State.EnteredTime` and
//!   `$$.Execution.RedriveCount`: exactly what the statement's `ClientToken` is made of, so one
//!   statement is one run. A Step Functions retry of the same entry re-attaches to that statement
//!   and is the same run; a redrive or a new entry of the state (a loop) starts a new statement
//!   and a new run.
//! - **Transport** ([`HttpSink`]): one POST per event to exactly the configured URL, bounded by
//!   [`EMIT_TIMEOUT`]; a failure is logged (never the key or a token) and counted
//!   (`LineageEmitFailures`), never returned: [`Lineage::emit`] cannot fail a step. With an API key
//!   ([`KeySource`]: `OPENLINEAGE_API_KEY_SECRET_ARN`, [`SecretKey`]) each event carries
//!   `Authorization: Bearer <key>`; the key is read at the first event (never at start), inside that
//!   event's bound, kept, and read again after a failed read or a 401/403 answer.
//!
//! Lineage off (`OPENLINEAGE_URL` empty, the default) builds no HTTP client and no event:
//! [`Lineage::OFF`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use thiserror::Error;

/// The `schemaURL` of every event: the RunEvent of OpenLineage 2-0-2.
pub const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
/// The workspace's `repository` (`Cargo.toml`, `[workspace.package]`); empty when it names none.
const REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");
/// The project's home when the workspace names no `repository`.
pub const DEFAULT_REPOSITORY: &str =
    "https://github.com/redshift-etl-callback/redshift-etl-callback";

/// The `producer` of every event and facet: this code at this version,
/// `<repository>/tree/v<version>/functions/callback` ([`producer_url`] of the workspace's `repository`
/// and this crate's version).
pub fn producer() -> &'static str {
    static PRODUCER: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| producer_url(REPOSITORY, env!("CARGO_PKG_VERSION")));
    &PRODUCER
}

/// `<repository>/tree/v<version>/functions/callback`: the source of the code that builds the events,
/// at the tag of `version`. An empty `repository` is [`DEFAULT_REPOSITORY`].
pub fn producer_url(repository: &str, version: &str) -> String {
    let repository = repository.trim().trim_end_matches('/');
    let repository = repository.strip_suffix(".git").unwrap_or(repository);
    let repository = if repository.is_empty() {
        DEFAULT_REPOSITORY
    } else {
        repository
    };
    format!("{repository}/tree/v{version}/functions/callback")
}
/// The facets' schemas, as pinned in `tests/fixtures/openlineage/facets/`.
pub const PARENT_FACET_URL: &str =
    "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet";
pub const ERROR_FACET_URL: &str =
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
pub const OUTPUT_STATISTICS_FACET_URL: &str = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";
/// The port the OpenLineage naming spec puts into a Redshift dataset's namespace.
pub const REDSHIFT_PORT: u16 = 5439;
/// The longest an emission takes: connecting, sending and the answer.
pub const EMIT_TIMEOUT: Duration = Duration::from_secs(2);
/// Connecting alone (TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest `errorMessage` sent (the SQL error; the statement text is never sent).
pub const MAX_ERROR_MESSAGE_CHARS: usize = 4096;
/// The attribute of the rendezvous item holding the step's [`StepRun`] (JSON), written with the
/// token only when lineage is on.
pub const ITEM_ATTRIBUTE: &str = "lineage";

/// The name the run ids' UUID namespace is made from. Frozen: a run id never changes with an upgrade
/// or a move of the repository (every function, of any version, recomputes the same ids).
const RUN_ID_NAMESPACE_NAME: &[u8] =
    b"https://github.com/redshift-etl-callback/redshift-etl-callback";

/// The UUID namespace of this project's run ids: UUID v5 of the URL namespace and
/// [`RUN_ID_NAMESPACE_NAME`].
fn namespace() -> [u8; 16] {
    const URL_NAMESPACE: [u8; 16] = [
        0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30,
        0xc8,
    ];
    uuid_v5_bytes(&URL_NAMESPACE, RUN_ID_NAMESPACE_NAME)
}

fn uuid_v5_bytes(namespace: &[u8; 16], name: &[u8]) -> [u8; 16] {
    let mut hasher = Sha1::new();
    hasher.update(namespace);
    hasher.update(name);
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
}

/// UUID v5 (RFC 9562) of `name` in `namespace`, hyphenated lower-case hex.
pub fn uuid_v5(namespace: &[u8; 16], name: &str) -> String {
    let hex = hex::encode(uuid_v5_bytes(namespace, name.as_bytes()));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An event's time.
pub type Time = chrono::DateTime<chrono::Utc>;

/// Now, as an event's time.
pub fn now() -> Time {
    chrono::Utc::now()
}

/// An event's `eventTime`: RFC 3339, milliseconds, UTC.
pub fn event_time(time: Time) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The run id of a whole execution: from its ARN (`$$.Execution.Id`).
pub fn execution_run_id(execution: &str) -> String {
    uuid_v5(&namespace(), &format!("execution\n{execution}"))
}

/// The run id of one step's statement: the execution, the step, the Task entry
/// (`$$.State.EnteredTime`) and the redrive, as its `ClientToken`.
pub fn step_run_id(execution: &str, step: &str, state_entered_time: &str, redrive: u32) -> String {
    uuid_v5(
        &namespace(),
        &format!("step\n{execution}\n{step}\n{state_entered_time}\n{redrive}"),
    )
}

/// `redshift://<cluster-or-workgroup>.<region>:5439`, the OpenLineage naming spec's namespace of
/// a Redshift dataset.
pub fn redshift_namespace(cluster_or_workgroup: &str, region: &str) -> String {
    format!("redshift://{cluster_or_workgroup}.{region}:{REDSHIFT_PORT}")
}

/// `<database>.<schema>.<table>` of a table as the analysis names it (`schema.table`; a
/// three-part name is already qualified by its database and stays as it is).
pub fn dataset_name(database: &str, table: &str) -> String {
    if table.split('.').count() >= 3 {
        table.to_owned()
    } else {
        format!("{database}.{table}")
    }
}

/// The state machine's name in an execution ARN (`arn:…:execution:<state machine>:<name>`).
pub fn state_machine_of(execution_arn: &str) -> Option<&str> {
    let mut parts = execution_arn.rsplitn(3, ':');
    let _name = parts.next()?;
    let machine = parts.next()?;
    (!machine.is_empty() && parts.next()?.ends_with(":execution")).then_some(machine)
}

pub use crate::task::StepTables;

/// A dataset's identity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Dataset {
    pub namespace: String,
    pub name: String,
}

/// One step's run, fixed by the submitter and stored in the rendezvous item for whoever closes
/// the task: everything an event of this run needs but its type, time and outcome.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRun {
    /// The job namespace: the stack.
    pub namespace: String,
    /// `<pipeline>.<step>`.
    pub job: String,
    pub run_id: String,
    /// The execution's job (`<pipeline>`) and run id.
    pub parent_job: String,
    pub parent_run_id: String,
    pub inputs: Vec<Dataset>,
    pub outputs: Vec<Dataset>,
    /// When the submitter submitted the batch: the `START` event's `eventTime`.
    pub started_at: String,
    /// The database of the datasets, to match the rows written per table with them.
    pub database: String,
}

/// Where the statements run, for the datasets' namespace and names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warehouse {
    /// `redshift://<cluster-or-workgroup>.<region>:5439`.
    pub namespace: String,
    pub database: String,
}

impl StepRun {
    /// The run of `step` in the execution `execution` (its ARN, or its name for a definition
    /// without `$$.Execution.Id`) of `pipeline`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stack: &str,
        pipeline: &str,
        step: &str,
        execution: &str,
        state_entered_time: &str,
        redrive: u32,
        tables: &StepTables,
        warehouse: &Warehouse,
        started: Time,
    ) -> Self {
        let dataset = |table: &String| Dataset {
            namespace: warehouse.namespace.clone(),
            name: dataset_name(&warehouse.database, table),
        };
        Self {
            namespace: stack.to_owned(),
            job: format!("{pipeline}.{step}"),
            run_id: step_run_id(execution, step, state_entered_time, redrive),
            parent_job: pipeline.to_owned(),
            parent_run_id: execution_run_id(execution),
            inputs: tables.reads.iter().map(dataset).collect(),
            outputs: tables.writes.iter().map(dataset).collect(),
            started_at: event_time(started),
            database: warehouse.database.clone(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a StepRun always serializes")
    }

    /// The step's `START`, at the time the batch was submitted.
    pub fn start(&self) -> RunEvent {
        self.event(EventType::Start, self.started_at.clone(), None, None)
    }

    /// The step's terminal event, at `time`.
    pub fn end(&self, time: Time, end: &End) -> RunEvent {
        let time = event_time(time);
        match end {
            End::Complete { rows } => self.event(EventType::Complete, time, None, Some(rows)),
            End::Fail { message } => self.event(EventType::Fail, time, Some(message), None),
            End::Abort { message } => self.event(EventType::Abort, time, Some(message), None),
        }
    }

    fn event(
        &self,
        event_type: EventType,
        event_time: String,
        error: Option<&str>,
        rows: Option<&RowsWritten>,
    ) -> RunEvent {
        RunEvent {
            event_type,
            event_time,
            run: Run {
                run_id: self.run_id.clone(),
                facets: RunFacets {
                    parent: Some(ParentFacet {
                        producer: producer(),
                        schema_url: PARENT_FACET_URL,
                        run: RunRef {
                            run_id: self.parent_run_id.clone(),
                        },
                        job: JobRef {
                            namespace: self.namespace.clone(),
                            name: self.parent_job.clone(),
                        },
                    }),
                    error_message: error.map(ErrorFacet::new),
                },
            },
            job: JobRef {
                namespace: self.namespace.clone(),
                name: self.job.clone(),
            },
            inputs: self.inputs.clone(),
            outputs: self
                .outputs
                .iter()
                .map(|d| OutputDataset {
                    namespace: d.namespace.clone(),
                    name: d.name.clone(),
                    output_facets: rows
                        .and_then(|rows| {
                            rows.iter()
                                .find(|(table, _)| dataset_name(&self.database, table) == d.name)
                        })
                        .map(|(_, rows)| OutputFacets {
                            output_statistics: OutputStatistics {
                                producer: producer(),
                                schema_url: OUTPUT_STATISTICS_FACET_URL,
                                row_count: (*rows).max(0),
                            },
                        }),
                })
                .collect(),
            producer: producer(),
            schema_url: SCHEMA_URL,
        }
    }
}

/// The run of a whole execution: the pipeline's own job (`<pipeline>`, the job its steps' parent
/// facet names) with run id [`execution_run_id`]; no parent and no datasets (its steps carry them).
/// The reconciler sends it from the execution's status change event: `START` at its `startDate`, the
/// terminal event at its `stopDate`, once per ended attempt (a marker item in the token table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRun {
    /// The job namespace: the stack.
    pub namespace: String,
    /// The pipeline's name.
    pub job: String,
    pub run_id: String,
}

impl ExecutionRun {
    /// The run of execution `execution` (its ARN, `$$.Execution.Id`) of `pipeline` in `stack`.
    pub fn new(stack: &str, pipeline: &str, execution: &str) -> Self {
        Self {
            namespace: stack.to_owned(),
            job: pipeline.to_owned(),
            run_id: execution_run_id(execution),
        }
    }

    /// The execution's `START` at `time` (its `startDate`).
    pub fn start(&self, time: Time) -> RunEvent {
        self.event(EventType::Start, time, None)
    }

    /// The execution's terminal event at `time` (its `stopDate`); `Complete`'s rows are ignored
    /// (the execution has no datasets of its own).
    pub fn end(&self, time: Time, end: &End) -> RunEvent {
        match end {
            End::Complete { .. } => self.event(EventType::Complete, time, None),
            End::Fail { message } => self.event(EventType::Fail, time, Some(message)),
            End::Abort { message } => self.event(EventType::Abort, time, Some(message)),
        }
    }

    fn event(&self, event_type: EventType, time: Time, error: Option<&str>) -> RunEvent {
        RunEvent {
            event_type,
            event_time: event_time(time),
            run: Run {
                run_id: self.run_id.clone(),
                facets: RunFacets {
                    parent: None,
                    error_message: error.map(ErrorFacet::new),
                },
            },
            job: JobRef {
                namespace: self.namespace.clone(),
                name: self.job.clone(),
            },
            inputs: Vec::new(),
            outputs: Vec::new(),
            producer: producer(),
            schema_url: SCHEMA_URL,
        }
    }
}

/// Rows written per table (`schema.table` as the analysis names it).
pub type RowsWritten = std::collections::BTreeMap<String, i64>;

/// How a step's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// `rows`: the rows each table was written ([`crate::complete::rows_written`]), sent as the
    /// `outputStatistics.rowCount` of the output dataset of that table.
    Complete { rows: RowsWritten },
    /// The SQL error (or why the statement is lost), never the statement text or a token.
    Fail { message: String },
    /// Aborted, cancelled, or closed by Step Functions before the statement's outcome arrived.
    Abort { message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    Start,
    Complete,
    Fail,
    Abort,
}

/// An OpenLineage 2-0-2 `RunEvent`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvent {
    pub event_type: EventType,
    pub event_time: String,
    pub run: Run,
    pub job: JobRef,
    pub inputs: Vec<Dataset>,
    pub outputs: Vec<OutputDataset>,
    pub producer: &'static str,
    #[serde(rename = "schemaURL")]
    pub schema_url: &'static str,
}

impl RunEvent {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a RunEvent always serializes")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub run_id: String,
    pub facets: RunFacets,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunFacets {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentFacet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<ErrorFacet>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParentFacet {
    #[serde(rename = "_producer")]
    pub producer: &'static str,
    #[serde(rename = "_schemaURL")]
    pub schema_url: &'static str,
    pub run: RunRef,
    pub job: JobRef,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRef {
    pub run_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRef {
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorFacet {
    #[serde(rename = "_producer")]
    pub producer: &'static str,
    #[serde(rename = "_schemaURL")]
    pub schema_url: &'static str,
    pub message: String,
    /// What the error comes from: Redshift's SQL.
    pub programming_language: &'static str,
}

impl ErrorFacet {
    fn new(message: &str) -> Self {
        Self {
            producer: producer(),
            schema_url: ERROR_FACET_URL,
            message: crate::task::truncate(message, MAX_ERROR_MESSAGE_CHARS),
            programming_language: "SQL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputDataset {
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_facets: Option<OutputFacets>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputFacets {
    pub output_statistics: OutputStatistics,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputStatistics {
    #[serde(rename = "_producer")]
    pub producer: &'static str,
    #[serde(rename = "_schemaURL")]
    pub schema_url: &'static str,
    pub row_count: i64,
}

/// Why an event did not reach its destination. Never fails a step: [`Lineage::emit`] logs and
/// counts it.
#[derive(Debug, Error)]
pub enum LineageError {
    #[error("the lineage endpoint did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the lineage request failed")]
    Request(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the lineage endpoint answered HTTP {0}")]
    Status(u16),
    #[error("the lineage URL is not a valid http(s) URL")]
    InvalidUrl,
    #[error(
        "skipped: an event was not delivered less than {PAUSE_AFTER_FAILURE:?} ago ({0:?} left)"
    )]
    Paused(Duration),
    /// `GetSecretValue` of the API key's secret failed (not found, access denied, a KMS key the
    /// role may not decrypt with, throttled, unreachable): the message is the service's, never the
    /// secret.
    #[error("the OpenLineage API key's secret could not be read: {0}")]
    ApiKeyUnreadable(String),
    /// The secret was read, but holds no usable key (which rule it breaks; never its value).
    #[error("the OpenLineage API key's secret holds no usable key: {0}")]
    ApiKeyInvalid(&'static str),
}

impl LineageError {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "LineageTimeout",
            Self::Request(_) => "LineageRequestFailed",
            Self::Status(_) => "LineageRejected",
            Self::InvalidUrl => "LineageInvalidUrl",
            Self::Paused(_) => "LineageSkipped",
            Self::ApiKeyUnreadable(_) => "LineageApiKeyUnreadable",
            Self::ApiKeyInvalid(_) => "LineageApiKeyInvalid",
        }
    }
}

/// A boxed future of one emission.
pub type Emission<'a> = Pin<Box<dyn Future<Output = Result<(), LineageError>> + Send + 'a>>;

/// Where the events go: one call per event.
pub trait LineageSink: Send + Sync {
    fn send<'a>(&'a self, event: &'a RunEvent) -> Emission<'a>;
}

/// How long a function sends no event after one was not delivered: while the endpoint is down
/// or slow, a function pays [`EMIT_TIMEOUT`] at most once per pause, not on every close.
pub const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// The events of a function: a sink, or nothing when lineage is off.
#[derive(Clone)]
pub struct Lineage {
    sink: Option<Arc<dyn LineageSink>>,
    /// Until when events are skipped (counted as not delivered) after a failure.
    paused_until: Option<Arc<std::sync::Mutex<Option<std::time::Instant>>>>,
    /// The rows written per table of a finished batch; `None`: no row counts (the submitter,
    /// whose bootstrap the SQL analysis would take over its 8 MB target).
    rows: Option<RowCounter>,
}

/// Counts the rows a finished batch wrote per table ([`crate::complete::rows_written`]).
pub type RowCounter = fn(
    &aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput,
) -> RowsWritten;

impl fmt::Debug for Lineage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lineage")
            .field("on", &self.sink.is_some())
            .finish()
    }
}

impl Lineage {
    /// Lineage off: nothing is built, nothing is sent.
    pub const OFF: Lineage = Lineage {
        sink: None,
        paused_until: None,
        rows: None,
    };
    /// [`Lineage::OFF`] to borrow.
    pub fn off() -> &'static Lineage {
        &OFF
    }

    pub fn to(sink: Arc<dyn LineageSink>) -> Self {
        Self {
            sink: Some(sink),
            paused_until: Some(Arc::default()),
            rows: None,
        }
    }

    /// This lineage, with `COMPLETE` carrying the rows written per output (`rows`).
    pub fn counting_rows(self, rows: RowCounter) -> Self {
        Self {
            rows: Some(rows),
            ..self
        }
    }

    /// The rows `described` wrote per table, when this lineage counts them.
    pub fn rows_written(
        &self,
        described: &aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput,
    ) -> RowsWritten {
        match (self.is_on(), self.rows) {
            (true, Some(count)) => count(described),
            _ => RowsWritten::new(),
        }
    }

    /// The rest of the pause after a failure, if one is running.
    fn paused(&self) -> Option<Duration> {
        let until = (*self.paused_until.as_ref()?.lock().ok()?)?;
        until.checked_duration_since(std::time::Instant::now())
    }

    fn pause(&self) {
        if let Some(Ok(mut until)) = self.paused_until.as_ref().map(|p| p.lock()) {
            *until = Some(std::time::Instant::now() + PAUSE_AFTER_FAILURE);
        }
    }

    pub fn is_on(&self) -> bool {
        self.sink.is_some()
    }

    /// Sends `event`, bounded by [`EMIT_TIMEOUT`]; a failure is logged and counted, never
    /// returned, and pauses the sending for [`PAUSE_AFTER_FAILURE`] (an event in the pause is
    /// skipped, logged and counted the same way).
    pub async fn emit(&self, event: &RunEvent) {
        let Some(sink) = &self.sink else { return };
        let sent = match self.paused() {
            Some(rest) => Err(LineageError::Paused(rest)),
            None => match tokio::time::timeout(EMIT_TIMEOUT, sink.send(event)).await {
                Ok(sent) => sent,
                Err(_) => Err(LineageError::Timeout(EMIT_TIMEOUT)),
            },
        };
        if sent.is_err() && self.paused().is_none() {
            self.pause();
        }
        match sent {
            Ok(()) => tracing::debug!(job = %event.job.name, run_id = %event.run.run_id,
                                      event_type = ?event.event_type, "lineage event sent"),
            Err(err) => {
                let mut message = err.to_string();
                if let Some(source) = std::error::Error::source(&err) {
                    message.push_str(": ");
                    message.push_str(&source.to_string());
                }
                tracing::warn!(job = %event.job.name, run_id = %event.run.run_id,
                               event_type = ?event.event_type, error_type = err.name(),
                               error = %message, "lineage event not delivered");
                crate::metrics::lineage_emit_failure();
            }
        }
    }

    /// The step's run, as whoever closed its task sends it once the task is closed: its `START`
    /// (stamped with the submit's time) and its terminal event, if lineage is on and the task
    /// has a run.
    pub async fn ran(&self, run: Option<&StepRun>, end: &End) {
        if let (true, Some(run)) = (self.is_on(), run) {
            // Side by side: a slow endpoint costs one bound, not two.
            let (start, end) = (run.start(), run.end(now(), end));
            tokio::join!(self.emit(&start), self.emit(&end));
        }
    }
}

impl Lineage {
    /// A whole execution's run: its `START` at `started` and its terminal event at `ended`, side
    /// by side, if lineage is on.
    pub async fn execution_ran(&self, run: &ExecutionRun, started: Time, ended: Time, end: &End) {
        if self.is_on() {
            let (start, end) = (run.start(started), run.end(ended, end));
            tokio::join!(self.emit(&start), self.emit(&end));
        }
    }
}

/// Lineage off, to borrow for as long as needed.
pub static OFF: Lineage = Lineage::OFF;

/// An API key, never shown: sent as `Authorization: Bearer <key>`, what the OpenLineage clients'
/// HTTP transport sends for its `api_key` auth.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key as given; [`parse_api_key`] reads and checks one from a secret.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The longest API key accepted, in bytes.
pub const MAX_API_KEY_BYTES: usize = 4096;
/// The member of a JSON secret that holds the key: `{"apiKey": "<key>"}`.
pub const API_KEY_MEMBER: &str = "apiKey";

/// The API key in a secret's `SecretString`: either the key itself, or a JSON object whose string
/// member `apiKey` is the key (other members are ignored), as the Secrets Manager console's
/// key/value editor stores it. White space around the key is dropped. The key must be 1 to
/// [`MAX_API_KEY_BYTES`] visible ASCII characters (no space, no control character), so that it
/// always makes a valid header. A refusal says which rule the secret breaks, never its value.
pub fn parse_api_key(secret: &str) -> Result<ApiKey, LineageError> {
    let secret = secret.trim();
    let key = if secret.starts_with('{') {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(secret)
            // serde_json's message may quote the text: not passed on.
            .map_err(|_| LineageError::ApiKeyInvalid("it starts with `{` but is no JSON object"))?;
        match object.get(API_KEY_MEMBER) {
            Some(serde_json::Value::String(key)) => key.trim().to_owned(),
            Some(_) => {
                return Err(LineageError::ApiKeyInvalid(
                    "its JSON member `apiKey` is not a string",
                ))
            }
            None => {
                return Err(LineageError::ApiKeyInvalid(
                    "it is a JSON object without the member `apiKey`",
                ))
            }
        }
    } else {
        secret.to_owned()
    };
    if key.is_empty() {
        return Err(LineageError::ApiKeyInvalid("the key is empty"));
    }
    if key.len() > MAX_API_KEY_BYTES {
        return Err(LineageError::ApiKeyInvalid(
            "the key is longer than 4096 bytes",
        ));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(LineageError::ApiKeyInvalid(
            "the key has a character that is not visible ASCII (a space, a line break, a control or non-ASCII character)",
        ));
    }
    Ok(ApiKey(key))
}

/// A future of one read of the API key.
pub type KeyRead<'a> = Pin<Box<dyn Future<Output = Result<ApiKey, LineageError>> + Send + 'a>>;

/// Where an [`HttpSink`]'s API key comes from. [`HttpSink`] reads it at the first event that needs
/// it (never at start-up), keeps it for the life of the process, and reads it again only after a
/// failed read or an answer refusing it (401, 403).
pub trait KeySource: Send + Sync {
    fn read(&self) -> KeyRead<'_>;
}

/// A key known up front.
impl KeySource for ApiKey {
    fn read(&self) -> KeyRead<'_> {
        Box::pin(std::future::ready(Ok(self.clone())))
    }
}

/// The key in a Secrets Manager secret (`OPENLINEAGE_API_KEY_SECRET_ARN`, the template's
/// `OpenLineageApiKeySecretArn`), read with `GetSecretValue` and checked by [`parse_api_key`].
pub struct SecretKey {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretKey {
    /// The key of secret `secret_id` (its ARN), read with `client` ([`crate::aws::secrets_manager`]).
    /// Nothing is read here.
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

impl KeySource for SecretKey {
    fn read(&self) -> KeyRead<'_> {
        Box::pin(async move {
            let output = self
                .client
                .get_secret_value()
                .secret_id(&self.secret_id)
                .send()
                .await
                .map_err(|err| LineageError::ApiKeyUnreadable(error_chain(&err)))?;
            let secret = output.secret_string().ok_or(LineageError::ApiKeyInvalid(
                "the secret has no SecretString (a binary secret)",
            ))?;
            parse_api_key(secret)
        })
    }
}

/// An error and its sources, `: `-separated (Display only: an SDK error's Debug carries the raw
/// response).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An [`HttpSink`]'s key: its source and, once read, the key.
struct KeyCache {
    source: Box<dyn KeySource>,
    /// Held while the key is read: a step's two events, sent side by side, read it once.
    key: tokio::sync::Mutex<Option<ApiKey>>,
}

impl KeyCache {
    async fn get(&self) -> Result<ApiKey, LineageError> {
        let mut key = self.key.lock().await;
        if let Some(key) = key.as_ref() {
            return Ok(key.clone());
        }
        let read = self.source.read().await?;
        *key = Some(read.clone());
        Ok(read)
    }

    /// The endpoint refused the key: read it again next time (a rotated secret).
    async fn forget(&self) {
        *self.key.lock().await = None;
    }
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let read = self.key.try_lock().map(|k| k.is_some()).unwrap_or(false);
        f.debug_struct("KeyCache").field("read", &read).finish()
    }
}

/// HTTP POST of each event as JSON to one URL, on the SDK's own HTTP client stack (hyper,
/// rustls with ring): no second HTTP client in the binary.
#[derive(Debug)]
pub struct HttpSink {
    url: String,
    key: Option<KeyCache>,
    connector: aws_smithy_http_client::Connector,
}

impl HttpSink {
    /// A sink posting to `url` (`http://` or `https://`), with `Authorization: Bearer <key>`
    /// when a key source is given (read at the first event, not here).
    pub fn new(url: &str, key: Option<Box<dyn KeySource>>) -> Result<Self, LineageError> {
        let parsed: Result<aws_smithy_runtime_api::http::Request, _> = {
            let mut request = aws_smithy_runtime_api::http::Request::empty();
            request.set_uri(url).map(|()| request)
        };
        if parsed.is_err() || !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(LineageError::InvalidUrl);
        }
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        use aws_smithy_runtime_api::client::http::HttpConnectorSettings;
        let connector = aws_smithy_http_client::Connector::builder()
            .connector_settings(
                HttpConnectorSettings::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .read_timeout(EMIT_TIMEOUT)
                    .build(),
            )
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build();
        Ok(Self {
            url: url.to_owned(),
            key: key.map(|source| KeyCache {
                source,
                key: tokio::sync::Mutex::new(None),
            }),
            connector,
        })
    }

    async fn post(&self, event: &RunEvent) -> Result<(), LineageError> {
        use aws_smithy_runtime_api::client::http::HttpConnector;
        // The key first: an unreadable key sends nothing.
        let key = match &self.key {
            Some(cache) => Some(cache.get().await?),
            None => None,
        };
        let mut request = aws_smithy_runtime_api::http::Request::new(
            aws_smithy_types::body::SdkBody::from(event.to_json()),
        );
        request
            .set_uri(self.url.as_str())
            .map_err(|_| LineageError::InvalidUrl)?;
        request
            .set_method("POST")
            .map_err(|e| LineageError::Request(Box::new(e)))?;
        request
            .headers_mut()
            .insert("content-type", "application/json");
        if let Some(ApiKey(key)) = &key {
            request
                .headers_mut()
                .try_insert("authorization", format!("Bearer {key}"))
                // The header value is never shown: it holds the key.
                .map_err(|_| LineageError::ApiKeyInvalid("the key is not a valid header value"))?;
        }
        let response = self
            .connector
            .call(request)
            .await
            .map_err(|e| LineageError::Request(Box::new(e)))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            if matches!(status, 401 | 403) {
                if let Some(cache) = &self.key {
                    cache.forget().await;
                }
            }
            Err(LineageError::Status(status))
        }
    }
}

impl LineageSink for HttpSink {
    fn send<'a>(&'a self, event: &'a RunEvent) -> Emission<'a> {
        Box::pin(self.post(event))
    }
}

/// Keeps every event it is sent, for tests.
#[derive(Debug, Default)]
pub struct RecordingSink {
    events: std::sync::Mutex<Vec<RunEvent>>,
}

impl RecordingSink {
    pub fn events(&self) -> Vec<RunEvent> {
        self.events.lock().expect("not poisoned").clone()
    }
}

impl LineageSink for RecordingSink {
    fn send<'a>(&'a self, event: &'a RunEvent) -> Emission<'a> {
        self.events
            .lock()
            .expect("not poisoned")
            .push(event.clone());
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The endpoint: `OPENLINEAGE_URL` (empty or unset = lineage off), the template's `OpenLineageUrl`.
pub const URL_VAR: &str = "OPENLINEAGE_URL";
/// The API key's secret: `OPENLINEAGE_API_KEY_SECRET_ARN` (empty or unset = no key), the template's
/// `OpenLineageApiKeySecretArn`.
pub const API_KEY_SECRET_VAR: &str = "OPENLINEAGE_API_KEY_SECRET_ARN";

/// Lineage as `OPENLINEAGE_URL` and `OPENLINEAGE_API_KEY_SECRET_ARN` configure it ([`from_settings`]).
pub fn from_env(aws: &aws_types::SdkConfig) -> Result<Lineage, LineageError> {
    let var = |name| std::env::var(name).ok();
    from_settings(
        var(URL_VAR).as_deref(),
        var(API_KEY_SECRET_VAR).as_deref(),
        aws,
    )
}

/// Lineage to `url` ([`Lineage::OFF`] without one: no client, no secret read, ever) with the key
/// in secret `secret` when one is named: a Secrets Manager client from `aws`, nothing read until
/// the first event.
pub fn from_settings(
    url: Option<&str>,
    secret: Option<&str>,
    aws: &aws_types::SdkConfig,
) -> Result<Lineage, LineageError> {
    if url.map(str::trim).is_none_or(str::is_empty) {
        return Ok(Lineage::OFF);
    }
    let key = secret.map(str::trim).filter(|s| !s.is_empty()).map(|id| {
        Box::new(SecretKey::new(crate::aws::secrets_manager(aws), id)) as Box<dyn KeySource>
    });
    from_url(url, key)
}

/// Lineage to `url`: [`Lineage::OFF`] without one, else an [`HttpSink`] (built once per cold
/// start) with `key`'s key.
pub fn from_url(
    url: Option<&str>,
    key: Option<Box<dyn KeySource>>,
) -> Result<Lineage, LineageError> {
    match url.map(str::trim).filter(|u| !u.is_empty()) {
        None => Ok(Lineage::OFF),
        Some(url) => Ok(Lineage::to(Arc::new(HttpSink::new(url, key)?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const EXECUTION: &str =
        "arn:aws:states:us-east-1:123456789012:execution:SalesEtl-abc:local-2021-06-26-1";

    fn run() -> StepRun {
        StepRun::new(
            "redshift-etl",
            "sales",
            "LoadItem",
            EXECUTION,
            "2021-06-27T06:00:00.456Z",
            0,
            &StepTables {
                pipeline: Some("sales".into()),
                reads: vec!["public.stg_item".into(), "ext.db.src".into()],
                writes: vec!["public.item".into()],
            },
            &Warehouse {
                namespace: redshift_namespace("redshift-cluster-1", "us-east-1"),
                database: "dev".into(),
            },
            time(),
        )
    }

    fn time() -> Time {
        chrono::DateTime::parse_from_rfc3339("2021-06-27T06:00:01.5Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn uuid_v5_matches_the_rfc_example() {
        // RFC 9562 appendix A.4: UUIDv5 of "www.example.com" in the DNS namespace.
        let dns = [
            0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4,
            0x30, 0xc8,
        ];
        assert_eq!(
            uuid_v5(&dns, "www.example.com"),
            "2ed6657d-e927-568b-95e1-2665a8aea6a2"
        );
    }

    #[test]
    fn run_ids_are_stable_per_statement_and_differ_per_entry_redrive_and_step() {
        let id = step_run_id(EXECUTION, "LoadItem", "t1", 0);
        assert_eq!(id, step_run_id(EXECUTION, "LoadItem", "t1", 0));
        assert_ne!(id, step_run_id(EXECUTION, "LoadItem", "t2", 0));
        assert_ne!(id, step_run_id(EXECUTION, "LoadItem", "t1", 1));
        assert_ne!(id, step_run_id(EXECUTION, "LoadStore", "t1", 0));
        assert_ne!(id, execution_run_id(EXECUTION));
        assert_eq!(&id[14..15], "5", "a version 5 UUID: {id}");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }

    #[test]
    fn names_follow_the_openlineage_naming_spec_for_redshift() {
        assert_eq!(
            redshift_namespace("wg", "eu-west-1"),
            "redshift://wg.eu-west-1:5439"
        );
        assert_eq!(dataset_name("dev", "public.item"), "dev.public.item");
        assert_eq!(
            dataset_name("dev", "other.public.item"),
            "other.public.item"
        );
        assert_eq!(state_machine_of(EXECUTION), Some("SalesEtl-abc"));
        assert_eq!(state_machine_of("not-an-arn"), None);
    }

    #[test]
    fn a_start_event_is_exactly_the_2_0_2_run_event_expected() {
        let r = run();
        let json: serde_json::Value = serde_json::from_str(&r.start().to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "eventType": "START",
                "eventTime": "2021-06-27T06:00:01.500Z",
                "run": {"runId": r.run_id, "facets": {"parent": {
                    "_producer": producer(), "_schemaURL": PARENT_FACET_URL,
                    "run": {"runId": execution_run_id(EXECUTION)},
                    "job": {"namespace": "redshift-etl", "name": "sales"}}}},
                "job": {"namespace": "redshift-etl", "name": "sales.LoadItem"},
                "inputs": [
                    {"namespace": "redshift://redshift-cluster-1.us-east-1:5439", "name": "dev.public.stg_item"},
                    {"namespace": "redshift://redshift-cluster-1.us-east-1:5439", "name": "ext.db.src"}],
                "outputs": [{"namespace": "redshift://redshift-cluster-1.us-east-1:5439", "name": "dev.public.item"}],
                "producer": producer(),
                "schemaURL": SCHEMA_URL,
            })
        );
    }

    #[test]
    fn complete_carries_the_rows_written_to_each_output_and_fail_the_error() {
        let r = run();
        let done: serde_json::Value = serde_json::to_value(r.end(
            time(),
            &End::Complete {
                rows: RowsWritten::from([("public.item".to_owned(), 7)]),
            },
        ))
        .unwrap();
        assert_eq!(done["eventType"], "COMPLETE");
        let stats = &done["outputs"][0]["outputFacets"]["outputStatistics"];
        assert_eq!(stats["rowCount"], 7);
        assert_eq!(stats["_schemaURL"], OUTPUT_STATISTICS_FACET_URL);
        assert!(done["run"]["facets"].get("errorMessage").is_none());

        // Each output gets the rows written to its own table; one no statement wrote gets none.
        let mut two = r.clone();
        two.outputs.push(Dataset {
            namespace: two.outputs[0].namespace.clone(),
            name: "dev.sales.other".into(),
        });
        let rows = RowsWritten::from([("sales.other".to_owned(), 3), ("public.stg".to_owned(), 9)]);
        let done = serde_json::to_value(two.end(time(), &End::Complete { rows })).unwrap();
        assert!(done["outputs"][0].get("outputFacets").is_none(), "{done}");
        assert_eq!(
            done["outputs"][1]["outputFacets"]["outputStatistics"]["rowCount"],
            3
        );

        let failed = serde_json::to_value(r.end(
            time(),
            &End::Fail {
                message: "ERROR: relation \"stg_item\" does not exist".into(),
            },
        ))
        .unwrap();
        assert_eq!(failed["eventType"], "FAIL");
        let error = &failed["run"]["facets"]["errorMessage"];
        assert_eq!(
            error["message"],
            "ERROR: relation \"stg_item\" does not exist"
        );
        assert_eq!(error["programmingLanguage"], "SQL");
        assert_eq!(error["_schemaURL"], ERROR_FACET_URL);
        let aborted = serde_json::to_value(r.end(
            time(),
            &End::Abort {
                message: "x".repeat(10_000),
            },
        ))
        .unwrap();
        assert_eq!(aborted["eventType"], "ABORT");
        assert_eq!(
            aborted["run"]["facets"]["errorMessage"]["message"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            MAX_ERROR_MESSAGE_CHARS
        );
    }

    /// The events in `tests/fixtures/openlineage/events/` are exactly what this code sends, and
    /// `tests/test_openlineage_events.py` validates them against the pinned 2-0-2 schema and the
    /// facets' schemas. `UPDATE_LINEAGE_FIXTURES=1` rewrites them.
    #[test]
    fn the_events_are_the_fixtures_the_schema_test_validates() {
        let r = run();
        let end = time() + chrono::Duration::milliseconds(2_250);
        let events = [
            ("start", r.start()),
            (
                "complete",
                r.end(
                    end,
                    &End::Complete {
                        rows: RowsWritten::from([("public.item".to_owned(), 5)]),
                    },
                ),
            ),
            (
                "fail",
                r.end(
                    end,
                    &End::Fail {
                        message: "ERROR: relation \"stg_item\" does not exist".into(),
                    },
                ),
            ),
            (
                "abort",
                r.end(
                    end,
                    &End::Abort {
                        message: "the execution ended (ABORTED) while the statement ran".into(),
                    },
                ),
            ),
        ];
        // The execution's own run: no parent, no datasets; FAIL with the step and its SQL error.
        let execution = ExecutionRun::new("redshift-etl", "sales", EXECUTION);
        let events = events.into_iter().chain([
            ("execution-start", execution.start(time())),
            (
                "execution-fail",
                execution.end(
                    end,
                    &End::Fail {
                        message: "Redshift.StatementFailed: step LoadItem: ERROR: relation \"stg_item\" does not exist".into(),
                    },
                ),
            ),
        ]);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/openlineage/events");
        for (name, event) in events {
            let path = dir.join(format!("{name}.json"));
            let sent: serde_json::Value = serde_json::to_value(&event).unwrap();
            if std::env::var_os("UPDATE_LINEAGE_FIXTURES").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                let text = serde_json::to_string_pretty(&sent).unwrap() + "\n";
                std::fs::write(&path, text).unwrap();
            }
            let fixture: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(sent, fixture, "{}", path.display());
        }
    }

    #[test]
    fn the_stored_run_reads_back_the_same() {
        let r = run();
        assert_eq!(serde_json::from_str::<StepRun>(&r.to_json()).unwrap(), r);
    }

    #[test]
    fn lineage_off_builds_nothing_and_a_bad_url_is_refused() {
        assert!(!from_url(None, None).unwrap().is_on());
        assert!(!from_url(Some("  "), None).unwrap().is_on());
        assert!(matches!(
            from_url(Some("ftp://x/y"), None),
            Err(LineageError::InvalidUrl)
        ));
        assert!(from_url(Some("http://127.0.0.1:5000/api/v1/lineage"), None)
            .unwrap()
            .is_on());
    }

    /// A server answering every request with `status` after `delay`; returns its URL and the
    /// requests it read (head and body as text).
    async fn server(status: u16, delay: Duration) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1/lineage", listener.local_addr().unwrap());
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let mut read = 0;
                    loop {
                        let n = socket.read(&mut buf[read..]).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        read += n;
                        let text = String::from_utf8_lossy(&buf[..read]).to_string();
                        if let Some(head_end) = text.find("\r\n\r\n") {
                            let length = text[..head_end]
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length: ")
                                        .map(|v| v.trim().parse::<usize>().unwrap())
                                })
                                .unwrap_or(0);
                            if read >= head_end + 4 + length {
                                break;
                            }
                        }
                    }
                    log.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..read]).to_string());
                    tokio::time::sleep(delay).await;
                    let _ = socket
                        .write_all(
                            format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n").as_bytes(),
                        )
                        .await;
                });
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn an_event_is_posted_as_json_with_the_key_as_bearer_token() {
        let (url, seen) = server(201, Duration::ZERO).await;
        let sink = HttpSink::new(&url, Some(Box::new(ApiKey::new("s3cr3t")))).unwrap();
        let event = run().start();
        sink.send(&event).await.unwrap();
        let requests = seen.lock().unwrap().clone();
        assert_eq!(requests.len(), 1);
        let request = &requests[0];
        assert!(
            request.starts_with("POST /api/v1/lineage HTTP/1.1\r\n"),
            "{request}"
        );
        let lower = request.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: application/json\r\n"),
            "{request}"
        );
        assert!(
            request.contains("authorization: Bearer s3cr3t\r\n")
                || lower.contains("authorization: bearer s3cr3t\r\n")
        );
        let body = &request[request.find("\r\n\r\n").unwrap() + 4..];
        assert_eq!(body, event.to_json());
        assert!(
            !format!("{sink:?}").contains("s3cr3t"),
            "the key never shows"
        );
    }

    #[tokio::test]
    async fn a_server_error_a_slow_server_and_no_server_fail_within_the_bound_and_never_panic() {
        let event = run().start();
        let (url, _) = server(500, Duration::ZERO).await;
        let sink = HttpSink::new(&url, None).unwrap();
        assert!(matches!(
            sink.send(&event).await,
            Err(LineageError::Status(500))
        ));

        let (slow, _) = server(200, Duration::from_secs(10)).await;
        let lineage = Lineage::to(Arc::new(HttpSink::new(&slow, None).unwrap()));
        let started = Instant::now();
        lineage.emit(&event).await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took < EMIT_TIMEOUT + Duration::from_millis(500),
            "{took:?}"
        );

        // A step's two events go side by side: a slow endpoint costs one bound, not two; and the
        // pause then skips the next step's events at once.
        let lineage = Lineage::to(Arc::new(HttpSink::new(&slow, None).unwrap()));
        let started = Instant::now();
        lineage
            .ran(
                Some(&run()),
                &End::Complete {
                    rows: RowsWritten::new(),
                },
            )
            .await;
        let took = started.elapsed();
        assert!(took < EMIT_TIMEOUT + Duration::from_millis(500), "{took:?}");
        let started = Instant::now();
        lineage
            .ran(
                Some(&run()),
                &End::Complete {
                    rows: RowsWritten::new(),
                },
            )
            .await;
        assert!(started.elapsed() < Duration::from_millis(100), "paused");

        // A port nobody listens on: refused at once.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", closed.local_addr().unwrap());
        drop(closed);
        let sink = HttpSink::new(&url, None).unwrap();
        let started = Instant::now();
        assert!(matches!(
            sink.send(&event).await,
            Err(LineageError::Request(_))
        ));
        Lineage::to(Arc::new(sink)).emit(&event).await;
        assert!(started.elapsed() < EMIT_TIMEOUT + Duration::from_millis(500));
    }

    /// A sink that fails every event and counts the calls.
    #[derive(Default)]
    struct Down(std::sync::atomic::AtomicUsize);

    impl LineageSink for Down {
        fn send<'a>(&'a self, _: &'a RunEvent) -> Emission<'a> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(std::future::ready(Err(LineageError::Status(503))))
        }
    }

    #[tokio::test]
    async fn after_a_failure_events_are_skipped_for_the_pause_without_calling_the_endpoint() {
        let down = Arc::new(Down::default());
        let lineage = Lineage::to(down.clone());
        lineage
            .ran(
                Some(&run()),
                &End::Complete {
                    rows: RowsWritten::new(),
                },
            )
            .await;
        assert_eq!(
            down.0.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "a failure at once pauses the sending before the second event"
        );
        let rest = lineage.paused().expect("paused after the failure");
        assert!(rest > PAUSE_AFTER_FAILURE - Duration::from_secs(1));
        lineage
            .ran(
                Some(&run()),
                &End::Complete {
                    rows: RowsWritten::new(),
                },
            )
            .await;
        lineage.emit(&run().start()).await;
        assert_eq!(
            down.0.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "skipped in the pause"
        );
        // a clone is the same function: the same pause
        assert!(lineage.clone().paused().is_some());
        assert!(Lineage::OFF.paused().is_none());
    }

    #[tokio::test]
    async fn the_recording_sink_keeps_what_lineage_emits_and_off_emits_nothing() {
        let sink = Arc::new(RecordingSink::default());
        let on = Lineage::to(sink.clone());
        on.ran(
            Some(&run()),
            &End::Complete {
                rows: RowsWritten::new(),
            },
        )
        .await;
        on.ran(
            None,
            &End::Complete {
                rows: RowsWritten::new(),
            },
        )
        .await;
        Lineage::OFF
            .ran(
                Some(&run()),
                &End::Complete {
                    rows: RowsWritten::new(),
                },
            )
            .await;
        let events = sink.events();
        let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(types, [EventType::Start, EventType::Complete]);
        assert_eq!(
            events[0].event_time, "2021-06-27T06:00:01.500Z",
            "START at the submit"
        );
        assert!(events[1].event_time > events[0].event_time);
    }

    #[test]
    fn the_producer_is_this_code_at_this_version_in_the_workspaces_repository() {
        assert_eq!(
            producer(),
            format!(
                "{}/tree/v{}/functions/callback",
                env!("CARGO_PKG_REPOSITORY"),
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(
            producer().starts_with("https://github.com/"),
            "{}",
            producer()
        );
        assert_eq!(
            producer_url("https://github.com/o/r.git/", "1.2.3"),
            "https://github.com/o/r/tree/v1.2.3/functions/callback"
        );
        assert_eq!(
            producer_url(" ", "1.2.3"),
            format!("{DEFAULT_REPOSITORY}/tree/v1.2.3/functions/callback")
        );
    }

    #[test]
    fn an_api_key_secret_is_the_key_itself_or_json_with_api_key() {
        assert_eq!(parse_api_key("k-123").unwrap(), ApiKey::new("k-123"));
        assert_eq!(parse_api_key("  k-123\n").unwrap(), ApiKey::new("k-123"));
        assert_eq!(
            parse_api_key(r#"{"apiKey": "k-123", "note": "rotated monthly"}"#).unwrap(),
            ApiKey::new("k-123")
        );
        assert_eq!(
            parse_api_key(" {\"apiKey\":\" k-123 \"} ").unwrap(),
            ApiKey::new("k-123")
        );
    }

    #[test]
    fn a_secret_without_a_usable_key_is_refused_by_name_without_showing_it() {
        let secret_word = "hunter2hunter2";
        for (secret, rule) in [
            ("", "empty"),
            ("   ", "empty"),
            (r#"{"apiKey": ""}"#, "empty"),
            (
                r#"{"apikey": "hunter2hunter2"}"#,
                "without the member `apiKey`",
            ),
            (r#"{"apiKey": ["hunter2hunter2"]}"#, "not a string"),
            (r#"{"apiKey": 4242424242}"#, "not a string"),
            (r#"{"apiKey": "hunter2hunter2""#, "no JSON object"),
            ("hunter2 hunter2hunter2", "not visible ASCII"),
            ("hunter2hunter2\r\nX-Injected: 1", "not visible ASCII"),
            ("hunter2hunter2\u{e9}", "not visible ASCII"),
        ] {
            let err = parse_api_key(secret).unwrap_err();
            assert_eq!(err.name(), "LineageApiKeyInvalid", "{secret:?}");
            let text = err.to_string();
            assert!(text.contains(rule), "{secret:?}: {text}");
            assert!(
                !text.contains(secret_word) && !text.contains("4242"),
                "{text}"
            );
        }
        let long = "k".repeat(MAX_API_KEY_BYTES + 1);
        assert!(matches!(
            parse_api_key(&long),
            Err(LineageError::ApiKeyInvalid(_))
        ));
        assert!(parse_api_key(&long[1..]).is_ok());
    }

    fn secrets(rule: &aws_smithy_mocks::Rule) -> aws_sdk_secretsmanager::Client {
        aws_smithy_mocks::mock_client!(aws_sdk_secretsmanager, [rule])
    }

    const SECRET_ARN: &str =
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:openlineage-key-AbCdEf";

    #[tokio::test]
    async fn the_key_is_read_from_the_secret_by_its_arn() {
        use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
        let rule = aws_smithy_mocks::mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .match_requests(|r| r.secret_id() == Some(SECRET_ARN))
            .then_output(|| {
                GetSecretValueOutput::builder()
                    .secret_string(r#"{"apiKey":"k-123"}"#)
                    .build()
            });
        let key = SecretKey::new(secrets(&rule), SECRET_ARN)
            .read()
            .await
            .unwrap();
        assert_eq!(key, ApiKey::new("k-123"));
        assert_eq!(rule.num_calls(), 1);

        let binary = aws_smithy_mocks::mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .then_output(|| {
                GetSecretValueOutput::builder()
                    .secret_binary(aws_smithy_types::Blob::new("k-123"))
                    .build()
            });
        let err = SecretKey::new(secrets(&binary), SECRET_ARN)
            .read()
            .await
            .unwrap_err();
        assert_eq!(err.name(), "LineageApiKeyInvalid", "{err}");
    }

    #[tokio::test]
    async fn a_secret_that_cannot_be_read_is_a_named_error_with_the_services_message() {
        use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
        use aws_sdk_secretsmanager::types::error::ResourceNotFoundException;
        let rule = aws_smithy_mocks::mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .then_error(|| {
                GetSecretValueError::ResourceNotFoundException(
                    ResourceNotFoundException::builder()
                        .message("Secrets Manager can't find the specified secret.")
                        .build(),
                )
            });
        let err = SecretKey::new(secrets(&rule), SECRET_ARN)
            .read()
            .await
            .unwrap_err();
        assert_eq!(err.name(), "LineageApiKeyUnreadable");
        assert!(
            err.to_string()
                .contains("Secrets Manager can't find the specified secret."),
            "{err}"
        );
    }

    /// A key source that counts its reads and fails the first `failures` of them.
    struct Counted {
        reads: Arc<std::sync::atomic::AtomicUsize>,
        failures: usize,
    }

    impl KeySource for Counted {
        fn read(&self) -> KeyRead<'_> {
            let n = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(std::future::ready(if n < self.failures {
                Err(LineageError::ApiKeyUnreadable(
                    "AccessDeniedException".into(),
                ))
            } else {
                Ok(ApiKey::new(format!("k-{n}")))
            }))
        }
    }

    fn counted(failures: usize) -> (Box<dyn KeySource>, Arc<std::sync::atomic::AtomicUsize>) {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let source = Counted {
            reads: reads.clone(),
            failures,
        };
        (Box::new(source), reads)
    }

    fn reads(n: &std::sync::atomic::AtomicUsize) -> usize {
        n.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test]
    async fn the_key_is_read_at_the_first_event_once_and_kept() {
        let (url, seen) = server(201, Duration::ZERO).await;
        let (source, n) = counted(0);
        let sink = HttpSink::new(&url, Some(source)).unwrap();
        let lineage = Lineage::to(Arc::new(sink));
        assert_eq!(reads(&n), 0, "not read before the first event");
        // a step's two events, side by side: one read
        lineage
            .ran(
                Some(&run()),
                &End::Complete {
                    rows: RowsWritten::new(),
                },
            )
            .await;
        lineage.emit(&run().start()).await;
        assert_eq!(reads(&n), 1);
        let requests = seen.lock().unwrap().clone();
        assert_eq!(requests.len(), 3);
        for request in requests {
            assert!(
                request
                    .to_ascii_lowercase()
                    .contains("authorization: bearer k-0\r\n"),
                "{request}"
            );
        }
    }

    #[tokio::test]
    async fn an_unreadable_key_sends_nothing_pauses_and_is_read_again_after_the_pause() {
        let (url, seen) = server(201, Duration::ZERO).await;
        let (source, n) = counted(1);
        let sink = HttpSink::new(&url, Some(source)).unwrap();
        let err = sink.send(&run().start()).await.unwrap_err();
        assert_eq!(err.name(), "LineageApiKeyUnreadable");
        assert!(
            seen.lock().unwrap().is_empty(),
            "no request without its key"
        );

        // Through Lineage: the failure pauses the sending (the events of the pause are skipped
        // without a read); the first event after it reads the key again.
        let (source, n2) = counted(1);
        let lineage = Lineage::to(Arc::new(HttpSink::new(&url, Some(source)).unwrap()));
        let started = Instant::now();
        lineage.emit(&run().start()).await;
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(
            lineage.paused().is_some(),
            "a failed read pauses like a failed POST"
        );
        lineage.emit(&run().start()).await;
        assert_eq!(reads(&n2), 1, "skipped in the pause: no read");
        *lineage.paused_until.as_ref().unwrap().lock().unwrap() = None; // the pause is over
        lineage.emit(&run().start()).await;
        assert_eq!(reads(&n2), 2);
        assert_eq!(seen.lock().unwrap().len(), 1, "sent with the key read");
        // the plain sink too: the next send reads again
        sink.send(&run().start()).await.unwrap();
        assert_eq!(reads(&n), 2);
    }

    #[tokio::test]
    async fn a_refused_key_is_read_again_for_the_next_event() {
        let (url, _) = server(401, Duration::ZERO).await;
        let (source, n) = counted(0);
        let sink = HttpSink::new(&url, Some(source)).unwrap();
        assert!(matches!(
            sink.send(&run().start()).await,
            Err(LineageError::Status(401))
        ));
        assert!(sink.send(&run().start()).await.is_err());
        assert_eq!(
            reads(&n),
            2,
            "a 401 drops the key (a rotated secret is read again)"
        );

        let (url, _) = server(500, Duration::ZERO).await;
        let (source, n) = counted(0);
        let sink = HttpSink::new(&url, Some(source)).unwrap();
        assert!(sink.send(&run().start()).await.is_err());
        assert!(sink.send(&run().start()).await.is_err());
        assert_eq!(reads(&n), 1, "another failure keeps it");
    }

    #[test]
    fn without_a_url_no_secret_client_is_built_and_with_one_nothing_is_read() {
        let aws = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        assert!(!from_settings(None, Some(SECRET_ARN), &aws).unwrap().is_on());
        assert!(!from_settings(Some(" "), Some(SECRET_ARN), &aws)
            .unwrap()
            .is_on());
        // Not async: building lineage with a secret cannot read it (no runtime, no request).
        let on = from_settings(
            Some("http://127.0.0.1:9/api/v1/lineage"),
            Some(SECRET_ARN),
            &aws,
        )
        .unwrap();
        assert!(on.is_on());
        assert!(from_settings(Some("http://127.0.0.1:9/"), Some(" "), &aws)
            .unwrap()
            .is_on());
    }
}
