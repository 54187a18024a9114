//! The reconciler's configuration, read from its environment once per cold start.

use etl_callback::config::{self, ConfigError, TableSettings, Vars};
use etl_callback::store::DEFAULT_PENDING_INDEX;

use crate::execution;
use crate::lock::{RunLockSettings, DEFAULT_LOCK_NAME};

/// The shortest time a closed token of a running execution keeps its statement for a retry to
/// re-attach, whatever `STEP_TIMEOUT_SECONDS` says: the generated Retry policies of a SQL Task
/// (`statemachine/pipeline/src/asl.rs`: `STEP_LAMBDA` 2+4+8+16+32 s and `STEP_THROTTLE`
/// 5+10+20+40+80+120 s of backoff, 337 s, plus 12 submitter invocations of at most 30 s) re-attach
/// within about 700 s of the failed attempt's token.
pub const MIN_REATTACH_WAIT_SECONDS: i64 = 900;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: TableSettings,
    /// `PENDING_INDEX`: the sparse index on `pending` (hash) and `submittedAt` (range).
    pub pending_index: String,
    /// `RECONCILE_GRACE_SECONDS`: how long a task waits before the reconciler looks at it.
    pub grace_seconds: i64,
    /// `RECONCILE_MAX_ITEMS`: the most pending items one invocation handles.
    pub max_items: usize,
    /// `AWS_LAMBDA_FUNCTION_NAME`: the metrics' `Function` dimension.
    pub function_name: String,
    /// `RUN_LOCK_TABLE` (unset or empty: no run lock handling) and `RUN_LOCK_NAME` (default
    /// `etl`): the lock item whose holders the reconciler releases. The scheduled run looks at
    /// no more than `max_items` holders.
    pub run_lock: Option<RunLockSettings>,
    /// `STATE_MACHINE_ARN` (required): the pipeline's Standard state machine. The execution ARN
    /// of a pending item (which records its execution's name) is built from it, for
    /// `DescribeExecution`; an execution-ended event of another state machine is refused.
    pub state_machine_arn: String,
    /// `STEP_TIMEOUT_SECONDS` (default 3600, the template's `StepTimeoutSeconds`): how long after
    /// its token was stored a closed token of a running execution keeps its statement for a
    /// retry to re-attach (at least [`MIN_REATTACH_WAIT_SECONDS`]).
    pub step_timeout_seconds: i64,
    /// `STACK_NAME` (required when `OPENLINEAGE_URL` is set): the job namespace of the
    /// execution's own OpenLineage run.
    pub stack: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(config::env())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(Vars::new(lookup))
    }

    fn read<F: Fn(&str) -> Option<String>>(mut vars: Vars<F>) -> Result<Self, ConfigError> {
        let table = TableSettings::read(&mut vars);
        let pending_index = vars
            .optional("PENDING_INDEX")
            .unwrap_or_else(|| DEFAULT_PENDING_INDEX.to_owned());
        let grace_seconds = vars.seconds("RECONCILE_GRACE_SECONDS", 60);
        let max_items = vars.count("RECONCILE_MAX_ITEMS", 100, 1000);
        let function_name = vars
            .optional("AWS_LAMBDA_FUNCTION_NAME")
            .unwrap_or_else(|| "reconciler".to_owned());
        let run_lock = read_run_lock(&mut vars);
        let state_machine_arn = vars.required("STATE_MACHINE_ARN");
        if !state_machine_arn.is_empty()
            && execution::state_machine_name(&state_machine_arn).is_none()
        {
            vars.problem(
                "STATE_MACHINE_ARN must be a Standard state machine's ARN (arn:<partition>:states:<region>:<account>:stateMachine:<name>)",
            );
        }
        let step_timeout_seconds = vars.seconds("STEP_TIMEOUT_SECONDS", 3600);
        let stack = match vars.optional(etl_callback::lineage::URL_VAR) {
            Some(_) => vars.required("STACK_NAME"),
            None => vars.optional("STACK_NAME").unwrap_or_default(),
        };
        vars.finish()?;
        Ok(Self {
            table,
            pending_index,
            grace_seconds,
            max_items,
            function_name,
            run_lock,
            state_machine_arn,
            step_timeout_seconds,
            stack,
        })
    }

    /// How long after its token was stored a closed token of a running execution keeps its
    /// statement: the step timeout, at least [`MIN_REATTACH_WAIT_SECONDS`].
    pub fn reattach_wait_seconds(&self) -> i64 {
        self.step_timeout_seconds.max(MIN_REATTACH_WAIT_SECONDS)
    }
}

/// A DynamoDB table name (3-255 of `A-Z a-z 0-9 _ . -`) or a table ARN.
fn is_table_name(name: &str) -> bool {
    if name.starts_with("arn:") {
        return name.contains(":table/") && name.chars().all(|c| c.is_ascii_graphic());
    }
    (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn read_run_lock<F: Fn(&str) -> Option<String>>(vars: &mut Vars<F>) -> Option<RunLockSettings> {
    let name = vars
        .optional("RUN_LOCK_NAME")
        .unwrap_or_else(|| DEFAULT_LOCK_NAME.to_owned());
    if name.chars().count() > 255 || name.chars().any(char::is_control) {
        vars.problem("RUN_LOCK_NAME must be 1-255 characters without control characters");
    }
    let table = vars.optional("RUN_LOCK_TABLE")?;
    if !is_table_name(&table) {
        vars.problem(
            "RUN_LOCK_TABLE must be a DynamoDB table name (3-255 characters of A-Z a-z 0-9 _ . -) or a table ARN",
        );
    }
    Some(RunLockSettings { table, name })
}
