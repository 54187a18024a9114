//! The definition's `[vars]`: typed variables with defaults ([`etl_callback::vars`]).
//!
//! ```toml
//! [vars]
//! schema = { type = "identifier", default = "public", description = "Where the tables live." }
//! ```
//!
//! Every `{{name}}` of every script must be a built-in or declared here (`UndeclaredVariable`);
//! a declared variable no script uses is a warning. The state machine carries the declarations
//! to the submitter's `ResolveVars` (defaults, `PipelineVars`, the run's `vars`, checked before
//! the run lock) and the types to every SQL step.

use std::collections::{BTreeMap, BTreeSet};

use etl_callback::vars::{self, LiteralKind, Placeholder, Value, Values, VarType};
use serde::Deserialize;

use crate::json::Json;
use crate::obj;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVar {
    #[serde(rename = "type")]
    ty: String,
    default: toml::Value,
    description: Option<String>,
}

/// One declared variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarDecl {
    pub name: String,
    pub ty: VarType,
    /// The default, validated for the type, as JSON (what `ResolveVars` reads).
    pub default: serde_json::Value,
    pub description: Option<String>,
    /// The literal kinds the variable stands in, in any script.
    pub in_literals: BTreeSet<LiteralKindOrd>,
    /// The steps whose scripts use it, in definition order.
    pub used_by: Vec<String>,
}

/// [`LiteralKind`] with an order, for a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LiteralKindOrd {
    Quoted,
    Dollar,
}

impl LiteralKindOrd {
    fn kind(self) -> LiteralKind {
        match self {
            Self::Quoted => LiteralKind::Quoted,
            Self::Dollar => LiteralKind::Dollar,
        }
    }
}

/// Reads `[vars]`: each name, type and default checked. `Err` is the reason, naming the variable.
pub(crate) fn declare(raw: &BTreeMap<String, RawVar>) -> Result<Vec<VarDecl>, String> {
    if raw.len() > vars::MAX_VARS {
        return Err(format!(
            "[vars] declares {} variables; at most {} are allowed",
            raw.len(),
            vars::MAX_VARS
        ));
    }
    let mut out = Vec::new();
    for (name, v) in raw {
        vars::check_name(name).map_err(|r| format!("[vars]: {r}"))?;
        let ty = VarType::parse(&v.ty).ok_or_else(|| {
            format!(
                "[vars] {name}: type {:?} is not one of identifier, string, integer, date",
                v.ty
            )
        })?;
        let default = match &v.default {
            toml::Value::String(s) => serde_json::Value::String(s.clone()),
            toml::Value::Integer(n) => serde_json::Value::from(*n),
            other => {
                return Err(format!(
                    "[vars] {name}: default must be a string or an integer, not a {}",
                    other.type_str()
                ))
            }
        };
        Value::parse(name, ty, &default).map_err(|e| format!("[vars] default: {e}"))?;
        if default.as_str().is_some_and(|s| s.contains("${")) {
            return Err(format!(
                "[vars] {name}: default contains ${{, which CloudFormation would substitute in the state machine; set it per deployment (PipelineVars) instead"
            ));
        }
        if let Some(d) = &v.description {
            if d.chars().count() > 1000 {
                return Err(format!(
                    "[vars] {name}: description is longer than 1000 characters"
                ));
            }
        }
        out.push(VarDecl {
            name: name.clone(),
            ty,
            default,
            description: v.description.clone(),
            in_literals: BTreeSet::new(),
            used_by: Vec::new(),
        });
    }
    Ok(out)
}

/// The values the generator checks scripts with: the check date's built-ins and each default.
pub(crate) fn default_values(
    run_date: etl_callback::run_date::RunDate,
    decls: &[VarDecl],
) -> Values {
    decls.iter().fold(Values::new(run_date), |values, d| {
        let value = Value::parse(&d.name, d.ty, &d.default).expect("defaults were checked");
        values.with(&d.name, value)
    })
}

/// Records where a step's placeholders use the declared variables.
pub(crate) fn note_uses(decls: &mut [VarDecl], step: &str, found: &[Placeholder]) {
    for p in found {
        if let Some(d) = decls.iter_mut().find(|d| d.name == p.name) {
            if !d.used_by.iter().any(|s| s == step) {
                d.used_by.push(step.to_owned());
            }
            match p.literal {
                Some(LiteralKind::Quoted) => {
                    d.in_literals.insert(LiteralKindOrd::Quoted);
                }
                Some(LiteralKind::Dollar) => {
                    d.in_literals.insert(LiteralKindOrd::Dollar);
                }
                None => {}
            }
        }
    }
}

/// The declarations for the state machine's `ResolveVars`:
/// `{"name": {"type": …, "default": …, "inLiteral": [...]}}`.
pub fn declared_json(decls: &[VarDecl]) -> Json {
    Json::Obj(
        decls
            .iter()
            .map(|d| {
                let default = match &d.default {
                    serde_json::Value::Number(n) => Json::num(&n.to_string()),
                    other => Json::str(other.as_str().unwrap_or_default()),
                };
                let kinds = (!d.in_literals.is_empty()).then(|| {
                    Json::strs(
                        d.in_literals
                            .iter()
                            .map(|k| vars::literal_kind_name(k.kind())),
                    )
                });
                (
                    d.name.clone(),
                    obj! {
                        "type" => d.ty.as_str(),
                        "default" => default,
                        "inLiteral" => kinds,
                    },
                )
            })
            .collect(),
    )
}

/// Each variable's type, for every SQL step's payload (`varTypes`).
pub fn types_json(decls: &[VarDecl]) -> Json {
    Json::Obj(
        decls
            .iter()
            .map(|d| (d.name.clone(), Json::str(d.ty.as_str())))
            .collect(),
    )
}

/// The benchmark baselines' payload fields (they have no `ResolveVars`): each variable's type
/// (`varTypes`), `None` without `[vars]`.
pub fn baseline_types(decls: &[VarDecl]) -> Option<Json> {
    (!decls.is_empty()).then(|| types_json(decls))
}

/// The baselines' values (`vars`): the definition's defaults, `None` without `[vars]`.
pub fn baseline_defaults(decls: &[VarDecl]) -> Option<Json> {
    (!decls.is_empty()).then(|| {
        Json::Obj(
            decls
                .iter()
                .map(|d| {
                    let value = match &d.default {
                        serde_json::Value::Number(n) => Json::num(&n.to_string()),
                        other => Json::str(other.as_str().unwrap_or_default()),
                    };
                    (d.name.clone(), value)
                })
                .collect(),
        )
    })
}
