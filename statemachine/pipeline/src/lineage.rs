//! The dependency graph checked against the data: what each step reads and writes
//! ([`crate::definition::StepData`], from [`redshift_sql::lineage`]) against what it runs after.
//!
//! - `MissingDependency`: step B reads a table step A writes, and neither runs after the other
//!   (directly or through other steps), so they may overlap and B may read the table before,
//!   during or after A's write. The fix: add A to B's `after`.
//! - `WriteConflict`: two steps that may run at the same time write the same table (on Redshift
//!   one waits for the other's lock or fails with a serializable isolation violation).
//!
//! A table no step writes is a **source** (loaded outside the pipeline): reading it orders
//! nothing. A step acknowledges a problem with `allow = ["MissingDependency:<table>"]` (the
//! reading step) or `allow = ["WriteConflict:<table>"]` (either writing step); it is then still
//! printed, as acknowledged. An `allow` that matches no problem is refused (`NeedlessAllow`).
//!
//! The table-level graph ([`graph_json`], [`mermaid`]) is what `pipeline lineage` prints.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use redshift_sql::lineage::TableName;

use crate::definition::{Allowance, Definition};
use crate::layout::ancestors;

/// What the data check refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    MissingDependency,
    WriteConflict,
}

impl ProblemKind {
    /// The stable name, as refusals and `allow` entries spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::MissingDependency => "MissingDependency",
            Self::WriteConflict => "WriteConflict",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One problem between two steps over one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub table: TableName,
    /// MissingDependency: the writing step; WriteConflict: the first writer in definition order.
    pub first: usize,
    /// MissingDependency: the reading step; WriteConflict: the second writer.
    pub second: usize,
    /// The step whose `allow` acknowledges it.
    pub acknowledged_by: Option<usize>,
}

impl Problem {
    /// `file: steps A, B: table T: what and the fix` (the refusal without its name).
    pub fn message(&self, def: &Definition) -> String {
        let file = def.file.display();
        let (a, b) = (&def.steps[self.first].name, &def.steps[self.second].name);
        let table = &self.table;
        let what = match self.kind {
            ProblemKind::MissingDependency => format!(
                "{b} reads {table}, which {a} writes, and neither runs after the other, so {b} may read it before, during or after {a}'s write: add \"{a}\" to {b}'s after (or, when intended, allow = [\"MissingDependency:{table}\"] on {b})"
            ),
            ProblemKind::WriteConflict => format!(
                "{a} and {b} both write {table} and may run at the same time (one waits for the other's lock or fails with a serializable isolation violation): add \"{a}\" to {b}'s after, or \"{b}\" to {a}'s (or, when intended, allow = [\"WriteConflict:{table}\"] on either)"
            ),
        };
        let steps = if self.kind == ProblemKind::MissingDependency {
            format!("{b}, {a}")
        } else {
            format!("{a}, {b}")
        };
        format!("{file}: steps {steps}: table {table}: {what}")
    }

    /// The line `pipeline check` prints: `ErrorName: file: steps: table: fix`, marked when
    /// acknowledged.
    pub fn line(&self, def: &Definition) -> String {
        match self.acknowledged_by {
            None => format!("{}: {}", self.kind, self.message(def)),
            Some(i) => format!(
                "{} (acknowledged by {}'s allow): {}",
                self.kind,
                def.steps[i].name,
                self.message(def)
            ),
        }
    }
}

/// The result of the data check.
#[derive(Debug, Clone, Default)]
pub struct Check {
    /// Every problem, acknowledged or not, by table, kind and steps.
    pub problems: Vec<Problem>,
    /// `(step, allow entry)` that matches no problem: refused as `NeedlessAllow`.
    pub needless: Vec<(usize, Allowance)>,
}

