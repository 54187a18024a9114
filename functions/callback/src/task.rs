//! What the state machine hands the submitter, what a finished step hands back, and how a
//! statement is named so its events find their way to this project's completer.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::run_date::{RunDate, RunDateError};
use crate::vars::{Value, Values, VarError, VarType};

/// The error names the functions send when a step's statement fails or is aborted.
pub const STATEMENT_FAILED: &str = "Redshift.StatementFailed";
pub const STATEMENT_ABORTED: &str = "Redshift.StatementAborted";
/// The Data API no longer (or never) knew the statement when the reconciler asked.
pub const STATEMENT_NOT_FOUND: &str = "Redshift.StatementNotFound";
/// Step Functions' limit on a task token.
pub const MAX_TOKEN_CHARS: usize = 2048;
/// The Data API's limit on `StatementName`.
pub const MAX_STATEMENT_NAME_CHARS: usize = 500;
/// Step Functions' limit on an execution name.
pub const MAX_EXECUTION_NAME_CHARS: usize = 80;
/// The characters Step Functions refuses in an execution name besides whitespace and control
/// characters: brackets, wildcards and special characters.
pub const EXECUTION_NAME_REFUSED: &str = "<>{}[]?*\"#%\\^|~`$&,;:/";
/// The error names a step's `errors` mapping may replace: what the functions send when the
/// step's statement fails, is aborted, or is unknown to the Data API.
/// `Check.Failed` is sent only by a check step ([`crate::check`]).
pub const MAPPABLE_ERRORS: [&str; 4] = [
    STATEMENT_FAILED,
    STATEMENT_ABORTED,
    STATEMENT_NOT_FOUND,
    crate::check::CHECK_FAILED,
];
/// The most entries an `errors` mapping may have.
pub const MAX_ERROR_NAMES: usize = 8;
/// Step Functions' limit on a `SendTaskFailure` error name.
pub const MAX_ERROR_NAME_CHARS: usize = 256;
/// The prefix Step Functions reserves for its own error names.
pub const RESERVED_ERROR_PREFIX: &str = "States.";
/// The length of a scripts' content version (`scriptsVersion`): hex digits of a SHA-256.
pub const SCRIPTS_VERSION_CHARS: usize = 16;

/// A Step Functions task token. It is a credential for closing the task, so it never appears in
/// `Debug` or `Display` output (and therefore never in a log line).
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct TaskToken(String);

impl TaskToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The secret itself, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TaskToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskToken(<redacted, {} chars>)", self.0.len())
    }
}

impl TaskToken {
    /// The first 12 hex digits of the token's SHA-256: enough to tell tokens apart in a log line
    /// without revealing the token.
    pub fn fingerprint(&self) -> String {
        let digest = hex::encode(Sha256::digest(self.0.as_bytes()));
        digest[..12].to_owned()
    }
}

/// The payload of a `lambda:invoke.waitForTaskToken` Task, as the state machine sends it.
///
/// The contract is tolerant: a field this version does not know is ignored (nothing reads it), and
/// every field added after the first release is optional. A running execution keeps the definition
/// it started with, so during a deploy an older definition's payload reaches a newer submitter and,
/// while the function update rolls out, a newer payload an older one; neither may fail.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInput {
    pub task_token: TaskToken,
    pub step: String,
    /// The step's script; missing only for a check that carries its SQL (`check.sql`).
    #[serde(default)]
    pub script: Option<String>,
    /// The scripts' content version the definition was generated with (16 lowercase hex digits):
    /// the script is read from `<prefix><version>/<script>`, so a run executes the scripts it
    /// started with whatever a later deploy uploads. Missing or null: the unversioned key
    /// `<prefix><script>` of a definition generated before scripts were versioned.
    #[serde(default)]
    pub scripts_version: Option<String>,
    #[serde(default)]
    pub run_date: Option<String>,
    pub execution_name: String,
    pub execution_start_time: String,
    /// `$$.State.EnteredTime`: the same for every retry of one Task entry.
    #[serde(default)]
    pub state_entered_time: Option<String>,
    /// `$$.State.RetryCount`: 0 on the first attempt; missing or null counts as 0.
    #[serde(default)]
    pub retry_count: Option<u32>,
    /// `$$.Execution.Id`: the execution's ARN, which a redriven attempt holds the run lock under.
    /// Missing or null: a definition generated before redrive was supported.
    #[serde(default)]
    pub execution_id: Option<String>,
    /// `$$.Execution.RedriveCount`: how often the execution has been redriven, 0 for the first
    /// attempt (missing or null counts as 0). A redriven Task entry is a new attempt: a new token,
    /// a new `$$.State.EnteredTime` and, with this, a new `ClientToken`, so it never re-attaches
    /// to the statement the failed attempt started.
    #[serde(default)]
    pub redrive_count: Option<u32>,
    /// `$$.Execution.Input`: the execution's input, any JSON. A run started by the S3 trigger
    /// carries `{"runDate": …, "trigger": {"source": "s3", "bucket": …, "key": …}}`, and a bad
    /// run date then names that object. Missing or null: nothing to name.
    #[serde(default)]
    pub execution_input: Option<serde_json::Value>,
    /// The step's error names: `{"Redshift.StatementFailed": "Validation.NoSalesLoaded"}` makes
    /// the Task itself fail with `Validation.NoSalesLoaded` when its statement fails. Missing,
    /// null or empty: the names stay as they are.
    #[serde(default)]
    pub errors: Option<serde_json::Value>,
    /// The step's tables for its OpenLineage events ([`StepTables`]), from the generator. Read
    /// only while lineage is on; missing, null or not of that shape: no datasets.
    #[serde(default)]
    pub lineage: Option<serde_json::Value>,
    /// A check step's settings ([`crate::check::CheckSpec`]): its SQL is one SELECT whose rows
    /// are violations. Missing or null: an ordinary step.
    #[serde(default)]
    pub check: Option<serde_json::Value>,
    /// The pipeline's variables and their types, from the definition (`{"schema": "identifier"}`).
    /// Missing or null: the pipeline declares none.
    #[serde(default)]
    pub var_types: Option<serde_json::Value>,
    /// The run's values of those variables (`$.vars`, resolved and validated before the run lock
    /// by the submitter's `resolveVars`), checked against their types again here.
    #[serde(default)]
    pub vars: Option<serde_json::Value>,
}

