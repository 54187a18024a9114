//! The submitter: starts a step's SQL script as one Data API batch and parks the task token in the
//! rendezvous table until the statement's status event arrives.
//!
//! With `SUBMIT_WAIT_SECONDS` above 0 (the template's `SubmitWaitSeconds`, 0 to 30; 0 = no
//! wait) the batch is started with that `WaitTimeSeconds`: when the Data API answers that the
//! batch has already ended, the submitter records its state in the rendezvous item as the status
//! event would and closes the task itself, through the same settle path as the completer
//! (`completedBy` `submitter-wait`).
//! A wait the Data API refuses (`ActiveWaitingRequestsExceededException`, throttling) or that
//! times out falls back to a plain submit under the same `ClientToken`, which answers with the
//! statement if the waited call started it: a wait never starts a second statement and never fails
//! the step.

use aws_sdk_redshiftdata::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_redshiftdata::operation::batch_execute_statement::{
    BatchExecuteStatementError, BatchExecuteStatementOutput,
};
use aws_sdk_redshiftdata::types::StatementStatusString;
use aws_sdk_s3::operation::get_object::GetObjectError;
use etl_callback::aws;
use etl_callback::check::{self, CheckError, StoredCheck};
use etl_callback::complete::{CompleteError, Completion, TaskClients};
use etl_callback::config::{self, ConfigError, TableSettings, Vars};
use etl_callback::event::{StatementState, StatementStatusChange};
use etl_callback::lineage::{self, Lineage, StepRun, Warehouse};
use etl_callback::script::{self, ScriptError};
use etl_callback::store::{Outcome, Recorded, Side, StoreError, TokenTable, WaitWrite};
use etl_callback::task::{client_token, script_key, statement_name, InputError, Task, TaskInput};
use etl_callback::throttle::{Throttling, THROTTLING_EXCEPTION};
use serde::Serialize;
use thiserror::Error;
use tracing::{info, warn};

pub mod run_lock;
use run_lock::{RunLockError, RunLockSettings};

type HttpResponse = aws_smithy_runtime_api::http::Response;

/// Where the statements run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A provisioned cluster, authenticated as a database user or with a Secrets Manager secret.
    Cluster {
        id: String,
        db_user: Option<String>,
        secret_arn: Option<String>,
    },
    /// A Redshift Serverless workgroup, authenticated as the caller or with a secret.
    Workgroup {
        name: String,
        secret_arn: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub token_table: TableSettings,
    pub scripts_bucket: String,
    pub scripts_prefix: String,
    pub statement_name_prefix: String,
    pub database: String,
    pub target: Target,
    /// The run lock a redriven attempt takes before it submits ([`run_lock`]); `None` without
    /// `RUN_LOCK_TABLE`.
    pub run_lock: Option<RunLockSettings>,
    /// `WaitTimeSeconds` of the submit (`SUBMIT_WAIT_SECONDS`, 0 to
    /// [`aws::REDSHIFT_DATA_MAX_WAIT_SECONDS`]); 0 submits without a wait.
    pub submit_wait_seconds: u32,
    /// OpenLineage events (`OPENLINEAGE_URL`); `None` (the default) emits nothing.
    pub lineage: Option<LineageConfig>,
    /// The deployment's variables (`PIPELINE_VARS`, the template's `PipelineVars`): a JSON object
    /// as text, checked against the pipeline's declarations by [`Submitter::resolve_vars`] for
    /// every run (a bad value fails each run before its lock with `InvalidPipelineVars`, and
    /// never the function's start). Unset or empty: `{}`.
    pub pipeline_vars: String,
}

/// Where the steps' OpenLineage events go and how they are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageConfig {
    /// `OPENLINEAGE_URL`: an `http://` or `https://` URL each event is POSTed to.
    pub url: String,
    /// `STACK_NAME`: the jobs' namespace.
    pub stack: String,
    /// `AWS_REGION`: part of the datasets' namespace.
    pub region: String,
    /// `OPENLINEAGE_API_KEY_SECRET_ARN`: the secret holding the endpoint's API key (read at the
    /// first event, [`lineage::SecretKey`]); `None`: no key.
    pub api_key_secret: Option<String>,
}

