//! The pipeline definition: a short TOML file beside the SQL it names. It says which scripts run
//! and what runs after what; [`Definition::load`] refuses anything the state machine or the
//! submitter would refuse later, each time naming the file, the step and the reason.
//!
//! ```toml
//! name = "SalesEtl"
//!
//! [[step]]
//! name = "SetupSalesDataPipeline"
//! script = "setup_sales_data_pipeline.sql"
//!
//! [[step]]
//! name = "LoadItem"
//! script = "load_item.sql"
//! after = ["SetupSalesDataPipeline"]
//! ```
//!
//! Each script is also held to Redshift's transaction rules ([`redshift_sql::transaction`]): a
//! step is one transaction, so a statement Redshift refuses inside a transaction block is refused
//! (`NotInTransaction`), and so is a `TRUNCATE`, which commits the step's transaction
//! (`NonAtomicStep`), unless the step says `atomic = false`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use etl_callback::run_date::RunDate;
use etl_callback::script::{self, ScriptError};
use redshift_sql::lineage::{self, TableName, Warning};
use redshift_sql::transaction::{self, Command, Rule};

use crate::checks::{CheckDef, RawCheck};
use crate::lineage::ProblemKind;
use crate::vars::VarDecl;
use etl_callback::vars::{check_declared, UndeclaredError};
use serde::Deserialize;
use thiserror::Error;

/// Names the generator gives its own states: no step or Parallel may take them.
pub const RESERVED_STATE_NAMES: &[&str] = &[
    "ReadInput",
    "CheckInput",
    "InvalidInput",
    "DefaultRunDate",
    "ResolveVars",
    "ReadVarsRefusal",
    "VarsRefused",
    "UnexpectedVars",
    "Settings",
    "AcquireRunLock",
    "DescribeRunLock",
    "RunAlreadyInProgress",
    "Pipeline",
    "ReleaseRunLock",
    "RunFailed",
    "EtlSucceeded",
];

/// The error names a step may map (what the functions send for a statement's outcome).
pub const MAPPABLE_ERRORS: &[&str] = &[
    "Redshift.StatementFailed",
    "Redshift.StatementAborted",
    "Redshift.StatementNotFound",
];

/// The shortest heartbeat limit a step may have: `StepHeartbeatSeconds`' own minimum in
/// template.yaml (the reconciler's longest grace, 300 s, plus two intervals of its slowest allowed
/// rate, 2 × 120 s, plus one reconciler run, 60 s).
pub const MIN_HEARTBEAT_SECONDS: u32 = 600;

/// The execution's own limit (`TimeoutSeconds` of the state machine): no step may wait longer.
pub const EXECUTION_TIMEOUT_SECONDS: u32 = 21_600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    name: String,
    description: Option<String>,
    #[serde(default)]
    step: Vec<RawStep>,
    #[serde(default)]
    parallel: Vec<RawParallel>,
    #[serde(default)]
    check: Vec<RawCheck>,
    #[serde(default)]
    vars: BTreeMap<String, crate::vars::RawVar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: String,
    script: String,
    #[serde(default)]
    after: Vec<String>,
    description: Option<String>,
    heartbeat_seconds: Option<u32>,
    timeout_seconds: Option<u32>,
    #[serde(default)]
    errors: BTreeMap<String, String>,
    atomic: Option<bool>,
    reads: Option<Vec<String>>,
    writes: Option<Vec<String>>,
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParallel {
    name: String,
    steps: Vec<String>,
    description: Option<String>,
}

