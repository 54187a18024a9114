//! The Backfill workflow's plan (`statemachine/backfill.asl.json`, state `Plan`): validates the
//! execution input `{"from": "2021-06-01", "to": "2021-06-30"}` and its options, and lists the ETL
//! runs the backfill is made of: every date of the range in the requested order, each with the
//! deterministic base name of its child execution.
//!
//! A pure function of the input (no AWS call): one invocation per backfill. Step Functions has no
//! date arithmetic, and a calendar walk in states would cost a few transitions per day.
//!
//! Child names are `bf-<backfillId>-<date>`, to which the state machine appends `-<attempt>`. The
//! `backfillId` is the input's, or else derived from `from` and `to` alone, so that a backfill
//! started again over the same range (a new execution: a closed execution's name cannot be reused)
//! finds the runs of the first one by name, whatever its options.

use chrono::{Days, NaiveDate};
use etl_callback::config::{self, ConfigError};
use etl_callback::run_date::RunDate;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The largest `BACKFILL_MAX_DAYS`: the template parameter's MaxValue (the output of a backfill of
/// 366 dates, about 300 bytes a date, stays far below Step Functions' 256 KiB).
pub const MAX_DAYS_LIMIT: usize = 366;
/// The longest `backfillId`: `bf-` + id + `-YYYY-MM-DD` + `-NN` stays within the 80 characters
/// of an execution name.
pub const MAX_ID_LEN: usize = 40;
/// The input fields a backfill reads; any other is refused (a misspelt option would be ignored).
pub const FIELDS: [&str; 7] = [
    "from",
    "to",
    "order",
    "onFailure",
    "dryRun",
    "backfillId",
    "vars",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The most dates one backfill may cover (`BACKFILL_MAX_DAYS`, the `BackfillMaxDays` parameter).
    pub max_days: usize,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut vars = config::env();
        let config = Self::read(&mut vars);
        vars.finish()?;
        Ok(config)
    }

    /// `BACKFILL_MAX_DAYS` (default 31, 1 to [`MAX_DAYS_LIMIT`]); a bad value is recorded in `vars`.
    pub fn read<F: Fn(&str) -> Option<String>>(vars: &mut config::Vars<F>) -> Self {
        Self {
            max_days: vars.count("BACKFILL_MAX_DAYS", 31, MAX_DAYS_LIMIT),
        }
    }
}

/// Why a backfill was refused. `name()` is the error the `Plan` Task fails with; nothing has run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BackfillError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{field} {value:?} is not a calendar date in the form YYYY-MM-DD")]
    InvalidDate { field: &'static str, value: String },
    #[error("from {from} is after to {to}")]
    RangeReversed { from: String, to: String },
    #[error("{from} to {to} is {days} days; a backfill covers at most {max} (BackfillMaxDays)")]
    RangeTooLong {
        from: String,
        to: String,
        days: usize,
        max: usize,
    },
}

impl BackfillError {
    pub fn name(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "Backfill.InvalidInput",
            Self::InvalidDate { .. } => "Backfill.InvalidDate",
            Self::RangeReversed { .. } => "Backfill.RangeReversed",
            Self::RangeTooLong { .. } => "Backfill.RangeTooLong",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OnFailure {
    Stop,
    Continue,
}

/// One date of the backfill and the base name of its ETL execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRun {
    pub date: String,
    pub name: String,
}

/// What the state machine runs: the options as read, and the dates in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub backfill_id: String,
    pub from: String,
    pub to: String,
    pub order: Order,
    pub on_failure: OnFailure,
    pub dry_run: bool,
    pub days: usize,
    pub dates: Vec<PlannedRun>,
    /// The input's `vars`, passed on to every date's run as its `vars` (`null` when not given):
    /// each run's `ResolveVars` checks them against the pipeline's `[vars]` before its lock.
    pub vars: Value,
}

/// The two Tasks of the workflow: `{"input": <the execution input>}` (state `Plan`) gets the
/// [`Plan`]; `{"table": {<the plan>, "results": [...]}}` (state `Table`) gets the [`table`].
pub fn handle(config: &Config, payload: &Value) -> Result<Value, BackfillError> {
    if let Some(input) = payload.get("input") {
        let plan = plan(config, input)?;
        return Ok(serde_json::to_value(plan).expect("a Plan always serializes"));
    }
    if let Some(done) = payload.get("table") {
        return table(done);
    }
    Err(BackfillError::InvalidInput(
        "the Task payload has neither input nor table".into(),
    ))
}