impl Config {
    /// The datasets' namespace and database: `redshift://<cluster-or-workgroup>.<region>:5439`.
    pub fn warehouse(&self, region: &str) -> Warehouse {
        let target = match &self.target {
            Target::Cluster { id, .. } => id,
            Target::Workgroup { name, .. } => name,
        };
        Warehouse {
            namespace: lineage::redshift_namespace(target, region),
            database: self.database.clone(),
        }
    }
}

fn read_lineage<F: Fn(&str) -> Option<String>>(vars: &mut Vars<F>) -> Option<LineageConfig> {
    let url = vars.optional(lineage::URL_VAR)?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        vars.problem(format!(
            "{} must be an http:// or https:// URL (or empty for no lineage)",
            lineage::URL_VAR
        ));
    }
    let stack = vars.required("STACK_NAME");
    let region = vars.required("AWS_REGION");
    let api_key_secret = vars.optional(lineage::API_KEY_SECRET_VAR);
    Some(LineageConfig {
        url,
        stack,
        region,
        api_key_secret,
    })
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(config::env())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(Vars::new(lookup))
    }

    fn read<F: Fn(&str) -> Option<String>>(mut vars: Vars<F>) -> Result<Self, ConfigError> {
        let token_table = TableSettings::read(&mut vars);
        let scripts_bucket = vars.required("SCRIPTS_BUCKET");
        let scripts_prefix = vars.optional("SCRIPTS_PREFIX").unwrap_or_default();
        let statement_name_prefix = vars.required("STATEMENT_NAME_PREFIX");
        let database = vars.required("REDSHIFT_DATABASE");
        let secret_arn = vars.optional("REDSHIFT_SECRET_ARN");
        let db_user = vars.optional("REDSHIFT_DB_USER");
        let target = match (
            vars.optional("REDSHIFT_CLUSTER_ID"),
            vars.optional("REDSHIFT_WORKGROUP"),
        ) {
            (Some(id), None) => {
                if db_user.is_some() && secret_arn.is_some() {
                    vars.problem("set REDSHIFT_DB_USER or REDSHIFT_SECRET_ARN, not both");
                }
                Target::Cluster {
                    id,
                    db_user,
                    secret_arn,
                }
            }
            (None, Some(name)) => {
                if db_user.is_some() {
                    vars.problem(
                        "REDSHIFT_DB_USER applies to a cluster, not to REDSHIFT_WORKGROUP",
                    );
                }
                Target::Workgroup { name, secret_arn }
            }
            _ => {
                vars.problem("set exactly one of REDSHIFT_CLUSTER_ID and REDSHIFT_WORKGROUP");
                Target::Workgroup {
                    name: String::new(),
                    secret_arn,
                }
            }
        };
        let run_lock = RunLockSettings::read(&mut vars);
        let submit_wait_seconds = read_submit_wait(&mut vars);
        let lineage = read_lineage(&mut vars);
        let pipeline_vars = vars
            .optional("PIPELINE_VARS")
            .unwrap_or_else(|| "{}".to_owned());
        vars.finish()?;
        Ok(Self {
            lineage,
            pipeline_vars,
            run_lock,
            submit_wait_seconds,
            token_table,
            scripts_bucket,
            scripts_prefix,
            statement_name_prefix,
            database,
            target,
        })
    }
}