/// One SQL step: one script, one Data API transaction, one Task state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub script: String,
    /// The steps this one runs after (indexes into [`Definition::steps`]), in definition order.
    pub after: Vec<usize>,
    pub description: Option<String>,
    pub heartbeat_seconds: Option<u32>,
    pub timeout_seconds: Option<u32>,
    /// Error name the functions would send -> the name the Task fails with instead.
    pub errors: BTreeMap<String, String>,
    /// `false` when the step accepts that its script commits part of its work before it ends
    /// (a `TRUNCATE`, which commits the transaction it runs in on Redshift): a failure later in
    /// the script then leaves those changes. `true` (the default) otherwise.
    pub atomic: bool,
    /// The tables the step reads and writes ([`crate::lineage`]).
    pub data: StepData,
    /// A `[[check]]`: the step's SQL is one SELECT whose rows are violations ([`crate::checks`]).
    /// Its `script` is empty when the check's SQL is inline or generated (`check.sql`).
    pub check: Option<CheckDef>,
}

/// What a step reads and writes: from its script ([`redshift_sql::lineage::analyze`]), or as
/// the step declares it (`reads = [...]`, `writes = [...]`, which then win).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepData {
    pub reads: BTreeSet<TableName>,
    pub writes: BTreeSet<TableName>,
    /// The script's temporary tables: its own.
    pub temporary: BTreeSet<String>,
    /// `reads = [...]` replaced what the script says.
    pub declared_reads: bool,
    /// `writes = [...]` replaced what the script says.
    pub declared_writes: bool,
    /// Statements the analysis could not read.
    pub warnings: Vec<Warning>,
    /// `allow = ["WriteConflict:table", "MissingDependency:table"]`.
    pub allow: Vec<Allowance>,
}

/// One entry of a step's `allow`: a problem of the data check the step acknowledges.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Allowance {
    pub kind: ProblemKind,
    pub table: TableName,
}

impl StepData {
    /// Whether the analysis's warnings still matter: not when the step declares both sides.
    pub fn warnings_matter(&self) -> bool {
        !(self.declared_reads && self.declared_writes)
    }
}

/// A name (and comment) for the Parallel state that runs exactly these steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParallelName {
    pub name: String,
    pub steps: BTreeSet<usize>,
    pub description: Option<String>,
}

/// A checked pipeline definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// The file it was read from (as given), for messages and the generated header.
    pub file: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub steps: Vec<Step>,
    pub parallels: Vec<ParallelName>,
    /// The scripts' content version: the first 16 hex digits of a SHA-256 over every script the
    /// steps name (name and bytes, in name order). The state machine passes it to the submitter,
    /// which reads `<prefix><version>/<script>`, so a run finishes with the scripts it started
    /// with although a later deploy uploads new ones under their own version.
    pub scripts_version: String,
    /// The typed variables of `[vars]` ([`crate::vars`]), in name order.
    pub vars: Vec<VarDecl>,
    /// What is accepted but probably a mistake (a declared variable no script uses).
    pub warnings: Vec<String>,
}