/// The backfill's output: the plan's options, counts, the total of `rows`, and one row per date
/// in the order run. A date's `rows` is the sum of its run's steps' `rows` (what the run's
/// statements affected, the ETL output's `steps.<step>.rows`), `rowsByStep` the same per step; the
/// Map's rows carry them as the two arrays `stepNames` and `stepRows`.
pub fn table(done: &Value) -> Result<Value, BackfillError> {
    let bad = |what: &str| BackfillError::InvalidInput(format!("the table's {what}"));
    let results = done
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("results are not an array"))?;
    let mut dates = Vec::with_capacity(results.len());
    let (mut succeeded, mut failed, mut skipped, mut total) = (0, 0, 0, 0i64);
    for result in results {
        let mut row = result
            .as_object()
            .cloned()
            .ok_or_else(|| bad("row is not an object"))?;
        let names = row.remove("stepNames");
        let rows = row.remove("stepRows");
        if let (Some(Value::Array(names)), Some(Value::Array(rows))) = (names, rows) {
            let by_step: Map<String, Value> = names
                .iter()
                .zip(&rows)
                .map(|(n, r)| (n.as_str().unwrap_or_default().to_owned(), r.clone()))
                .collect();
            let sum: i64 = rows.iter().filter_map(Value::as_i64).sum();
            total += sum;
            row.insert("rows".into(), sum.into());
            row.insert("rowsByStep".into(), by_step.into());
        }
        match row.get("status").and_then(Value::as_str) {
            Some("SUCCEEDED") => succeeded += 1,
            _ => failed += 1,
        }
        if row.get("skipped") == Some(&Value::Bool(true)) {
            skipped += 1;
        }
        dates.push(Value::Object(row));
    }
    let mut out = Map::new();
    for key in ["backfillId", "from", "to", "order", "onFailure", "days"] {
        out.insert(key.into(), done.get(key).cloned().unwrap_or(Value::Null));
    }
    out.insert("dryRun".into(), false.into());
    out.insert("succeeded".into(), succeeded.into());
    out.insert("skipped".into(), skipped.into());
    out.insert("failed".into(), failed.into());
    out.insert("rows".into(), total.into());
    out.insert("dates".into(), dates.into());
    Ok(Value::Object(out))
}

/// The backfill's id when the input gives none: from `from` and `to` only (see the module docs).
pub fn default_id(from: &str, to: &str) -> String {
    let hash = Sha256::digest(format!("{from}/{to}").as_bytes());
    hex::encode(hash)[..20].to_owned()
}

pub fn plan(config: &Config, input: &Value) -> Result<Plan, BackfillError> {
    let object = input.as_object().ok_or_else(|| {
        BackfillError::InvalidInput(
            "the input must be a JSON object such as {\"from\": \"2021-06-01\", \"to\": \"2021-06-30\"}"
                .into(),
        )
    })?;
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(BackfillError::InvalidInput(format!(
            "unknown input field {unknown:?} (the fields are {})",
            FIELDS.join(", ")
        )));
    }
    let from = date(object, "from")?;
    let to = date(object, "to")?;
    if from > to {
        return Err(BackfillError::RangeReversed {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    let order = match text(object, "order")? {
        None | Some("oldestFirst") => Order::OldestFirst,
        Some("newestFirst") => Order::NewestFirst,
        Some(other) => {
            return Err(BackfillError::InvalidInput(format!(
                "order {other:?} is neither \"oldestFirst\" nor \"newestFirst\""
            )))
        }
    };
    let on_failure = match text(object, "onFailure")? {
        None | Some("stop") => OnFailure::Stop,
        Some("continue") => OnFailure::Continue,
        Some(other) => {
            return Err(BackfillError::InvalidInput(format!(
                "onFailure {other:?} is neither \"stop\" nor \"continue\""
            )))
        }
    };
    let dry_run = match object.get("dryRun") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(BackfillError::InvalidInput(format!(
                "dryRun must be true or false, not {other}"
            )))
        }
    };
    let vars = match object.get("vars") {
        None | Some(Value::Null) => Value::Null,
        Some(vars @ Value::Object(_)) => vars.clone(),
        Some(other) => {
            return Err(BackfillError::InvalidInput(format!(
                "vars must be an object of the pipeline's variables, such as {{\"schema\": \"dev\"}}, not {}",
                etl_callback::task::truncate(&other.to_string(), 60)
            )))
        }
    };
    let backfill_id = match text(object, "backfillId")? {
        None => default_id(&from.to_string(), &to.to_string()),
        Some(id)
            if !id.is_empty()
                && id.len() <= MAX_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            id.to_owned()
        }
        Some(id) => {
            return Err(BackfillError::InvalidInput(format!(
                "backfillId {id:?} must be 1 to {MAX_ID_LEN} of A-Z a-z 0-9 - _"
            )))
        }
    };

    let (first, last) = (calendar(&from), calendar(&to));
    let mut dates = Vec::new();
    let mut day = first;
    while day <= last {
        if dates.len() == config.max_days {
            let days = (last - first).num_days() as usize + 1;
            return Err(BackfillError::RangeTooLong {
                from: from.to_string(),
                to: to.to_string(),
                days,
                max: config.max_days,
            });
        }
        let date = day.format("%Y-%m-%d").to_string();
        dates.push(PlannedRun {
            name: format!("bf-{backfill_id}-{date}"),
            date,
        });
        day = match day.checked_add_days(Days::new(1)) {
            Some(next) => next,
            None => break,
        };
    }
    if order == Order::NewestFirst {
        dates.reverse();
    }
    Ok(Plan {
        backfill_id,
        from: from.to_string(),
        to: to.to_string(),
        order,
        on_failure,
        dry_run,
        days: dates.len(),
        dates,
        vars,
    })
}

fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, BackfillError> {
    match object.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(BackfillError::InvalidInput(format!(
            "{field} must be a string, not {other}"
        ))),
    }
}

fn date(object: &Map<String, Value>, field: &'static str) -> Result<RunDate, BackfillError> {
    let value = text(object, field)?.ok_or_else(|| {
        BackfillError::InvalidInput(format!(
            "{field} is missing: the input is {{\"from\": \"YYYY-MM-DD\", \"to\": \"YYYY-MM-DD\"}}"
        ))
    })?;
    RunDate::parse(value).map_err(|_| BackfillError::InvalidDate {
        field,
        value: value.to_owned(),
    })
}

/// The chrono date of a validated run date (whose only form is `YYYY-MM-DD`).
fn calendar(date: &RunDate) -> NaiveDate {
    NaiveDate::parse_from_str(&date.to_string(), "%Y-%m-%d").expect("a RunDate is YYYY-MM-DD")
}
