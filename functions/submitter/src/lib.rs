//! The submitter: starts a step's SQL script as one Data API batch and parks the task token in the
//! rendezvous table until the statement's status event arrives.

use aws_sdk_redshiftdata::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_redshiftdata::operation::batch_execute_statement::BatchExecuteStatementError;
use aws_sdk_s3::operation::get_object::GetObjectError;
use etl_callback::complete::{CompleteError, Completion, TaskClients};
use etl_callback::config::{self, ConfigError, TableSettings, Vars};
use etl_callback::script::{self, ScriptError};
use etl_callback::store::{Recorded, Side, StoreError, TokenTable};
use etl_callback::task::{client_token, script_key, statement_name, InputError, Task, TaskInput};
use etl_callback::throttle::Throttling;
use serde::Serialize;
use thiserror::Error;
use tracing::info;

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
        vars.finish()?;
        Ok(Self {
            run_lock,
            token_table,
            scripts_bucket,
            scripts_prefix,
            statement_name_prefix,
            database,
            target,
        })
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
}

impl Submitter {
    /// The completion logic over the submitter's clients.
    fn task_clients(&self) -> TaskClients<'_> {
        TaskClients {
            table: &self.table,
            sfn: &self.sfn,
            redshift_data: &self.redshift_data,
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
        let key = script_key(
            &self.config.scripts_prefix,
            task.scripts_version.as_deref(),
            &task.script,
        );
        let raw = self.read_script(&key).await?;
        let statements =
            script::prepare(&raw, task.run_date).map_err(|source| SubmitError::Script {
                script: task.script.clone(),
                source,
            })?;
        let name = statement_name(
            &self.config.statement_name_prefix,
            &task.execution_name,
            &task.step,
        );
        let statement_id = self.start_batch(&statements, &name, &task).await?;
        info!(statement_id = %statement_id, step = %task.step, run_date = %task.run_date,
              attempt = task.attempt, token = %task.token.fingerprint(),
              statements = statements.len(), script = %key, "batch submitted");

        let (rendezvous, recorded) = self.table.record_task(&statement_id, &task, &name).await?;
        if recorded != Recorded::Stored {
            info!(statement_id = %statement_id, step = %task.step, attempt = task.attempt,
                  recorded = ?recorded, "the Data API returned the statement of an earlier attempt");
        }
        let completion = self
            .task_clients()
            .settle(&rendezvous, Side::Submitter)
            .await?;
        if completion != Completion::WaitingForEvent {
            info!(statement_id = %statement_id, completion = ?completion, "status event arrived before the token was stored");
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
        })
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
    /// statement its first attempt started instead of running the script again.
    async fn start_batch(
        &self,
        statements: &[String],
        name: &str,
        task: &Task,
    ) -> Result<String, SubmitError> {
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
        let sent = request.send().await;
        let throttled = matches!(&sent, Err(err) if Throttling::REDSHIFT_DATA_SUBMIT.matches(err));
        if sent.is_ok() || throttled {
            etl_callback::metrics::submit(throttled);
        }
        match sent {
            Ok(out) => out.id().map(str::to_owned).ok_or_else(|| {
                // The model marks the id optional; a response without one cannot be tracked.
                SubmitError::RedshiftRequestFailed(Box::new(SdkError::construction_failure(
                    "BatchExecuteStatement returned no statement id",
                )))
            }),
            Err(err) if throttled => Err(SubmitError::RedshiftThrottled(Box::new(err))),
            Err(err) => Err(SubmitError::RedshiftRequestFailed(Box::new(err))),
        }
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