/// Why a definition is refused. Every message starts with the file; step errors name the step.
#[derive(Debug, Error)]
pub enum DefinitionError {
    #[error("{file}: cannot read the definition: {source}")]
    Unreadable {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("{file}: step {step}: {reason}")]
    InvalidStep {
        file: String,
        step: String,
        reason: String,
    },
    #[error("{file}: step {step} is defined more than once")]
    DuplicateStep { file: String, step: String },
    #[error("{file}: step {step} runs after {unknown}, which is not a step of this pipeline")]
    UnknownStep {
        file: String,
        step: String,
        unknown: String,
    },
    #[error("{file}: the steps depend on each other in a cycle: {cycle}")]
    Cycle { file: String, cycle: String },
    #[error("{file}: step {step}: script {script} does not exist ({path})")]
    ScriptNotFound {
        file: String,
        step: String,
        script: String,
        path: String,
    },
    #[error("{file}: step {step}: the submitter would refuse script {script} ({}): {source}", .source.name())]
    ScriptRefused {
        file: String,
        step: String,
        script: String,
        #[source]
        source: ScriptError,
    },
    #[error("{file}: step {step}: script {script}, statement {statement}: {} commits the step's transaction on Redshift ({}), so what ran before it stays committed and a failure after it cannot roll it back: use DELETE FROM, which rolls back with the step, or set atomic = false on the step to accept partial changes", .command.name, .command.url())]
    NonAtomicStep {
        file: String,
        step: String,
        script: String,
        /// 1-based, in the script.
        statement: usize,
        command: Command,
    },
    #[error("{file}: step {step}: script {script}, statement {statement}: Redshift cannot run {} inside a transaction block ({}), and a step runs as one (one BatchExecuteStatement): {}", .command.name, .command.url(), not_in_transaction_fix(.command))]
    NotInTransaction {
        file: String,
        step: String,
        script: String,
        /// 1-based, in the script.
        statement: usize,
        command: Command,
    },
    #[error("{file}: {what} {name}: {reason}")]
    InvalidStateName {
        file: String,
        what: &'static str,
        name: String,
        reason: String,
    },
    #[error("{file}: check {check}: {reason}")]
    InvalidCheck {
        file: String,
        check: String,
        reason: String,
    },
    /// A script's `{{name}}` is neither a built-in nor declared in `[vars]`.
    #[error("{script}: {line}: {name} (step {step} uses {{{{{name}}}}}, which is neither declared in [vars] of {file} nor a built-in: run_date, run_date_prev, run_date_month_start, run_date_nodash)")]
    UndeclaredVariable {
        file: String,
        step: String,
        script: String,
        line: usize,
        name: String,
    },
    #[error("{file}: the pipeline is too large for one execution: {reason}")]
    TooLarge { file: String, reason: String },
}

impl DefinitionError {
    /// The stable name of the error (printed first by the generator).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Unreadable { .. } => "DefinitionUnreadable",
            Self::Syntax { .. } | Self::Invalid { .. } => "InvalidDefinition",
            Self::InvalidStep { .. } => "InvalidStep",
            Self::DuplicateStep { .. } => "DuplicateStep",
            Self::UnknownStep { .. } => "UnknownStep",
            Self::Cycle { .. } => "DependencyCycle",
            Self::ScriptNotFound { .. } => "ScriptNotFound",
            Self::ScriptRefused { .. } => "ScriptRefused",
            Self::NonAtomicStep { .. } => "NonAtomicStep",
            Self::NotInTransaction { .. } => "NotInTransaction",
            Self::InvalidStateName { .. } => "InvalidStateName",
            Self::TooLarge { .. } => "PipelineTooLarge",
            Self::InvalidCheck { .. } => "InvalidCheck",
            Self::UndeclaredVariable { .. } => "UndeclaredVariable",
        }
    }
}

/// A state name the submitter (step names) and Step Functions both accept: 1-80 characters of
/// `A-Z a-z 0-9 _ -`. Step Functions allows more, but the step name also travels in the
/// statement name `<stack>/<execution>/<step>` and the submitter's payload check.
pub fn check_state_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > 80 {
        return Err(format!(
            "is {} characters long; Step Functions allows at most 80",
            name.chars().count()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "contains {c:?}; use only A-Z a-z 0-9 _ - (the name is also the step name in statement names)"
        ));
    }
    if RESERVED_STATE_NAMES.contains(&name) {
        return Err("is the name of one of the generator's own states".into());
    }
    Ok(())
}

/// An error name a step's mapping may produce: what Step Functions' `Retry`/`Catch` can match.
pub fn check_error_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 256 {
        return Err("must be 1-256 characters".into());
    }
    if name.starts_with("States.") {
        return Err("must not start with States. (Step Functions reserves that prefix)".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("must be made of A-Z a-z 0-9 . _ -".into());
    }
    Ok(())
}

/// The date the scripts are checked with (`{{run_date}}` always renders to 12 characters).
const CHECK_DATE: &str = "2021-06-26";