/// The run's variables: the declared defaults, then the deployment's `PIPELINE_VARS`, then the
/// execution input's `vars`; only declared names, each valid for its type and for the literals
/// it stands in. A bad run value is `InvalidInput`, a bad deployment value `InvalidPipelineVars`.
pub fn resolve_vars(
    pipeline_vars: &str,
    declared: &serde_json::Value,
    execution_input: Option<&serde_json::Value>,
) -> Resolved {
    let refuse = |error: &'static str, cause: String| Resolved::Refused(Refused { error, cause });
    let declared = match etl_callback::vars::parse_declared(declared) {
        Ok(declared) => declared,
        Err(reason) => {
            return refuse(
                "InvalidInput",
                format!("the state machine's variable declarations are invalid: {reason}"),
            )
        }
    };
    let deployment: serde_json::Value = match serde_json::from_str(pipeline_vars) {
        Ok(value @ serde_json::Value::Object(_)) => value,
        _ => {
            return refuse(
                "InvalidPipelineVars",
                "the template parameter PipelineVars is not a JSON object such as {\"schema\": \"dev\"}; nothing was run".into(),
            )
        }
    };
    if let Err(e) = etl_callback::vars::resolve(
        &declared,
        &[("the template parameter PipelineVars", Some(&deployment))],
    ) {
        return refuse("InvalidPipelineVars", format!("{e}; nothing was run"));
    }
    let run = execution_input.and_then(|input| input.get("vars"));
    match etl_callback::vars::resolve(
        &declared,
        &[
            ("the template parameter PipelineVars", Some(&deployment)),
            ("the execution input's vars", run),
        ],
    ) {
        Ok(values) => Resolved::Vars(
            values
                .into_iter()
                .map(|(name, value)| (name, value.to_json()))
                .collect(),
        ),
        Err(e) => refuse("InvalidInput", format!("{e}; nothing was run")),
    }
}

/// `SUBMIT_WAIT_SECONDS`: unset or empty is 0 (no wait).
fn read_submit_wait<F: Fn(&str) -> Option<String>>(vars: &mut Vars<F>) -> u32 {
    let max = aws::REDSHIFT_DATA_MAX_WAIT_SECONDS;
    match vars
        .optional("SUBMIT_WAIT_SECONDS")
        .map(|v| v.parse::<u32>())
    {
        None => 0,
        Some(Ok(seconds)) if u64::from(seconds) <= max => seconds,
        Some(_) => {
            vars.problem(format!(
                "SUBMIT_WAIT_SECONDS must be a whole number of seconds from 0 to {max}"
            ));
            0
        }
    }
}

#[derive(Debug, Error)]
pub enum SubmitError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("script s3://{bucket}/{key} does not exist")]
    ScriptNotFound { bucket: String, key: String },
    /// S3 answered 403 AccessDenied. S3 answers so for a key that does not exist, too, when the
    /// caller may not list the bucket (s3:ListBucket for the key's prefix): only with that
    /// permission is a missing script a 404 NoSuchKey, `ScriptNotFound`.
    #[error(
        "access denied reading script s3://{bucket}/{key}: the submitter's role may be missing a \
         permission, s3:GetObject on the key or s3:ListBucket on the bucket for the scripts prefix \
         (without which S3 reports a script that does not exist as AccessDenied instead of NoSuchKey)"
    )]
    ScriptAccessDenied {
        bucket: String,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("could not read script s3://{bucket}/{key}")]
    ScriptRead {
        bucket: String,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("script {script} cannot be submitted")]
    Script {
        script: String,
        #[source]
        source: ScriptError,
    },
    #[error("the Data API is at its limit of active statements or throttled the request")]
    RedshiftThrottled(#[source] Box<SdkError<BatchExecuteStatementError, HttpResponse>>),
    #[error("the Data API refused BatchExecuteStatement")]
    RedshiftRequestFailed(#[source] Box<SdkError<BatchExecuteStatementError, HttpResponse>>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Complete(#[from] CompleteError),
    #[error(transparent)]
    RunLock(#[from] RunLockError),
    /// A check's SQL is not one SELECT.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// `ResolveVars` refused a variable (`InvalidInput`, `InvalidPipelineVars`).
    #[error("{}", .0.cause)]
    VarsRefused(Refused),
}

impl SubmitError {
    /// The stable error name Step Functions `Retry`/`Catch` match on.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Input(e) => e.name(),
            Self::ScriptNotFound { .. } => "ScriptNotFound",
            Self::ScriptRead { .. } | Self::ScriptAccessDenied { .. } => "ScriptReadFailed",
            Self::Script { source, .. } => source.name(),
            Self::RedshiftThrottled(_) => "RedshiftThrottled",
            Self::RedshiftRequestFailed(_) => "RedshiftRequestFailed",
            Self::Store(e) => e.name(),
            Self::Complete(e) => e.name(),
            Self::RunLock(e) => e.name(),
            Self::Check(e) => e.name(),
            Self::VarsRefused(refused) => refused.error,
        }
    }
}

