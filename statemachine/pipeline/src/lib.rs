//! The pipeline definition (`scripts/pipeline.toml`) and the generator of the state machine that
//! runs it (`statemachine/etl.asl.json`, committed). `make asl` regenerates the file and the
//! README's diagrams and step table; `make test` fails when any is stale.
//!
//! - [`definition`]: the file format and every check made before anything is deployed;
//! - [`checks`]: `[[check]]`, data-quality checks and the SQL of their shorthands;
//! - [`layout`]: the dependency graph as nested Parallel states;
//! - [`emit`]: the layout as states, for any design of a step (the benchmark's polling baseline
//!   reuses it);
//! - [`asl`]: the product's design: the SQL Task, the run lock, the one Fail state;
//! - [`limits`]: whether the result fits one execution;
//! - [`lineage`]: the dependency graph checked against the tables each step reads and writes;
//! - [`docs`]: the README's generated parts.

pub mod asl;
pub mod checks;
pub mod definition;
pub mod docs;
pub mod emit;
pub mod json;
pub mod layout;
pub mod limits;
pub mod lineage;
pub mod vars;

use std::path::Path;

pub use definition::{Definition, DefinitionError};
pub use layout::Layout;

/// The default definition and outputs, relative to the repository root.
pub const DEFAULT_DEFINITION: &str = "scripts/pipeline.toml";
pub const DEFAULT_ASL: &str = "statemachine/etl.asl.json";

/// A definition with its layout.
#[derive(Debug, Clone)]
pub struct Plan {
    pub definition: Definition,
    pub layout: Layout,
}

impl Plan {
    pub fn load(path: &Path) -> Result<Self, DefinitionError> {
        Ok(Self::new(Definition::load(path)?))
    }

    pub fn new(definition: Definition) -> Self {
        let layout = Layout::of(&definition);
        Self { definition, layout }
    }

    /// The state machine as written to `statemachine/etl.asl.json`, refused when it would not
    /// fit one execution.
    pub fn asl(&self) -> Result<String, DefinitionError> {
        let source = self.source_name();
        let text = asl::state_machine(&self.definition, &self.layout, &source)?.pretty();
        self.check_fits(&text)?;
        Ok(text)
    }

    /// The definition's path as the generated header shows it (relative, `/`-separated).
    pub fn source_name(&self) -> String {
        self.definition
            .file
            .display()
            .to_string()
            .replace('\\', "/")
    }

    /// Refuses a state machine over the history or definition quota.
    pub fn check_fits(&self, text: &str) -> Result<(), DefinitionError> {
        let file = self.definition.file.display().to_string();
        let steps = self.definition.steps.len();
        let events = limits::worst_case_events(steps, self.layout.parallels() + 1);
        if events > limits::HISTORY_EVENT_QUOTA {
            return Err(DefinitionError::TooLarge {
                file,
                reason: format!(
                    "{steps} steps can write up to {events} history events (each step up to {} with every retry, {} for the rest), over Step Functions' quota of {} per execution",
                    limits::EVENTS_PER_STEP,
                    limits::EVENTS_FIXED,
                    limits::HISTORY_EVENT_QUOTA
                ),
            });
        }
        let bytes = limits::deployed_bytes(text);
        if bytes > limits::DEFINITION_QUOTA_BYTES {
            return Err(DefinitionError::TooLarge {
                file,
                reason: format!(
                    "the state machine for {steps} steps is up to {bytes} bytes once deployed, over Step Functions' definition quota of {} bytes",
                    limits::DEFINITION_QUOTA_BYTES
                ),
            });
        }
        Ok(())
    }

    /// What the tests, the soak and the benchmark read: every step with its script, its
    /// dependencies and what the layout makes it wait for, plus the layout's figures.
    pub fn summary(&self) -> serde_json::Value {
        let def = &self.definition;
        let waits = self.layout.waits_for(def.steps.len());
        let extra = self.layout.extra_waits(def);
        let name = |i: &usize| def.steps[*i].name.clone();
        let steps: Vec<serde_json::Value> = def
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let data = lineage::step_json(def, i);
                serde_json::json!({
                    "name": s.name,
                    "script": s.script,
                    "after": s.after.iter().map(name).collect::<Vec<_>>(),
                    "description": s.description,
                    "errors": s.errors,
                    "check": s.check.as_ref().map(|c| serde_json::json!({
                        "kind": c.kind,
                        "severity": c.severity.as_str(),
                        "maxRows": c.max_rows,
                        "sql": c.sql,
                    })),
                    "heartbeatSeconds": s.heartbeat_seconds,
                    "timeoutSeconds": s.timeout_seconds,
                    "waitsFor": waits[i].iter().map(name).collect::<Vec<_>>(),
                    "extraWaits": extra[i].iter().map(name).collect::<Vec<_>>(),
                    "reads": data["reads"],
                    "writes": data["writes"],
                    "temporary": data["temporary"],
                    "declared": data["declared"],
                    "warnings": data["warnings"],
                    "allow": data["allow"],
                })
            })
            .collect();
        let states = self
            .asl()
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map(|v| count_states(&v))
            .unwrap_or(0);
        serde_json::json!({
            "name": def.name,
            "definition": self.source_name(),
            "scriptsVersion": def.scripts_version,
            "steps": steps,
            "layoutDepth": self.layout.depth(),
            "criticalPath": layout::critical_path(def),
            "seriesParallel": extra.iter().all(|e| e.is_empty()),
            "parallelStates": self.layout.parallels(),
            "states": states,
            "dataProblems": lineage::graph_json(def)["problems"],
            "worstCaseHistoryEvents": limits::worst_case_events(def.steps.len(), self.layout.parallels() + 1),
            "vars": def.vars.iter().map(|v| serde_json::json!({
                "name": v.name,
                "type": v.ty.as_str(),
                "default": v.default,
                "usedBy": v.used_by,
            })).collect::<Vec<_>>(),
            "warnings": def.warnings,
        })
    }
}

/// Every state of a definition, branches included.
pub fn count_states(asl: &serde_json::Value) -> usize {
    asl["States"].as_object().map_or(0, |states| {
        states
            .values()
            .map(|s| {
                1 + s["Branches"]
                    .as_array()
                    .map_or(0, |b| b.iter().map(count_states).sum())
            })
            .sum()
    })
}