/// What the generator puts into a step's task payload (`lineage`): the pipeline's name and the
/// tables the step reads and writes, as `pipeline check` saw them (declared `reads`/`writes`
/// win over the analysis of the script).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepTables {
    #[serde(default)]
    pub pipeline: Option<String>,
    #[serde(default)]
    pub reads: Vec<String>,
    #[serde(default)]
    pub writes: Vec<String>,
}

/// A step's replacements for the error names sent when its statement does not finish (the task
/// payload's `errors`): applied by whichever function closes the task, so the Task fails with
/// the step's own name. Only [`MAPPABLE_ERRORS`] are keys; the cause is never changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorNames(BTreeMap<String, String>);

impl ErrorNames {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The name to send instead of `name`: the step's replacement, or `name` itself.
    pub fn apply<'a>(&'a self, name: &'a str) -> &'a str {
        self.0.get(name).map_or(name, String::as_str)
    }

    /// The task payload's `errors`, checked: an object of at most [`MAX_ERROR_NAMES`] entries,
    /// each key one of [`MAPPABLE_ERRORS`], each value an error name Step Functions accepts from
    /// `SendTaskFailure` (1-256 of `A-Z a-z 0-9 . _ -`) and not reserved (`States.`).
    pub fn parse(value: Option<&serde_json::Value>) -> Result<Self, InputError> {
        let invalid = |reason: String| Err(InputError::ErrorNames(reason));
        let entries = match value {
            None | Some(serde_json::Value::Null) => return Ok(Self::default()),
            Some(serde_json::Value::Object(entries)) => entries,
            Some(_) => {
                return invalid(
                    "must be an object mapping an error name to the name to send instead".into(),
                )
            }
        };
        if entries.len() > MAX_ERROR_NAMES {
            return invalid(format!(
                "has {} entries; at most {MAX_ERROR_NAMES} are allowed",
                entries.len()
            ));
        }
        let mut names = BTreeMap::new();
        for (key, value) in entries {
            let shown = format!("{:?}", truncate(key, 100));
            if !MAPPABLE_ERRORS.contains(&key.as_str()) {
                return invalid(format!(
                    "key {shown} is not an error name the step's statement can end with \
                     (one of {})",
                    MAPPABLE_ERRORS.join(", ")
                ));
            }
            let Some(name) = value.as_str().filter(|name| is_error_name(name)) else {
                return invalid(format!(
                    "the name for {shown} must be 1-{MAX_ERROR_NAME_CHARS} characters of \
                     A-Z a-z 0-9 . _ -"
                ));
            };
            if name.starts_with(RESERVED_ERROR_PREFIX) {
                return invalid(format!(
                    "the name for {shown} must not start with \"{RESERVED_ERROR_PREFIX}\" \
                     (Step Functions reserves it)"
                ));
            }
            names.insert(key.clone(), name.to_owned());
        }
        Ok(Self(names))
    }
}

/// Read back from the rendezvous item: the pairs were checked when the task was submitted.
impl FromIterator<(String, String)> for ErrorNames {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Self(pairs.into_iter().collect())
    }
}