/// What the submitter returns to its caller (Step Functions ignores it; it helps `sam local invoke`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Submitted {
    pub statement_id: String,
    pub statement_name: String,
    pub step: String,
    pub run_date: String,
    pub statements: usize,
    /// The Task attempt (`$$.State.RetryCount`) this invocation served.
    pub attempt: u32,
    /// `Stored`, `Reattached` (a retry found the statement its first attempt started) or
    /// `Redelivered` (the same token again).
    pub recorded: String,
    pub completion: String,
    /// What the submit's wait saw ([`Wait`]): `Off`, `Ended(Finished)`, `NotEnded`, `FellBack`.
    pub wait: String,
}

/// What the submit's wait (`WaitTimeSeconds`) told about the new statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// No wait configured.
    Off,
    /// The batch had ended (FINISHED, FAILED or ABORTED) when the Data API answered.
    Ended(StatementState),
    /// The wait ran out (or the answer had no terminal status): the status event closes the task.
    NotEnded,
    /// The waited call failed (waiting-requests limit, throttling, timeout); the plain submit
    /// under the same `ClientToken` gave the statement, and the status event closes the task.
    FellBack,
}

/// The statement a submit started (or, under a `ClientToken` seen before, had started) and what
/// its wait saw.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Started {
    id: String,
    wait: Wait,
}

/// The submitter and the clients it uses: S3 for the script, the Data API for the batch, the
/// token table for the rendezvous, and Step Functions (with the two before) to close a task whose
/// status event arrived first.
pub struct Submitter {
    pub config: Config,
    pub s3: aws_sdk_s3::Client,
    pub redshift_data: aws_sdk_redshiftdata::Client,
    pub table: TokenTable,
    pub sfn: aws_sdk_sfn::Client,
    /// Where the steps' OpenLineage events go ([`Lineage::OFF`] without `OPENLINEAGE_URL`).
    pub lineage: Lineage,
}

/// The payload of the state machine's `ResolveVars` state (before the run lock): the pipeline's
/// declarations (from the definition) and the execution input, whose `vars` are the run's.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResolveVars {
    declared: serde_json::Value,
    #[serde(default)]
    execution_input: Option<serde_json::Value>,
    /// The run date as the state machine read it, handed back unchanged (the submitter of each
    /// step validates it): `ResolveVars` builds the run's state in place of `Settings`.
    #[serde(default)]
    run_date: Option<serde_json::Value>,
}

/// A refused variable: the error `ResolveVars` fails with, and its cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    #[serde(rename = "Error")]
    pub error: &'static str,
    #[serde(rename = "Cause")]
    pub cause: String,
}

/// The outcome of resolving a run's variables: its values, or why the run cannot start (the
/// `ResolveVars` Task then fails with that error, which the state machine catches and sends to
/// `RunFailed` before the run lock and before any SQL).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Resolved {
    Vars(serde_json::Map<String, serde_json::Value>),
    Refused(Refused),
}

impl Submitter {
    /// The step's OpenLineage run, started at `submitted` (the `START` event's time); `None` while
    /// lineage is off (no work at all then) or when neither the payload nor the execution names
    /// the pipeline.
    pub fn step_run(&self, task: &Task, submitted: lineage::Time) -> Option<StepRun> {
        let settings = self
            .config
            .lineage
            .as_ref()
            .filter(|_| self.lineage.is_on())?;
        let tables = task.tables().unwrap_or_default();
        let pipeline = match &tables.pipeline {
            Some(pipeline) => pipeline.clone(),
            None => lineage::state_machine_of(task.execution_id.as_deref()?)?.to_owned(),
        };
        let execution = task
            .execution_id
            .as_deref()
            .unwrap_or(task.execution_name.as_str());
        Some(StepRun::new(
            &settings.stack,
            &pipeline,
            &task.step,
            execution,
            &task.state_entered_time,
            task.redrive,
            &tables,
            &self.config.warehouse(&settings.region),
            submitted,
        ))
    }