impl Check {
    /// Problems no `allow` acknowledges.
    pub fn refused(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.acknowledged_by.is_none())
    }

    /// Every refusal as `(name, message)`: unacknowledged problems, then needless `allow`s.
    pub fn refusals(&self, def: &Definition) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = self
            .refused()
            .map(|p| (p.kind.name(), p.message(def)))
            .collect();
        for (step, allow) in &self.needless {
            let what = match allow.kind {
                ProblemKind::MissingDependency => {
                    "reads it while a step that may overlap writes it"
                }
                ProblemKind::WriteConflict => {
                    "writes it while a step that may overlap writes it too"
                }
            };
            out.push((
                "NeedlessAllow",
                format!(
                    "{}: step {}: allow \"{}:{}\" acknowledges nothing (no step {what}): remove it",
                    def.file.display(),
                    def.steps[*step].name,
                    allow.kind,
                    allow.table
                ),
            ));
        }
        out
    }

    /// Lines for what is not refused but must not pass silently: acknowledged problems and the
    /// statements the analysis could not read.
    pub fn notes(&self, def: &Definition) -> Vec<String> {
        let mut out: Vec<String> = self
            .problems
            .iter()
            .filter(|p| p.acknowledged_by.is_some())
            .map(|p| p.line(def))
            .collect();
        for step in &def.steps {
            if !step.data.warnings_matter() {
                continue;
            }
            for w in &step.data.warnings {
                out.push(format!(
                    "UnreadableStatement: {}: step {}: script {}, {w}",
                    def.file.display(),
                    step.name,
                    step.script
                ));
            }
        }
        out
    }
}

/// Checks every pair of steps that may overlap against the tables they read and write.
pub fn check(def: &Definition) -> Check {
    let anc = ancestors(def);
    let ordered = |a: usize, b: usize| anc[a].contains(&b) || anc[b].contains(&a);
    let mut problems = Vec::new();
    for table in tables(def).keys() {
        let writers: Vec<usize> = (0..def.steps.len())
            .filter(|&i| def.steps[i].data.writes.contains(table))
            .collect();
        let readers: Vec<usize> = (0..def.steps.len())
            .filter(|&i| def.steps[i].data.reads.contains(table))
            .collect();
        for &b in &readers {
            for &a in &writers {
                if a != b && !ordered(a, b) {
                    let acknowledged = allows(def, b, ProblemKind::MissingDependency, table);
                    problems.push(Problem {
                        kind: ProblemKind::MissingDependency,
                        table: table.clone(),
                        first: a,
                        second: b,
                        acknowledged_by: acknowledged.then_some(b),
                    });
                }
            }
        }
        for (n, &a) in writers.iter().enumerate() {
            for &b in &writers[n + 1..] {
                if !ordered(a, b) {
                    let by = [a, b]
                        .into_iter()
                        .find(|&s| allows(def, s, ProblemKind::WriteConflict, table));
                    problems.push(Problem {
                        kind: ProblemKind::WriteConflict,
                        table: table.clone(),
                        first: a,
                        second: b,
                        acknowledged_by: by,
                    });
                }
            }
        }
    }
    let mut needless = Vec::new();
    for (i, step) in def.steps.iter().enumerate() {
        for allow in &step.data.allow {
            let used = problems.iter().any(|p| {
                p.kind == allow.kind
                    && p.table == allow.table
                    && match p.kind {
                        ProblemKind::MissingDependency => p.second == i,
                        ProblemKind::WriteConflict => p.first == i || p.second == i,
                    }
            });
            if !used {
                needless.push((i, allow.clone()));
            }
        }
    }
    Check { problems, needless }
}

fn allows(def: &Definition, step: usize, kind: ProblemKind, table: &TableName) -> bool {
    def.steps[step]
        .data
        .allow
        .iter()
        .any(|a| a.kind == kind && &a.table == table)
}

/// Who reads and writes each table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableUse {
    pub written_by: BTreeSet<usize>,
    pub read_by: BTreeSet<usize>,
}

impl TableUse {
    /// Written by no step: loaded outside the pipeline.
    pub fn is_source(&self) -> bool {
        self.written_by.is_empty()
    }
}