fn is_error_name(name: &str) -> bool {
    (1..=MAX_ERROR_NAME_CHARS).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Step Functions' rule for an execution name: 1-80 characters, none of them whitespace, a
/// bracket, a wildcard or a special character ([`EXECUTION_NAME_REFUSED`]), or a control
/// character (U+0000-001F, U+007F-009F). Anything else, non-ASCII letters included, is a name
/// Step Functions runs, and so one this project runs: the name cannot contain the `/` that
/// separates it in the statement name, the `ClientToken` is a hash of it, and DynamoDB stores
/// it as it is.
pub fn is_execution_name(name: &str) -> bool {
    (1..=MAX_EXECUTION_NAME_CHARS).contains(&name.chars().count())
        && name.chars().all(|c| {
            !(c.is_whitespace()
                || matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
                || EXECUTION_NAME_REFUSED.contains(c))
        })
}

/// The longest bucket or key shown in an error message.
const MAX_ORIGIN_PART_CHARS: usize = 1024;

/// `s3://bucket/key` of the object that triggered the run, from the execution input's
/// `trigger.bucket` and `trigger.key` (both non-empty strings), control characters escaped.
pub fn trigger_object(execution_input: Option<&serde_json::Value>) -> Option<String> {
    let trigger = execution_input?.get("trigger")?;
    let part = |name: &str| {
        let text = trigger.get(name)?.as_str()?;
        (!text.trim().is_empty()).then(|| {
            text.chars()
                .take(MAX_ORIGIN_PART_CHARS)
                .flat_map(|c| {
                    let escaped: Vec<char> = if c.is_control() {
                        c.escape_default().collect()
                    } else {
                        vec![c]
                    };
                    escaped
                })
                .collect::<String>()
        })
    };
    Some(format!("s3://{}/{}", part("bucket")?, part("key")?))
}

/// At most `max` characters of `text`, with an ellipsis when something was cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A task input that passed every check.
#[derive(Debug, Clone)]
pub struct Task {
    pub token: TaskToken,
    pub step: String,
    /// `None` only for a check whose SQL the payload carries ([`Task::check`]).
    pub script: Option<String>,
    /// The scripts' content version, checked; `None` for an unversioned (older) definition.
    pub scripts_version: Option<String>,
    pub run_date: RunDate,
    pub execution_name: String,
    /// When the state machine entered the Task state; shared by every retry of that entry.
    pub state_entered_time: String,
    /// Which attempt of the Task entry this is (`$$.State.RetryCount`).
    pub attempt: u32,
    /// The execution's ARN (`$$.Execution.Id`), checked; `None` for an older definition.
    pub execution_id: Option<String>,
    /// How often the execution has been redriven (`$$.Execution.RedriveCount`).
    pub redrive: u32,
    /// The step's replacements for the error names its task fails with.
    pub error_names: ErrorNames,
    /// The payload's `lineage`, unread (parsed by [`Task::tables`] only while lineage is on).
    pub lineage: Option<serde_json::Value>,
    /// A check step's settings; `None` for an ordinary step.
    pub check: Option<crate::check::CheckSpec>,
    /// What the script's placeholders become: the run date's built-ins and the run's variables.
    pub values: Values,
}

impl Task {
    /// The step's tables as the generator put them into the payload; `None` when the payload
    /// has none (a definition generated before lineage) or they are not of the expected shape.
    pub fn tables(&self) -> Option<StepTables> {
        serde_json::from_value(self.lineage.clone()?).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    #[error("task input is not the expected JSON object: {0}")]
    Malformed(String),
    #[error("task input field {field} is invalid: {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    /// The `errors` mapping, with what is wrong with it (naming the key).
    #[error("task input field errors is invalid: {0}")]
    ErrorNames(String),
    /// The `check` object, with what is wrong with it.
    #[error(transparent)]
    Check(#[from] crate::check::CheckError),
    #[error(transparent)]
    RunDate(#[from] RunDateError),
    /// A bad run date given by the object that triggered the run (`origin`, `s3://bucket/key`).
    #[error("{}", .error.from_origin(.origin))]
    RunDateFrom { error: RunDateError, origin: String },
    /// A variable of the task payload's `vars` / `varTypes` that is not valid.
    #[error("task input field vars is invalid: {0}")]
    Var(#[from] VarError),
}

impl InputError {
    pub fn name(&self) -> &'static str {
        match self {
            Self::RunDate(_) | Self::RunDateFrom { .. } => "InvalidRunDate",
            Self::Check(e) => e.name(),
            _ => "InvalidInput",
        }
    }
}

fn check(ok: bool, field: &'static str, reason: &'static str) -> Result<(), InputError> {
    if ok {
        Ok(())
    } else {
        Err(InputError::InvalidField { field, reason })
    }
}

/// A scripts' content version: exactly [`SCRIPTS_VERSION_CHARS`] lowercase hex digits (so it is
/// one path segment and never `..`).
pub fn is_scripts_version(version: &str) -> bool {
    version.len() == SCRIPTS_VERSION_CHARS
        && version
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The S3 key of a step's script: `<prefix><version>/<script>`, or `<prefix><script>` without a
/// version (a definition generated before scripts were versioned).
pub fn script_key(prefix: &str, version: Option<&str>, script: &str) -> String {
    match version {
        Some(version) => format!("{prefix}{version}/{script}"),
        None => format!("{prefix}{script}"),
    }
}

fn is_name(s: &str, max: usize, extra: &[char]) -> bool {
    !s.is_empty()
        && s.chars().count() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || extra.contains(&c))
}

impl TaskInput {
    pub fn from_json(value: serde_json::Value) -> Result<Self, InputError> {
        serde_json::from_value(value).map_err(|e| InputError::Malformed(e.to_string()))
    }

    /// Checks every field; the run date defaults to the UTC day the execution started.
    pub fn validate(self) -> Result<Task, InputError> {
        let token = self.task_token.expose();
        check(!token.trim().is_empty(), "taskToken", "must not be empty")?;
        check(
            token.chars().count() <= MAX_TOKEN_CHARS,
            "taskToken",
            "is longer than 2048 characters",
        )?;
        check(
            is_name(&self.step, 80, &[]),
            "step",
            "must be 1-80 characters of A-Z a-z 0-9 _ -",
        )?;
        let check_spec = match &self.check {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(crate::check::CheckSpec::parse(value)?),
        };
        let inline_sql = check_spec.as_ref().is_some_and(|c| c.sql.is_some());
        match &self.script {
            Some(script) => check(
                !inline_sql
                    && is_name(script, 200, &['.'])
                    && script.ends_with(".sql")
                    && !script.starts_with('.'),
                "script",
                "must be a file name ending in .sql (letters, digits, _ - .), without a path, \
                 and not given beside a check's sql",
            )?,
            None => check(
                inline_sql,
                "script",
                "must be set (a check without a script carries its sql in check.sql)",
            )?,
        }
        if let Some(version) = &self.scripts_version {
            check(
                is_scripts_version(version),
                "scriptsVersion",
                "must be the scripts' content version: 16 lowercase hex digits",
            )?;
        }
        check(
            is_execution_name(&self.execution_name),
            "executionName",
            "must be a Step Functions execution name: 1-80 characters without whitespace, \
             brackets < > { } [ ], wildcards ? *, special characters \" # % \\ ^ | ~ ` $ & , ; : / \
             or control characters",
        )?;
        let state_entered_time = self.state_entered_time.unwrap_or_default();
        check(
            !state_entered_time.trim().is_empty()
                && state_entered_time.chars().count() <= 64
                && state_entered_time.chars().all(|c| c.is_ascii_graphic()),
            "stateEnteredTime",
            "must be set ($$.State.EnteredTime): 1-64 printable characters",
        )?;
        if let Some(arn) = &self.execution_id {
            check(
                is_execution_arn_of(arn, &self.execution_name),
                "executionId",
                "must be the execution's ARN ($$.Execution.Id): arn:…:states:…:execution:<state machine>:<executionName>",
            )?;
        }
        let redrive = self.redrive_count.unwrap_or(0);
        check(
            redrive == 0 || self.execution_id.is_some(),
            "executionId",
            "must be set ($$.Execution.Id) when redriveCount is above 0: a redriven run holds the run lock under it",
        )?;
        let error_names = ErrorNames::parse(self.errors.as_ref())?;
        let run_date = RunDate::resolve(self.run_date.as_deref(), &self.execution_start_time)
            .map_err(
                |error| match trigger_object(self.execution_input.as_ref()) {
                    Some(origin) if error.is_given_date() => {
                        InputError::RunDateFrom { error, origin }
                    }
                    _ => InputError::RunDate(error),
                },
            )?;
        let values = typed_vars(
            Values::new(run_date),
            self.var_types.as_ref(),
            self.vars.as_ref(),
        )?;
        Ok(Task {
            values,
            token: self.task_token,
            step: self.step,
            script: self.script,
            scripts_version: self.scripts_version,
            run_date,
            execution_name: self.execution_name,
            state_entered_time,
            attempt: self.retry_count.unwrap_or(0),
            execution_id: self.execution_id,
            redrive,
            error_names,
            lineage: self.lineage,
            check: check_spec,
        })
    }
}

/// The run's values: the built-ins of `values` and each variable of `types` (`{"name": "type"}`)
/// with its value from `vars`, checked against its type. A value without a type is refused.
pub fn typed_vars(
    mut values: Values,
    types: Option<&serde_json::Value>,
    vars: Option<&serde_json::Value>,
) -> Result<Values, InputError> {
    let empty = serde_json::Map::new();
    fn object<'a>(
        json: Option<&'a serde_json::Value>,
        empty: &'a serde_json::Map<String, serde_json::Value>,
        field: &'static str,
    ) -> Result<&'a serde_json::Map<String, serde_json::Value>, InputError> {
        match json {
            None | Some(serde_json::Value::Null) => Ok(empty),
            Some(serde_json::Value::Object(map)) => Ok(map),
            Some(_) => Err(InputError::InvalidField {
                field,
                reason: "must be an object",
            }),
        }
    }
    let types = object(types, &empty, "varTypes")?;
    let vars = object(vars, &empty, "vars")?;
    for (name, ty) in types {
        crate::vars::check_name(name).map_err(|reason| VarError::Invalid {
            name: name.clone(),
            reason,
        })?;
        let ty = ty
            .as_str()
            .and_then(VarType::parse)
            .ok_or_else(|| VarError::Invalid {
                name: name.clone(),
                reason: "varTypes names no type identifier, string, integer or date".into(),
            })?;
        let json = vars.get(name).ok_or_else(|| VarError::Invalid {
            name: name.clone(),
            reason: "has no value in vars".into(),
        })?;
        values = values.with(name, Value::parse(name, ty, json)?);
    }
    if let Some(name) = vars.keys().find(|name| !types.contains_key(*name)) {
        return Err(VarError::Unknown {
            name: truncate(name, 64),
            declared: types.keys().cloned().collect::<Vec<_>>().join(", "),
        }
        .into());
    }
    Ok(values)
}

/// The Data API `StatementName` of a step: `<prefix>/<execution>/<step>`, at most 500 characters.
/// The EventBridge rule matches the `<prefix>/` part, so only this project's events reach the completer.
pub fn statement_name(prefix: &str, execution_name: &str, step: &str) -> String {
    let fixed = prefix.chars().count() + step.chars().count() + 2;
    let room = MAX_STATEMENT_NAME_CHARS.saturating_sub(fixed);
    let execution: String = execution_name.chars().take(room).collect();
    let name = format!("{prefix}/{execution}/{step}");
    name.chars().take(MAX_STATEMENT_NAME_CHARS).collect()
}

/// The Data API `ClientToken` of one Task entry: 64 hex digits of SHA-256 over the statement-name
/// prefix, the execution, the step and `$$.State.EnteredTime` (and, for a redriven attempt,
/// `$$.Execution.RedriveCount`). Every retry of the entry sends the same token, so the Data API
/// (which keeps it 8 hours) returns the statement the first attempt started instead of running
/// the script a second time. A redrive enters the Task again (a new entry time, a new redrive
/// count): a new token, so the redriven step runs its script again instead of being handed the
/// failed statement.
pub fn client_token(
    prefix: &str,
    execution_name: &str,
    step: &str,
    state_entered_time: &str,
    redrive: u32,
) -> String {
    let mut hash = Sha256::new();
    let redrive = redrive.to_string();
    let parts = [prefix, execution_name, step, state_entered_time, &redrive];
    // The first attempt's token is what it was before redrives were told apart.
    let parts = if redrive == "0" {
        &parts[..4]
    } else {
        &parts[..]
    };
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// Whether `arn` is the ARN of execution `execution_name` of a Standard state machine:
/// `arn:<partition>:states:<region>:<account>:execution:<state machine>:<execution_name>`.
pub fn is_execution_arn_of(arn: &str, execution_name: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(8, ':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "states", region, account, "execution", machine, name]
            if !partition.is_empty() && !region.is_empty() && !account.is_empty()
                && !machine.is_empty() && *name == execution_name
    ) && arn.chars().count() <= 2048
}

/// Separates an execution ARN from the redrive count in a run lock holder (`holders`) element of
/// a redriven attempt. Step Functions refuses `#` in an execution name, so the element of one
/// attempt can never be read as another execution's.
pub const HOLDER_ATTEMPT_SEPARATOR: char = '#';

/// The run lock `holders` element of one attempt of an execution: the execution ARN for the first
/// attempt (what the state machine's `AcquireRunLock` adds), `<ARN>#<redrive count>` for a
/// redriven one (what the submitter adds). Each attempt holds its slot under its own element, so
/// releasing an attempt that is over (the reconciler, on the failed attempt's execution-ended
/// event) can never take the slot of the redriven attempt running after it.
pub fn run_lock_holder(execution_arn: &str, redrive: u32) -> String {
    if redrive == 0 {
        execution_arn.to_owned()
    } else {
        format!("{execution_arn}{HOLDER_ATTEMPT_SEPARATOR}{redrive}")
    }
}

/// The execution ARN and attempt (redrive count) of a run lock `holders` element, as
/// [`run_lock_holder`] writes them; `None` when it is not one.
pub fn parse_run_lock_holder(element: &str) -> Option<(&str, u32)> {
    let (arn, redrive) = match element.rsplit_once(HOLDER_ATTEMPT_SEPARATOR) {
        Some((arn, count)) => {
            let redrive: u32 = count.parse().ok()?;
            // `arn#0` is never written: the first attempt's element is the bare ARN.
            (redrive > 0 && !count.starts_with('0')).then_some((arn, redrive))?
        }
        None => (element, 0),
    };
    let name = arn.rsplit(':').next().unwrap_or_default();
    (is_execution_name(name) && is_execution_arn_of(arn, name)).then_some((arn, redrive))
}

/// The result of a step that finished: the Task's output in the execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepResult {
    pub step: String,
    pub statement_id: String,
    pub run_date: String,
    pub status: String,
    pub rows: i64,
    pub duration_ms: i64,
    /// A check step's record ([`crate::check::CheckRecord`]): 0 violations, or a `warn` check's
    /// violations. Absent for an ordinary step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<crate::check::CheckRecord>,
}

/// The cause of a failed step, sent as the `SendTaskFailure` cause (a JSON string).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepFailure {
    pub step: String,
    pub statement_id: String,
    pub run_date: String,
    pub status: String,
    pub error: String,
    pub failed_statement_index: Option<u32>,
    pub failed_statement: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input() -> serde_json::Value {
        json!({
            "taskToken": "AQCEAAAAKgAAAAMAAAAAAAAAAW-secret",
            "step": "LoadItem",
            "script": "load_item.sql",
            "runDate": "2021-06-26",
            "executionName": "run-2021-06-26",
            "executionStartTime": "2021-06-27T06:00:00.000Z",
            "stateEnteredTime": "2021-06-27T06:00:00.456Z",
            "retryCount": 0
        })
    }

    #[test]
    fn a_valid_input_becomes_a_task_and_never_shows_its_token() {
        let task = TaskInput::from_json(input()).unwrap().validate().unwrap();
        assert_eq!(task.run_date.to_string(), "2021-06-26");
        assert!(!format!("{task:?}").contains("secret"));
    }

    #[test]
    fn a_missing_or_null_run_date_defaults_to_the_start_day() {
        let mut value = input();
        value["runDate"] = serde_json::Value::Null;
        let task = TaskInput::from_json(value.clone())
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(task.run_date.to_string(), "2021-06-27");
        value.as_object_mut().unwrap().remove("runDate");
        assert!(TaskInput::from_json(value).unwrap().validate().is_ok());
    }

    /// Fuzzing regression (`fuzz/corpus/task_input/start-time-year-1078`): with no run date, a
    /// start time in the year 1078 became the run date 1078-06-27, which no run date may be.
    #[test]
    fn a_start_time_outside_the_supported_years_is_an_invalid_run_date() {
        let mut value = input();
        value.as_object_mut().unwrap().remove("runDate");
        value["executionStartTime"] = json!("1078-06-27T06:00:00.123Z");
        let err = TaskInput::from_json(value).unwrap().validate().unwrap_err();
        assert_eq!(err.name(), "InvalidRunDate");
        assert!(matches!(
            err,
            InputError::RunDate(RunDateError::StartTimeOutOfRange { .. })
        ));
    }

    #[test]
    fn a_bad_run_date_from_an_s3_trigger_names_the_object() {
        let mut v = input();
        v["runDate"] = json!("2021-13-01");
        v["executionInput"] = json!({"runDate": "2021-13-01", "trigger": {
            "source": "s3", "bucket": "bucket", "key": "markers/2021-13-01.ready"}});
        let err = TaskInput::from_json(v.clone())
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.name(), "InvalidRunDate");
        assert_eq!(
            err.to_string(),
            "run date \"2021-13-01\" (from s3://bucket/markers/2021-13-01.ready) is not a calendar date in the form YYYY-MM-DD"
        );

        v["runDate"] = json!("0999-01-01");
        v["executionInput"]["trigger"]["key"] = json!("a\nb.ready");
        let err = TaskInput::from_json(v.clone())
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "run date \"0999-01-01\" (from s3://bucket/a\\nb.ready) is outside the supported years 1900-9999"
        );

        // No object to name: without a trigger, with an incomplete one, or with no run date given.
        for execution_input in [
            json!(null),
            json!({"runDate": "0999-01-01"}),
            json!({"trigger": {"source": "s3", "bucket": "bucket"}}),
            json!({"trigger": {"bucket": "", "key": "k"}}),
            json!({"trigger": "s3://bucket/key"}),
        ] {
            v["executionInput"] = execution_input;
            let err = TaskInput::from_json(v.clone())
                .unwrap()
                .validate()
                .unwrap_err();
            assert!(matches!(err, InputError::RunDate(_)), "{err}");
        }
        v["executionInput"] = json!({"trigger": {"bucket": "b", "key": "k"}});
        v.as_object_mut().unwrap().remove("runDate");
        v["executionStartTime"] = json!("yesterday");
        let err = TaskInput::from_json(v).unwrap().validate().unwrap_err();
        assert!(matches!(err, InputError::RunDate(_)), "{err}");
    }

    #[test]
    fn bad_fields_are_named_errors() {
        let cases = [
            ("runDate", json!("2021-02-30"), "InvalidRunDate"),
            ("runDate", json!("1 or 1=1"), "InvalidRunDate"),
            ("script", json!("../secrets.sql"), "InvalidInput"),
            ("script", json!("load_item.txt"), "InvalidInput"),
            ("step", json!("Load Item; drop"), "InvalidInput"),
            ("taskToken", json!(""), "InvalidInput"),
            ("taskToken", json!("x".repeat(2049)), "InvalidInput"),
            ("executionName", json!("a/b"), "InvalidInput"),
            ("stateEnteredTime", json!(""), "InvalidInput"),
            ("stateEnteredTime", json!(null), "InvalidInput"),
            ("retryCount", json!(-1), "InvalidInput"),
        ];
        for (field, value, name) in cases {
            let mut v = input();
            v[field] = value;
            let err = TaskInput::from_json(v)
                .and_then(TaskInput::validate)
                .unwrap_err();
            assert_eq!(err.name(), name, "{field}");
        }
        assert!(matches!(
            TaskInput::from_json(json!([1])),
            Err(InputError::Malformed(_))
        ));
    }

    #[test]
    fn an_unknown_field_is_accepted_and_ignored() {
        let mut extra = input();
        extra["sql"] = json!("drop table item");
        extra["someFutureField"] = json!({"nested": [1, 2]});
        let task = TaskInput::from_json(extra).unwrap().validate().unwrap();
        let plain = TaskInput::from_json(input()).unwrap().validate().unwrap();
        assert_eq!(format!("{task:?}"), format!("{plain:?}"));
        assert!(!format!("{task:?}").contains("drop table"));
    }

    #[test]
    fn a_scripts_version_is_16_lowercase_hex_digits_and_names_the_script_s_folder() {
        let task = validated("scriptsVersion", json!("0123456789abcdef")).unwrap();
        assert_eq!(task.scripts_version.as_deref(), Some("0123456789abcdef"));
        assert_eq!(
            script_key(
                "scripts/",
                task.scripts_version.as_deref(),
                task.script.as_deref().unwrap()
            ),
            "scripts/0123456789abcdef/load_item.sql"
        );
        for legacy in [None, Some(json!(null))] {
            let mut v = input();
            if let Some(value) = legacy {
                v["scriptsVersion"] = value;
            }
            let task = TaskInput::from_json(v).unwrap().validate().unwrap();
            assert_eq!(task.scripts_version, None);
            assert_eq!(
                script_key("scripts/", None, task.script.as_deref().unwrap()),
                "scripts/load_item.sql"
            );
        }
        assert_eq!(
            script_key("", Some("0123456789abcdef"), "a.sql"),
            "0123456789abcdef/a.sql"
        );
        for bad in [
            json!(""),
            json!("0123456789ABCDEF"),
            json!("0123456789abcde"),
            json!("0123456789abcdef0"),
            json!("0123456789abcdeg"),
            json!("../../etc/passwd"),
            json!("01234567/9abcdef"),
            json!("０123456789abcde"),
        ] {
            let err = validated("scriptsVersion", bad.clone()).unwrap_err();
            assert_eq!(err.name(), "InvalidInput", "{bad}");
            assert!(err.to_string().contains("scriptsVersion"), "{err}");
        }
        for wrong_type in [json!(16), json!(["0123456789abcdef"])] {
            let err = validated("scriptsVersion", wrong_type).unwrap_err();
            assert!(matches!(err, InputError::Malformed(_)), "{err}");
            assert_eq!(err.name(), "InvalidInput");
        }
    }

    #[test]
    fn a_missing_state_entered_time_is_invalid_and_a_missing_retry_count_is_the_first_attempt() {
        let mut value = input();
        value.as_object_mut().unwrap().remove("retryCount");
        let task = TaskInput::from_json(value.clone())
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(task.attempt, 0);
        assert_eq!(task.state_entered_time, "2021-06-27T06:00:00.456Z");
        value["retryCount"] = json!(2);
        assert_eq!(
            TaskInput::from_json(value.clone())
                .unwrap()
                .validate()
                .unwrap()
                .attempt,
            2
        );
        value.as_object_mut().unwrap().remove("stateEnteredTime");
        let err = TaskInput::from_json(value).unwrap().validate().unwrap_err();
        assert_eq!(err.name(), "InvalidInput");
        assert!(err.to_string().contains("stateEnteredTime"));
    }

    #[test]
    fn client_tokens_are_64_hex_digits_and_identify_one_task_entry() {
        let token = client_token("etl", "run-1", "LoadItem", "2021-06-27T06:00:00.456Z", 0);
        assert_eq!(token.len(), 64);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            token,
            client_token("etl", "run-1", "LoadItem", "2021-06-27T06:00:00.456Z", 0)
        );
        for other in [
            client_token(
                "etl",
                "run-1",
                "LoadCustomerAddress",
                "2021-06-27T06:00:00.456Z",
                0,
            ),
            // a redriven entry of the same step (it has a new entry time too, on AWS)
            client_token("etl", "run-1", "LoadItem", "2021-06-27T06:00:00.456Z", 1),
            client_token("etl", "run-1", "LoadItem", "2021-06-27T06:05:00.000Z", 0),
            client_token("etl", "run-2", "LoadItem", "2021-06-27T06:00:00.456Z", 0),
            client_token("etl2", "run-1", "LoadItem", "2021-06-27T06:00:00.456Z", 0),
        ] {
            assert_ne!(token, other);
        }
    }

    #[test]
    fn each_attempt_of_an_execution_holds_the_run_lock_under_its_own_element() {
        let arn = "arn:aws:states:us-east-1:123456789012:execution:etl-etl:daily-2021.06.26";
        assert_eq!(run_lock_holder(arn, 0), arn);
        assert_eq!(run_lock_holder(arn, 2), format!("{arn}#2"));
        for redrive in [0, 1, 2, 17] {
            assert_eq!(
                parse_run_lock_holder(&run_lock_holder(arn, redrive)),
                Some((arn, redrive))
            );
        }
        for bad in [
            "not-an-arn".to_owned(),
            format!("{arn}#0"),
            format!("{arn}#01"),
            format!("{arn}#x"),
            format!("{arn}#"),
            format!("{arn}#-1"),
            "arn:aws:states:us-east-1:123456789012:stateMachine:etl-etl".to_owned(),
            "arn:aws:states:us-east-1:123456789012:execution:etl-etl:".to_owned(),
        ] {
            assert_eq!(parse_run_lock_holder(&bad), None, "{bad}");
        }
    }

    #[test]
    fn a_redriven_payload_names_its_execution_and_redrive_count() {
        let arn = "arn:aws:states:us-east-1:123456789012:execution:etl-etl:run-1";
        let payload = |extra: serde_json::Value| {
            let mut v = serde_json::json!({
                "taskToken": "t", "step": "LoadItem", "script": "load_item.sql",
                "runDate": "2021-06-26", "executionName": "run-1",
                "executionStartTime": "2021-06-27T06:00:00.123Z",
                "stateEnteredTime": "2021-06-27T06:00:01.456Z",
            });
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            TaskInput::from_json(v).unwrap().validate()
        };
        let first = payload(serde_json::json!({})).unwrap();
        assert_eq!((first.redrive, first.execution_id), (0, None));
        let redriven = payload(serde_json::json!({"executionId": arn, "redriveCount": 2})).unwrap();
        assert_eq!(
            (redriven.redrive, redriven.execution_id.as_deref()),
            (2, Some(arn))
        );
        let err = payload(serde_json::json!({"redriveCount": 1})).unwrap_err();
        assert_eq!(err.name(), "InvalidInput");
        assert!(err.to_string().contains("executionId"), "{err}");
        let other = "arn:aws:states:us-east-1:123456789012:execution:etl-etl:run-2";
        let err = payload(serde_json::json!({"executionId": other})).unwrap_err();
        assert!(err.to_string().contains("executionId"), "{err}");
    }

    #[test]
    fn token_fingerprints_are_short_and_do_not_contain_the_token() {
        let token = TaskToken::new("AQCEAAAAKgAAAAMAAAAAAAAAAW-secret");
        let print = token.fingerprint();
        assert_eq!(print.len(), 12);
        assert!(!print.contains("secret"));
        assert_eq!(
            print,
            TaskToken::new("AQCEAAAAKgAAAAMAAAAAAAAAAW-secret").fingerprint()
        );
    }

    fn validated(field: &str, value: serde_json::Value) -> Result<Task, InputError> {
        let mut v = input();
        v[field] = value;
        TaskInput::from_json(v).and_then(TaskInput::validate)
    }

    /// Names Step Functions starts executions under that the old `[A-Za-z0-9_-]` rule refused.
    const ACCEPTED_EXECUTIONS: [&str; 8] = [
        "backfill-2021.06.26",
        "o'brien",
        "rerun(2021-06-26)",
        "date=2021-06-26",
        "ops@example.com",
        "a+b!",
        "Zürich-läuft-日本語",
        "ÆØÅ.ñ",
    ];

    #[test]
    fn every_execution_name_step_functions_accepts_is_valid_and_kept_as_it_is() {
        let longest = "é".repeat(80);
        for name in ACCEPTED_EXECUTIONS
            .iter()
            .copied()
            .chain([longest.as_str()])
        {
            let task = validated("executionName", json!(name)).unwrap();
            assert_eq!(task.execution_name, name);
        }
    }

    #[test]
    fn execution_names_step_functions_refuses_are_invalid_input_naming_the_rule() {
        let mut refused: Vec<String> = ["", "a b", "a\tb", "a\u{a0}b", "a\u{3000}b"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        refused.push("x".repeat(81));
        refused.extend(
            EXECUTION_NAME_REFUSED
                .chars()
                .chain(['\u{0}', '\u{1f}', '\u{7f}', '\u{85}', '\u{9f}'])
                .map(|c| format!("run{c}1")),
        );
        assert_eq!(EXECUTION_NAME_REFUSED.chars().count(), 22);
        for name in refused {
            let err = validated("executionName", json!(name)).unwrap_err();
            assert_eq!(err.name(), "InvalidInput", "{name:?}");
            let message = err.to_string();
            assert!(
                message.contains("executionName")
                    && message.contains("Step Functions execution name")
                    && message.contains("1-80 characters"),
                "{message}"
            );
        }
    }

    #[test]
    fn step_names_keep_their_letters_digits_underscore_and_dash_rule() {
        for step in ["Load.Item", "Load'Item", "Läd", &"s".repeat(81)] {
            assert_eq!(
                validated("step", json!(step)).unwrap_err().name(),
                "InvalidInput"
            );
        }
        assert!(validated("step", json!("Load_Item-2")).is_ok());
    }

    #[test]
    fn statement_names_and_client_tokens_work_for_every_accepted_execution_name() {
        let mut tokens = std::collections::HashSet::new();
        for execution in ACCEPTED_EXECUTIONS {
            let name = statement_name("etl", execution, "LoadItem");
            assert_eq!(name, format!("etl/{execution}/LoadItem"));
            // The EventBridge rule's prefix still matches, and the three parts still split.
            assert!(name.starts_with("etl/"));
            assert_eq!(
                name.splitn(3, '/').collect::<Vec<_>>(),
                ["etl", execution, "LoadItem"]
            );
            let token = client_token("etl", execution, "LoadItem", "2021-06-27T06:00:00.456Z", 0);
            assert_eq!(token.len(), 64, "within the Data API's 1-64 characters");
            assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
            assert!(tokens.insert(token), "one token per execution");
        }
        let longest = statement_name(&"p".repeat(128), &"é".repeat(80), &"s".repeat(80));
        assert!(longest.chars().count() <= MAX_STATEMENT_NAME_CHARS);
        assert!(longest.contains(&"é".repeat(80)));
    }

    #[test]
    fn a_check_carries_its_sql_instead_of_a_script_or_names_its_script() {
        let mut v = input();
        v.as_object_mut().unwrap().remove("script");
        v["check"] = json!({"severity": "error", "maxRows": 10, "sql": "select 1 where false"});
        v["errors"] = json!({"Check.Failed": "Validation.NoSalesLoaded"});
        let task = TaskInput::from_json(v.clone()).unwrap().validate().unwrap();
        assert_eq!(task.script, None);
        let check = task.check.unwrap();
        assert_eq!(check.sql.as_deref(), Some("select 1 where false"));
        assert_eq!(
            task.error_names.apply(crate::check::CHECK_FAILED),
            "Validation.NoSalesLoaded"
        );
        // a script check: the script is the SELECT
        let with_script = validated("check", json!({"severity": "warn", "maxRows": 1})).unwrap();
        assert_eq!(with_script.script.as_deref(), Some("load_item.sql"));
        // neither, or both: InvalidInput naming script
        let mut neither = v.clone();
        neither["check"] = json!({"severity": "error", "maxRows": 10});
        let mut both = v.clone();
        both["script"] = json!("load_item.sql");
        let mut none = v;
        none.as_object_mut().unwrap().remove("check");
        for bad in [neither, both, none] {
            let err = TaskInput::from_json(bad).unwrap().validate().unwrap_err();
            assert_eq!(err.name(), "InvalidInput");
            assert!(err.to_string().contains("script"), "{err}");
        }
        let err = validated("check", json!({"severity": "loud", "maxRows": 1})).unwrap_err();
        assert_eq!(err.name(), "InvalidInput");
        assert!(err.to_string().contains("check"), "{err}");
    }

    #[test]
    fn a_missing_null_or_empty_errors_mapping_maps_nothing() {
        for errors in [None, Some(json!(null)), Some(json!({}))] {
            let mut v = input();
            if let Some(errors) = errors {
                v["errors"] = errors;
            }
            let task = TaskInput::from_json(v).unwrap().validate().unwrap();
            assert!(task.error_names.is_empty());
            assert_eq!(task.error_names.apply(STATEMENT_FAILED), STATEMENT_FAILED);
        }
    }

    #[test]
    fn an_errors_mapping_replaces_only_the_names_it_maps() {
        let task = validated(
            "errors",
            json!({
                "Redshift.StatementFailed": "Validation.NoSalesLoaded",
                "Redshift.StatementNotFound": "Pipeline_Statement-Expired.2",
            }),
        )
        .unwrap();
        let names = &task.error_names;
        assert_eq!(names.apply(STATEMENT_FAILED), "Validation.NoSalesLoaded");
        assert_eq!(
            names.apply(STATEMENT_NOT_FOUND),
            "Pipeline_Statement-Expired.2"
        );
        assert_eq!(names.apply(STATEMENT_ABORTED), STATEMENT_ABORTED);
        let all = json!({
            "Redshift.StatementFailed": "A",
            "Redshift.StatementAborted": "B",
            "Redshift.StatementNotFound": "x".repeat(256),
        });
        assert_eq!(
            validated("errors", all).unwrap().error_names.iter().count(),
            3
        );
    }

    #[test]
    fn a_bad_errors_mapping_is_invalid_input_naming_the_key() {
        let cases = [
            (json!(["Redshift.StatementFailed"]), "must be an object"),
            (json!("Validation.NoSalesLoaded"), "must be an object"),
            (
                json!({"Redshift.StatementFailed ": "X"}),
                "key \"Redshift.StatementFailed \" is not an error name",
            ),
            (json!({"States.ALL": "X"}), "key \"States.ALL\" is not"),
            (json!({"InvalidInput": "X"}), "key \"InvalidInput\" is not"),
            (
                json!({"Redshift.StatementFailed": ""}),
                "the name for \"Redshift.StatementFailed\" must be 1-256 characters",
            ),
            (
                json!({"Redshift.StatementFailed": "x".repeat(257)}),
                "the name for \"Redshift.StatementFailed\" must be 1-256",
            ),
            (
                json!({"Redshift.StatementAborted": "No Sales"}),
                "the name for \"Redshift.StatementAborted\" must be 1-256",
            ),
            (
                json!({"Redshift.StatementFailed": "Validation/NoSales"}),
                "\"Redshift.StatementFailed\" must be",
            ),
            (
                json!({"Redshift.StatementFailed": "Validierung.Ä"}),
                "\"Redshift.StatementFailed\" must be",
            ),
            (
                json!({"Redshift.StatementFailed": 1}),
                "\"Redshift.StatementFailed\" must be",
            ),
            (
                json!({"Redshift.StatementFailed": null}),
                "\"Redshift.StatementFailed\" must be",
            ),
            (
                json!({"Redshift.StatementNotFound": "States.Timeout"}),
                "the name for \"Redshift.StatementNotFound\" must not start with \"States.\"",
            ),
            (
                serde_json::Value::Object((0..9).map(|i| (format!("k{i}"), json!("X"))).collect()),
                "has 9 entries; at most 8",
            ),
        ];
        for (errors, expected) in cases {
            let err = validated("errors", errors.clone()).unwrap_err();
            assert_eq!(err.name(), "InvalidInput", "{errors}");
            let message = err.to_string();
            assert!(
                message.starts_with("task input field errors is invalid: ")
                    && message.contains(expected),
                "{message}"
            );
        }
        let long_key = "k".repeat(5000);
        let err = validated("errors", json!({ long_key: "X" })).unwrap_err();
        assert!(err.to_string().chars().count() < 400, "long keys are cut");
    }

    #[test]
    fn statement_names_identify_project_execution_and_step_within_500_chars() {
        assert_eq!(
            statement_name("etl", "run-1", "LoadItem"),
            "etl/run-1/LoadItem"
        );
        let long = statement_name(&"p".repeat(100), &"e".repeat(600), "LoadItem");
        assert_eq!(long.chars().count(), 500);
        assert!(long.ends_with("/LoadItem") && long.starts_with(&"p".repeat(100)));
    }
}