    /// One invocation: the state machine's `ResolveVars` (a payload with `resolveVars`) or a SQL
    /// step's submit.
    pub async fn invoke(
        &self,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, SubmitError> {
        if let Some(resolve) = payload.get("resolveVars") {
            let request: ResolveVars = serde_json::from_value(resolve.clone())
                .map_err(|e| SubmitError::Input(InputError::Malformed(e.to_string())))?;
            let resolved = resolve_vars(
                &self.config.pipeline_vars,
                &request.declared,
                request.execution_input.as_ref(),
            );
            return match resolved {
                Resolved::Vars(vars) => Ok(serde_json::json!({
                    "runDate": request.run_date,
                    "vars": vars,
                })),
                Resolved::Refused(refused) => {
                    warn!(error_type = refused.error, cause = %refused.cause,
                          "run refused before its lock");
                    Err(SubmitError::VarsRefused(refused))
                }
            };
        }
        let submitted = self.handle(payload).await?;
        Ok(serde_json::to_value(submitted).expect("Submitted always serializes"))
    }

    /// The completion logic over the submitter's clients.
    fn task_clients(&self) -> TaskClients<'_> {
        TaskClients {
            table: &self.table,
            sfn: &self.sfn,
            redshift_data: &self.redshift_data,
            lineage: &self.lineage,
        }
    }

    pub async fn handle(&self, payload: serde_json::Value) -> Result<Submitted, SubmitError> {
        let task = TaskInput::from_json(payload)?.validate()?;
        if let (Some(settings), Some(arn), true) = (
            &self.config.run_lock,
            task.execution_id.as_deref(),
            task.redrive > 0,
        ) {
            run_lock::hold(&self.table.client, settings, arn, task.redrive).await?;
            info!(step = %task.step, redrive = task.redrive, lock_name = %settings.name,
                  "redriven attempt holds the run lock");
        }
        // The version the execution's definition was generated with: a deploy uploads its scripts
        // under a new version and never removes an older one, so a run started before it keeps
        // reading the scripts it started with.
        let inline = task.check.as_ref().and_then(|c| c.sql.as_deref());
        let (key, raw) = match (&task.script, inline) {
            (Some(script), _) => {
                let key = script_key(
                    &self.config.scripts_prefix,
                    task.scripts_version.as_deref(),
                    script,
                );
                let raw = self.read_script(&key).await?;
                (key, raw)
            }
            // A check generated from the definition carries its SELECT in the payload (the
            // state machine is versioned with it); validation guarantees one of the two.
            (None, sql) => (
                format!("check {}", task.step),
                sql.unwrap_or_default().as_bytes().to_vec(),
            ),
        };
        let mut statements =
            script::prepare_with(&raw, &task.values).map_err(|source| SubmitError::Script {
                script: key.clone(),
                source,
            })?;
        let check = match &task.check {
            None => None,
            Some(spec) => {
                let select = check::check_select(&statements)?.to_owned();
                statements = vec![check::wrap(&select, spec.max_rows)];
                Some(StoredCheck {
                    severity: spec.severity,
                    max_rows: spec.max_rows,
                    sql: select,
                })
            }
        };
        let name = statement_name(
            &self.config.statement_name_prefix,
            &task.execution_name,
            &task.step,
        );
        let Started {
            id: statement_id,
            wait,
        } = self.start_batch(&statements, &name, &task).await?;
        info!(statement_id = %statement_id, step = %task.step, run_date = %task.run_date,
              attempt = task.attempt, token = %task.token.fingerprint(),
              statements = statements.len(), script = %key, wait = ?wait, "batch submitted");
        // The step's run goes into the item with the first token (a retry that re-attaches is
        // the same run and keeps it); whoever closes the task sends its START and terminal event.
        let run = self.step_run(&task, lineage::now());
        let (completion, recorded, side) = match wait {
            Wait::Ended(state) => {
                self.settle_waited(
                    &statement_id,
                    &task,
                    &name,
                    run.as_ref(),
                    check.as_ref(),
                    state,
                )
                .await?
            }
            Wait::Off | Wait::NotEnded | Wait::FellBack => {
                let side = Side::Submitter;
                let (completion, recorded) = self
                    .park(
                        &statement_id,
                        &task,
                        &name,
                        run.as_ref(),
                        check.as_ref(),
                        side,
                    )
                    .await?;
                (completion, recorded, side)
            }
        };
        if completion != Completion::WaitingForEvent {
            info!(statement_id = %statement_id, completion = ?completion, completed_by = side.as_str(),
                  "the statement's outcome was recorded before the token was stored");
        }
        Ok(Submitted {
            statement_id,
            statement_name: name,
            step: task.step,
            run_date: task.run_date.to_string(),
            statements: statements.len(),
            attempt: task.attempt,
            recorded: format!("{recorded:?}"),
            completion: format!("{completion:?}"),
            wait: format!("{wait:?}"),
        })
    }