/// Every table any step reads or writes, by name.
pub fn tables(def: &Definition) -> BTreeMap<TableName, TableUse> {
    let mut out: BTreeMap<TableName, TableUse> = BTreeMap::new();
    for (i, step) in def.steps.iter().enumerate() {
        for t in &step.data.reads {
            out.entry(t.clone()).or_default().read_by.insert(i);
        }
        for t in &step.data.writes {
            out.entry(t.clone()).or_default().written_by.insert(i);
        }
    }
    out
}

/// One step's tables as `pipeline steps` and `pipeline lineage` print them.
pub fn step_json(def: &Definition, i: usize) -> serde_json::Value {
    let data = &def.steps[i].data;
    let names = |set: &BTreeSet<TableName>| -> Vec<String> {
        set.iter().map(ToString::to_string).collect()
    };
    serde_json::json!({
        "reads": names(&data.reads),
        "writes": names(&data.writes),
        "temporary": data.temporary,
        "declared": {"reads": data.declared_reads, "writes": data.declared_writes},
        "warnings": if data.warnings_matter() {
            data.warnings.iter().map(ToString::to_string).collect::<Vec<_>>()
        } else {
            Vec::new()
        },
        "allow": data.allow.iter().map(|a| format!("{}:{}", a.kind, a.table)).collect::<Vec<_>>(),
    })
}

/// `pipeline lineage --format json`: the steps' tables, every table with its writers and
/// readers (`source`: written by no step), and the data check's problems.
pub fn graph_json(def: &Definition) -> serde_json::Value {
    let name = |i: &usize| def.steps[*i].name.clone();
    let steps: Vec<serde_json::Value> = (0..def.steps.len())
        .map(|i| {
            let mut v = step_json(def, i);
            v["name"] = def.steps[i].name.clone().into();
            v
        })
        .collect();
    let tables: Vec<serde_json::Value> = tables(def)
        .iter()
        .map(|(t, u)| {
            serde_json::json!({
                "name": t.to_string(),
                "writtenBy": u.written_by.iter().map(name).collect::<Vec<_>>(),
                "readBy": u.read_by.iter().map(name).collect::<Vec<_>>(),
                "source": u.is_source(),
            })
        })
        .collect();
    let checked = check(def);
    let problems: Vec<serde_json::Value> = checked
        .problems
        .iter()
        .map(|p| {
            serde_json::json!({
                "error": p.kind.name(),
                "table": p.table.to_string(),
                "steps": [name(&p.first), name(&p.second)],
                "acknowledged": p.acknowledged_by.is_some(),
                "message": p.message(def),
            })
        })
        .collect();
    serde_json::json!({
        "pipeline": def.name,
        "defaultSchema": redshift_sql::lineage::DEFAULT_SCHEMA,
        "steps": steps,
        "tables": tables,
        "problems": problems,
    })
}

/// `pipeline lineage --format mermaid`: steps as boxes, tables as cylinders (sources marked), an
/// arrow from a table to each step that reads it, from a step to each table it writes, both ways
/// when the step does both.
pub fn mermaid(def: &Definition) -> String {
    let tables = tables(def);
    let mut out = String::from("```mermaid\nflowchart LR\n");
    for (i, step) in def.steps.iter().enumerate() {
        out.push_str(&format!("    s{i}[\"{}\"]\n", label(&step.name)));
    }
    for (n, (t, u)) in tables.iter().enumerate() {
        let source = if u.is_source() { " (source)" } else { "" };
        out.push_str(&format!("    t{n}[(\"{}{source}\")]\n", label(t.as_str())));
    }
    for (n, u) in tables.values().enumerate() {
        for i in u.written_by.union(&u.read_by) {
            let arrow = match (u.written_by.contains(i), u.read_by.contains(i)) {
                (true, true) => format!("s{i} <--> t{n}"),
                (true, false) => format!("s{i} --> t{n}"),
                _ => format!("t{n} --> s{i}"),
            };
            out.push_str(&format!("    {arrow}\n"));
        }
    }
    out.push_str("```\n");
    out
}

/// Text safe inside a Mermaid `"…"` label.
fn label(text: &str) -> String {
    text.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}