impl Definition {
    /// Reads and checks the definition; scripts are looked up beside it.
    pub fn load(path: &Path) -> Result<Self, DefinitionError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| DefinitionError::Unreadable {
            file: file.clone(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, path, |script| std::fs::read(dir.join(script)).ok()).map_err(|e| match e
        {
            DefinitionError::ScriptNotFound {
                file, step, script, ..
            } => DefinitionError::ScriptNotFound {
                path: dir.join(&script).display().to_string(),
                file,
                step,
                script,
            },
            other => other,
        })
    }

    /// Checks a definition's text; `read_script` returns a script's bytes, `None` when missing.
    pub fn parse(
        text: &str,
        file: &Path,
        read_script: impl Fn(&str) -> Option<Vec<u8>>,
    ) -> Result<Self, DefinitionError> {
        let f = file.display().to_string();
        let raw: RawDefinition = toml::from_str(text).map_err(|e| DefinitionError::Syntax {
            file: f.clone(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        check_state_name(&raw.name).map_err(|reason| DefinitionError::InvalidStateName {
            file: f.clone(),
            what: "pipeline name",
            name: raw.name.clone(),
            reason,
        })?;
        if raw.step.is_empty() && raw.check.is_empty() {
            return Err(DefinitionError::Invalid {
                file: f,
                reason: "no steps: add at least one [[step]] with a name and a script".into(),
            });
        }
        let invalid = |step: &str, reason: String| DefinitionError::InvalidStep {
            file: f.clone(),
            step: step.to_owned(),
            reason,
        };
        let mut index = BTreeMap::new();
        for (i, s) in raw.step.iter().enumerate() {
            check_state_name(&s.name).map_err(|reason| DefinitionError::InvalidStateName {
                file: f.clone(),
                what: "step",
                name: s.name.clone(),
                reason,
            })?;
            if index.insert(s.name.clone(), i).is_some() {
                return Err(DefinitionError::DuplicateStep {
                    file: f.clone(),
                    step: s.name.clone(),
                });
            }
        }
        for (i, c) in raw.check.iter().enumerate() {
            check_state_name(&c.name).map_err(|reason| DefinitionError::InvalidStateName {
                file: f.clone(),
                what: "check",
                name: c.name.clone(),
                reason,
            })?;
            if index.insert(c.name.clone(), raw.step.len() + i).is_some() {
                return Err(DefinitionError::DuplicateStep {
                    file: f.clone(),
                    step: c.name.clone(),
                });
            }
        }
        let mut vars =
            crate::vars::declare(&raw.vars).map_err(|reason| DefinitionError::Invalid {
                file: f.clone(),
                reason,
            })?;
        let date = RunDate::parse(CHECK_DATE).expect("the check date is a calendar date");
        let values = crate::vars::default_values(date, &vars);
        let mut steps = Vec::with_capacity(raw.step.len());
        let mut scripts: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for s in &raw.step {
            let mut after = Vec::new();
            for dep in &s.after {
                let Some(&j) = index.get(dep) else {
                    return Err(DefinitionError::UnknownStep {
                        file: f.clone(),
                        step: s.name.clone(),
                        unknown: dep.clone(),
                    });
                };
                if j == index[&s.name] {
                    return Err(DefinitionError::Cycle {
                        file: f.clone(),
                        cycle: format!("{0} -> {0}", s.name),
                    });
                }
                if after.contains(&j) {
                    return Err(invalid(&s.name, format!("lists {dep} twice in after")));
                }
                after.push(j);
            }
            after.sort_unstable();
            check_script_name(&s.script).map_err(|r| invalid(&s.name, r))?;
            let Some(bytes) = read_script(&s.script) else {
                return Err(DefinitionError::ScriptNotFound {
                    file: f.clone(),
                    step: s.name.clone(),
                    script: s.script.clone(),
                    path: s.script.clone(),
                });
            };
            if let Ok(text) = std::str::from_utf8(&bytes) {
                match check_declared(text, |n| vars.iter().any(|v| v.name == n)) {
                    Ok(found) => crate::vars::note_uses(&mut vars, &s.name, &found),
                    Err(UndeclaredError::Undeclared(u)) => {
                        return Err(DefinitionError::UndeclaredVariable {
                            script: file
                                .parent()
                                .unwrap_or(Path::new(""))
                                .join(&s.script)
                                .display()
                                .to_string(),
                            file: f.clone(),
                            step: s.name.clone(),
                            line: u.line,
                            name: u.name,
                        })
                    }
                    // What cannot be lexed is refused by `prepare` below, with its name.
                    Err(UndeclaredError::Placeholder(_)) => {}
                }
            }
            let statements = script::prepare_with(&bytes, &values).map_err(|source| {
                DefinitionError::ScriptRefused {
                    file: f.clone(),
                    step: s.name.clone(),
                    script: s.script.clone(),
                    source,
                }
            })?;
            let atomic = s.atomic.unwrap_or(true);
            check_transaction(&statements, atomic).map_err(|e| match e {
                TransactionProblem::Commits { statement, command } => {
                    DefinitionError::NonAtomicStep {
                        file: f.clone(),
                        step: s.name.clone(),
                        script: s.script.clone(),
                        statement,
                        command,
                    }
                }
                TransactionProblem::NotInTransaction { statement, command } => {
                    DefinitionError::NotInTransaction {
                        file: f.clone(),
                        step: s.name.clone(),
                        script: s.script.clone(),
                        statement,
                        command,
                    }
                }
                TransactionProblem::NeedlessNonAtomic => invalid(
                    &s.name,
                    format!(
                        "atomic = false, but no statement of script {} commits the step's transaction; remove atomic = false",
                        s.script
                    ),
                ),
            })?;
            check_limits(s.heartbeat_seconds, s.timeout_seconds)
                .map_err(|r| invalid(&s.name, r))?;
            for (from, to) in &s.errors {
                if !MAPPABLE_ERRORS.contains(&from.as_str()) {
                    return Err(invalid(
                        &s.name,
                        format!(
                            "errors maps {from}, which no function sends; mappable: {}",
                            MAPPABLE_ERRORS.join(", ")
                        ),
                    ));
                }
                check_error_name(to)
                    .map_err(|r| invalid(&s.name, format!("errors.{from} = {to:?} {r}")))?;
            }
            if let Some(d) = &s.description {
                check_comment(d).map_err(|r| invalid(&s.name, r))?;
            }
            // The tables as the defaults name them (`{{schema}}.t` is `public.t`).
            let data = step_data(s, &statements.join(";\n")).map_err(|r| invalid(&s.name, r))?;
            steps.push(Step {
                name: s.name.clone(),
                script: s.script.clone(),
                after,
                description: s.description.clone(),
                heartbeat_seconds: s.heartbeat_seconds,
                timeout_seconds: s.timeout_seconds,
                errors: s.errors.clone(),
                atomic,
                data,
                check: None,
            });
            scripts.insert(s.script.clone(), bytes);
        }
        for c in &raw.check {
            let step = check_step(c, &index, &mut vars, &values, file, &f, &read_script)?;
            if !step.script.is_empty() {
                let bytes = read_script(&step.script).expect("check_step read it");
                scripts.insert(step.script.clone(), bytes);
            }
            steps.push(step);
        }
        if let Some(cycle) = find_cycle(&steps) {
            return Err(DefinitionError::Cycle {
                file: f,
                cycle: cycle
                    .iter()
                    .map(|&i| steps[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(" -> "),
            });
        }
        let mut parallels: Vec<ParallelName> = Vec::new();
        for p in &raw.parallel {
            check_state_name(&p.name).map_err(|reason| DefinitionError::InvalidStateName {
                file: f.clone(),
                what: "parallel",
                name: p.name.clone(),
                reason,
            })?;
            if index.contains_key(&p.name) || parallels.iter().any(|q| q.name == p.name) {
                return Err(DefinitionError::InvalidStateName {
                    file: f.clone(),
                    what: "parallel",
                    name: p.name.clone(),
                    reason: "is already the name of a step or another parallel".into(),
                });
            }
            let mut set = BTreeSet::new();
            for s in &p.steps {
                let Some(&j) = index.get(s) else {
                    return Err(DefinitionError::Invalid {
                        file: f.clone(),
                        reason: format!("parallel {} names {s}, which is not a step", p.name),
                    });
                };
                set.insert(j);
            }
            if let Some(d) = &p.description {
                check_comment(d).map_err(|reason| DefinitionError::Invalid {
                    file: f.clone(),
                    reason: format!("parallel {}: {reason}", p.name),
                })?;
            }
            parallels.push(ParallelName {
                name: p.name.clone(),
                steps: set,
                description: p.description.clone(),
            });
        }
        let warnings = vars
            .iter()
            .filter(|v| v.used_by.is_empty())
            .map(|v| {
                format!(
                    "{f}: warning: variable {} is declared in [vars] but no script uses {{{{{}}}}}",
                    v.name, v.name
                )
            })
            .collect();
        Ok(Definition {
            vars,
            warnings,
            file: file.to_path_buf(),
            name: raw.name,
            description: raw.description,
            steps,
            parallels,
            scripts_version: scripts_version(&scripts),
        })
    }

    pub fn step_index(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }
}

/// See [`Definition::scripts_version`].
pub fn scripts_version(scripts: &BTreeMap<String, Vec<u8>>) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for (name, bytes) in scripts {
        hash.update((name.len() as u64).to_be_bytes());
        hash.update(name.as_bytes());
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    }
    hex::encode(hash.finalize())[..16].to_owned()
}

/// The step's tables: the script's analysis, replaced by what the step declares.
fn step_data(s: &RawStep, script: &str) -> Result<StepData, String> {
    let analysis = lineage::analyze(script);
    let declared = |key: &str, names: &[String]| -> Result<BTreeSet<TableName>, String> {
        names
            .iter()
            .map(|n| TableName::parse(n).map_err(|e| format!("{key}: {e}")))
            .collect()
    };
    let mut data = StepData {
        reads: analysis.reads,
        writes: analysis.writes,
        temporary: analysis.temporary,
        warnings: analysis.warnings,
        ..StepData::default()
    };
    if let Some(reads) = &s.reads {
        data.reads = declared("reads", reads)?;
        data.declared_reads = true;
    }
    if let Some(writes) = &s.writes {
        data.writes = declared("writes", writes)?;
        data.declared_writes = true;
    }
    for entry in &s.allow {
        let bad = || {
            format!(
                "allow entry {entry:?}: expected \"MissingDependency:<table>\" or \"WriteConflict:<table>\""
            )
        };
        let (kind, table) = entry.split_once(':').ok_or_else(bad)?;
        let kind = match kind.trim() {
            "MissingDependency" => ProblemKind::MissingDependency,
            "WriteConflict" => ProblemKind::WriteConflict,
            _ => return Err(bad()),
        };
        let table =
            TableName::parse(table.trim()).map_err(|e| format!("allow entry {entry:?}: {e}"))?;
        let allowance = Allowance { kind, table };
        if data.allow.contains(&allowance) {
            return Err(format!("allow lists {entry:?} twice"));
        }
        data.allow.push(allowance);
    }
    Ok(data)
}

fn check_script_name(script: &str) -> Result<(), String> {
    let ok = !script.is_empty()
        && script.len() <= 200
        && script.ends_with(".sql")
        && !script.starts_with('.')
        && script
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "script {script:?} must be a file name beside the definition ending in .sql (A-Z a-z 0-9 _ - .), without a path"
        ))
    }
}

/// A `[[check]]` as a step: its SELECT resolved (inline, generated or its script) and checked to be
/// one SELECT the submitter runs, its `after` resolved, its error name mapped.
fn check_step(
    c: &RawCheck,
    index: &BTreeMap<String, usize>,
    vars: &mut [VarDecl],
    values: &etl_callback::vars::Values,
    file: &Path,
    f: &str,
    read_script: &impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<Step, DefinitionError> {
    let invalid = |reason: String| DefinitionError::InvalidCheck {
        file: f.to_owned(),
        check: c.name.clone(),
        reason,
    };
    let me = index[&c.name];
    let mut after = Vec::new();
    for dep in &c.after {
        let Some(&j) = index.get(dep) else {
            return Err(DefinitionError::UnknownStep {
                file: f.to_owned(),
                step: c.name.clone(),
                unknown: dep.clone(),
            });
        };
        if j == me {
            return Err(DefinitionError::Cycle {
                file: f.to_owned(),
                cycle: format!("{0} -> {0}", c.name),
            });
        }
        if after.contains(&j) {
            return Err(invalid(format!("lists {dep} twice in after")));
        }
        after.push(j);
    }
    after.sort_unstable();
    let (def, script) = c.resolve().map_err(invalid)?;
    let bytes = match (&script, &def.sql) {
        (Some(script), _) => {
            check_script_name(script).map_err(invalid)?;
            read_script(script).ok_or_else(|| DefinitionError::ScriptNotFound {
                file: f.to_owned(),
                step: c.name.clone(),
                script: script.clone(),
                path: script.clone(),
            })?
        }
        (None, sql) => sql.clone().unwrap_or_default().into_bytes(),
    };
    // Its placeholders as a script's: declared or built-in, else UndeclaredVariable.
    if let Ok(text) = std::str::from_utf8(&bytes) {
        match check_declared(text, |n| vars.iter().any(|v| v.name == n)) {
            Ok(found) => crate::vars::note_uses(vars, &c.name, &found),
            Err(UndeclaredError::Undeclared(u)) => {
                return Err(DefinitionError::UndeclaredVariable {
                    script: match &script {
                        Some(script) => file
                            .parent()
                            .unwrap_or(Path::new(""))
                            .join(script)
                            .display()
                            .to_string(),
                        None => format!("{f}: check {}", c.name),
                    },
                    file: f.to_owned(),
                    step: c.name.clone(),
                    line: u.line,
                    name: u.name,
                })
            }
            // What cannot be lexed is refused by `prepare_with` below, with its name.
            Err(UndeclaredError::Placeholder(_)) => {}
        }
    }
    let statements = script::prepare_with(&bytes, values)
        .map_err(|e| invalid(format!("{} ({})", e, e.name())))?;
    etl_callback::check::check_select(&statements).map_err(|e| invalid(e.to_string()))?;
    check_limits(c.heartbeat_seconds, c.timeout_seconds).map_err(invalid)?;
    let mut errors = BTreeMap::new();
    if let Some(name) = &c.error {
        check_error_name(name).map_err(|r| invalid(format!("error = {name:?} {r}")))?;
        errors.insert(etl_callback::check::CHECK_FAILED.to_owned(), name.clone());
    }
    if let Some(d) = &c.description {
        check_comment(d).map_err(invalid)?;
    }
    // The tables as the defaults name them (`{{schema}}.t` is `public.t`), as for a step.
    let analysis = lineage::analyze(&statements.join(";\n"));
    Ok(Step {
        name: c.name.clone(),
        script: script.unwrap_or_default(),
        after,
        description: c.description.clone(),
        heartbeat_seconds: c.heartbeat_seconds,
        timeout_seconds: c.timeout_seconds,
        errors,
        atomic: true,
        data: StepData {
            reads: analysis.reads,
            writes: analysis.writes,
            temporary: analysis.temporary,
            warnings: analysis.warnings,
            ..StepData::default()
        },
        check: Some(def),
    })
}

/// What Redshift's transaction rules ([`redshift_sql::transaction`]) say about a step's script.
enum TransactionProblem {
    /// A statement commits the step's transaction and the step does not say `atomic = false`.
    Commits { statement: usize, command: Command },
    /// A statement Redshift refuses inside a transaction block, which every step is.
    NotInTransaction { statement: usize, command: Command },
    /// `atomic = false` on a step whose script commits nothing before its end.
    NeedlessNonAtomic,
}

fn check_transaction(statements: &[String], atomic: bool) -> Result<(), TransactionProblem> {
    let mut commits = false;
    for (i, sql) in statements.iter().enumerate() {
        let statement = i + 1;
        // The script was split by the same lexer: each statement lexes.
        match transaction::classify(sql).unwrap_or(Rule::Transactional) {
            Rule::Transactional => {}
            Rule::NotInTransactionBlock(command) => {
                return Err(TransactionProblem::NotInTransaction { statement, command })
            }
            Rule::Commits(command) if atomic => {
                return Err(TransactionProblem::Commits { statement, command })
            }
            Rule::Commits(_) => commits = true,
        }
    }
    if !atomic && !commits {
        return Err(TransactionProblem::NeedlessNonAtomic);
    }
    Ok(())
}

/// How to do without a statement that cannot run in a step.
fn not_in_transaction_fix(command: &Command) -> &'static str {
    match *command {
        transaction::VACUUM => "remove it (Redshift vacuums tables automatically in the background) or run it outside the pipeline",
        transaction::ALTER_TABLE_APPEND => "move the rows with INSERT INTO … SELECT and DELETE FROM, which roll back with the step",
        _ => "run it outside the pipeline, once, before deploying",
    }
}

fn check_limits(heartbeat: Option<u32>, timeout: Option<u32>) -> Result<(), String> {
    if let Some(h) = heartbeat {
        if !(MIN_HEARTBEAT_SECONDS..EXECUTION_TIMEOUT_SECONDS).contains(&h) {
            return Err(format!(
                "heartbeat_seconds = {h}: must be {MIN_HEARTBEAT_SECONDS} to {} seconds (the reconciler's grace, two reconcile intervals and one reconciler run must fit between two heartbeats)",
                EXECUTION_TIMEOUT_SECONDS - 1
            ));
        }
    }
    if let Some(t) = timeout {
        if t == 0 || t > EXECUTION_TIMEOUT_SECONDS {
            return Err(format!(
                "timeout_seconds = {t}: must be 1 to {EXECUTION_TIMEOUT_SECONDS} seconds (the execution's own timeout)"
            ));
        }
    }
    if let (Some(h), Some(t)) = (heartbeat, timeout) {
        if h >= t {
            return Err(format!(
                "heartbeat_seconds = {h} must be shorter than timeout_seconds = {t}"
            ));
        }
    }
    Ok(())
}

fn check_comment(text: &str) -> Result<(), String> {
    if text.chars().count() > 1000 {
        return Err("description is longer than 1000 characters".into());
    }
    Ok(())
}

/// A dependency cycle (step indexes, first repeated at the end), if any.
fn find_cycle(steps: &[Step]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        i: usize,
        steps: &[Step],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        marks[i] = Mark::Open;
        path.push(i);
        for &j in &steps[i].after {
            match marks[j] {
                Mark::Open => {
                    let start = path
                        .iter()
                        .position(|&p| p == j)
                        .expect("open steps are on the path");
                    // `after` points backwards (a step -> what it runs after): report in run order.
                    let mut cycle: Vec<usize> = path[start..].to_vec();
                    cycle.reverse();
                    cycle.push(cycle[0]);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(j, steps, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[i] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; steps.len()];
    for i in 0..steps.len() {
        if marks[i] == Mark::New {
            if let Some(c) = visit(i, steps, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.script)
    }
}