    /// The token's write ([`TokenTable::record_task`]) and, when it found the statement's state
    /// already recorded, the task closed by `side`.
    async fn park(
        &self,
        statement_id: &str,
        task: &Task,
        name: &str,
        run: Option<&StepRun>,
        check: Option<&StoredCheck>,
        side: Side,
    ) -> Result<(Completion, Recorded), SubmitError> {
        let (rendezvous, recorded) = self
            .table
            .record_task(statement_id, task, name, run, check)
            .await?;
        if recorded != Recorded::Stored {
            info!(statement_id = %statement_id, step = %task.step, attempt = task.attempt,
                  recorded = ?recorded, "the Data API returned the statement of an earlier attempt");
        }
        let completion = self.task_clients().settle(&rendezvous, side).await;
        Ok((deferred(statement_id, completion)?, recorded))
    }

    /// The wait saw the batch end: the first token goes in with that state in one write, beside
    /// `DescribeStatement` (the step's output), and the task is closed at once. For an ordinary
    /// step the state decides the outcome, so the write is the completion mark itself and the
    /// callback is the last call: two calls in a row (the write with the describe, the callback)
    /// where the general path makes six. A check's outcome depends on its result, so its write
    /// takes the completion claim, and the result's read, the callback and the mark follow. A
    /// token already stored (a retry re-attaching, a redelivery) or a failed write takes the
    /// general path: the state recorded as the event would record it
    /// ([`Self::record_wait_outcome`]), then [`Self::park`].
    async fn settle_waited(
        &self,
        statement_id: &str,
        task: &Task,
        name: &str,
        run: Option<&StepRun>,
        check: Option<&StoredCheck>,
        state: StatementState,
    ) -> Result<(Completion, Recorded, Side), SubmitError> {
        let clients = self.task_clients();
        let write = match (check, state) {
            (Some(_), _) => WaitWrite::Claim,
            (None, StatementState::Finished) => WaitWrite::Mark(Outcome::Succeeded),
            (None, StatementState::Failed | StatementState::Aborted) => {
                WaitWrite::Mark(Outcome::Failed)
            }
        };
        let (written, described) = tokio::join!(
            self.table
                .record_task_settled(statement_id, task, name, run, check, state, write),
            clients.describe(statement_id),
        );
        match written {
            Ok(Some(rendezvous)) => {
                let side = Side::SubmitterWait;
                let completion = match write {
                    WaitWrite::Mark(_) => {
                        clients
                            .settle_premarked(&rendezvous, side, described)
                            .await?
                    }
                    WaitWrite::Claim => deferred(
                        statement_id,
                        clients.settle_claimed(&rendezvous, side, described).await,
                    )?,
                };
                Ok((completion, Recorded::Stored, side))
            }
            Ok(None) | Err(_) => {
                if let Err(err) = &written {
                    warn!(statement_id, error = %err, error_type = err.name(),
                          "could not store the token with the state the wait saw; taking the general path");
                }
                let side = self.record_wait_outcome(statement_id, name, state).await;
                let (completion, recorded) = self
                    .park(statement_id, task, name, run, check, side)
                    .await?;
                Ok((completion, recorded, side))
            }
        }
    }

    /// Records the terminal state the submit's wait saw in the rendezvous item with the status
    /// event's own write ([`TokenTable::record_event`]: the first state recorded stays, so the
    /// event arriving before or after changes nothing). [`Side::SubmitterWait`] closes the task;
    /// when the write fails the token is parked as without the wait ([`Side::Submitter`]) and the
    /// status event records the state.
    async fn record_wait_outcome(&self, id: &str, name: &str, state: StatementState) -> Side {
        let event = StatementStatusChange {
            statement_id: id.to_owned(),
            statement_name: Some(name.to_owned()),
            state,
            rows: None,
            principal: None,
            redshift_query_id: None,
            expire_at: None,
        };
        match self.table.record_event(&event).await {
            Ok(_) => Side::SubmitterWait,
            Err(err) => {
                warn!(statement_id = id, error = %err, error_type = err.name(),
                      "could not record the state the wait saw; the status event will");
                Side::Submitter
            }
        }
    }

    async fn read_script(&self, key: &str) -> Result<Vec<u8>, SubmitError> {
        let bucket = &self.config.scripts_bucket;
        let read_failed =
            |source: Box<dyn std::error::Error + Send + Sync>| SubmitError::ScriptRead {
                bucket: bucket.clone(),
                key: key.to_owned(),
                source,
            };
        let object = match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(object) => object,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(GetObjectError::is_no_such_key) =>
            {
                return Err(SubmitError::ScriptNotFound {
                    bucket: bucket.clone(),
                    key: key.to_owned(),
                })
            }
            Err(err) if is_access_denied(&err) => {
                return Err(SubmitError::ScriptAccessDenied {
                    bucket: bucket.clone(),
                    key: key.to_owned(),
                    source: Box::new(err),
                })
            }
            Err(err) => return Err(read_failed(Box::new(err))),
        };
        let too_large = |source| SubmitError::Script {
            script: key.to_owned(),
            source,
        };
        if let Some(length) = object.content_length() {
            script::check_size(usize::try_from(length).unwrap_or(usize::MAX)).map_err(too_large)?;
        }
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| read_failed(Box::new(e)))?;
        Ok(body.to_vec())
    }

    /// Starts the batch under the Task entry's `ClientToken`: a retry of the entry gets the
    /// statement its first attempt started instead of running the script again. With a wait, the
    /// submit asks for `WaitTimeSeconds`; a waited call that fails because of the wait
    /// ([`wait_failed`]) is sent again without it under the same token, which answers with the
    /// statement the waited call may have started (one statement whatever happened).
    async fn start_batch(
        &self,
        statements: &[String],
        name: &str,
        task: &Task,
    ) -> Result<Started, SubmitError> {
        let token = client_token(
            &self.config.statement_name_prefix,
            &task.execution_name,
            &task.step,
            &task.state_entered_time,
            task.redrive,
        );
        let request = self
            .redshift_data
            .batch_execute_statement()
            .set_sqls(Some(statements.to_vec()))
            .database(&self.config.database)
            .statement_name(name)
            .client_token(token)
            .with_event(true);
        let request = match &self.config.target {
            Target::Cluster {
                id,
                db_user,
                secret_arn,
            } => request
                .cluster_identifier(id)
                .set_db_user(db_user.clone())
                .set_secret_arn(secret_arn.clone()),
            Target::Workgroup { name, secret_arn } => request
                .workgroup_name(name)
                .set_secret_arn(secret_arn.clone()),
        };
        let wait = self.config.submit_wait_seconds;
        let mut fell_back = false;
        if wait > 0 {
            // The Data API holds the answer up to `wait` seconds: the SDK's timeouts get it added.
            let timeouts = aws::REDSHIFT_DATA.waiting(u64::from(wait));
            let sent = request
                .clone()
                .wait_time_seconds(i32::try_from(wait).unwrap_or(i32::MAX))
                .customize()
                .config_override(
                    aws_sdk_redshiftdata::config::Builder::default()
                        .timeout_config(timeouts.config()),
                )
                .send()
                .await;
            match sent {
                Err(err) if wait_failed(&err) => {
                    count_submit(&err);
                    warn!(step = %task.step, error_code = err.code().unwrap_or("none (a timeout or connection failure)"),
                          "the submit's wait failed; submitting again without it under the same ClientToken");
                    fell_back = true;
                }
                sent => {
                    let out = answered(sent)?;
                    let wait = match out.status().and_then(terminal) {
                        Some(state) => Wait::Ended(state),
                        None => Wait::NotEnded,
                    };
                    return Ok(Started {
                        id: statement_id(&out)?,
                        wait,
                    });
                }
            }
        }
        let out = answered(request.send().await)?;
        Ok(Started {
            id: statement_id(&out)?,
            wait: if fell_back { Wait::FellBack } else { Wait::Off },
        })
    }
}

/// Closing the task after its token was stored failed (the claim was given back, or expires by
/// itself): the task waits as a parked token does, for its status event or the reconciler's
/// lost-event recovery, rather than failing the step on a callback Step Functions throttled.
/// Only a throttled or timed-out call is left to them: any other error (a corrupt item, a refused
/// request) would meet them too, so it fails the invocation at once, as before.
fn deferred(
    statement_id: &str,
    closed: Result<Completion, CompleteError>,
) -> Result<Completion, CompleteError> {
    match closed {
        Err(err) if err.is_throttling() => {
            warn!(statement_id, error = %err, error_type = err.name(),
                  "the token is stored but closing the task was throttled; its status event or the reconciler closes it");
            Ok(Completion::WaitingForEvent)
        }
        closed => closed,
    }
}

type SubmitResult =
    Result<BatchExecuteStatementOutput, SdkError<BatchExecuteStatementError, HttpResponse>>;

/// Counts a submit that was accepted or throttled (the `Submits` / `SubmitsThrottled` metrics).
fn count_submit(err: &SdkError<BatchExecuteStatementError, HttpResponse>) {
    if Throttling::REDSHIFT_DATA_SUBMIT.matches(err) {
        etl_callback::metrics::submit(true);
    }
}

/// A submit's answer, counted, or its error classified.
fn answered(sent: SubmitResult) -> Result<BatchExecuteStatementOutput, SubmitError> {
    match sent {
        Ok(out) => {
            etl_callback::metrics::submit(false);
            Ok(out)
        }
        Err(err) if Throttling::REDSHIFT_DATA_SUBMIT.matches(&err) => {
            count_submit(&err);
            Err(SubmitError::RedshiftThrottled(Box::new(err)))
        }
        Err(err) => Err(SubmitError::RedshiftRequestFailed(Box::new(err))),
    }
}

/// The statement id of a submit's answer.
fn statement_id(out: &BatchExecuteStatementOutput) -> Result<String, SubmitError> {
    out.id().map(str::to_owned).ok_or_else(|| {
        // The model marks the id optional; a response without one cannot be tracked.
        SubmitError::RedshiftRequestFailed(Box::new(SdkError::construction_failure(
            "BatchExecuteStatement returned no statement id",
        )))
    })
}

/// The terminal state a waited submit reported; `None` while the batch still runs.
fn terminal(status: &StatementStatusString) -> Option<StatementState> {
    match status {
        StatementStatusString::Finished => Some(StatementState::Finished),
        StatementStatusString::Failed => Some(StatementState::Failed),
        StatementStatusString::Aborted => Some(StatementState::Aborted),
        _ => None,
    }
}

/// The errors of a waited submit that are the wait's: the Data API's limit on waiting calls
/// (`ActiveWaitingRequestsExceededException`; the SDK models it on `DescribeStatement` and
/// `GetStatementResult` only, so it is matched by its code), throttling, and a timeout or
/// connection failure of the longer call. Whether or not the waited call started the statement,
/// the plain submit under the same `ClientToken` answers with the one statement. Every other
/// error (the active-statement quota, a validation error…) is what the plain submit would answer
/// too, and is reported as without the wait.
pub fn wait_failed(err: &SdkError<BatchExecuteStatementError, HttpResponse>) -> bool {
    match err {
        SdkError::ServiceError(e) => matches!(
            e.err().code(),
            Some("ActiveWaitingRequestsExceededException" | THROTTLING_EXCEPTION)
        ),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        _ => false,
    }
}

/// S3's AccessDenied: its error code, or a 403 whose body named no code (other 403s, such as
/// `InvalidObjectState` for an archived object, keep their own code and are not this).
fn is_access_denied(err: &SdkError<GetObjectError, HttpResponse>) -> bool {
    match err.as_service_error().and_then(|e| e.code()) {
        Some(code) => code == "AccessDenied",
        None => err
            .raw_response()
            .is_some_and(|r| r.status().as_u16() == 403),
    }
}
