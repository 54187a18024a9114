//! The functions' CloudWatch metrics: Embedded Metric Format (EMF) objects written to stdout as
//! JSON log lines, which Lambda sends to CloudWatch Logs, which extracts the metrics. No
//! `PutMetricData` call, no permission, nothing on the request path but one `println!`.
//!
//! The functions log JSON (`LoggingConfig.LogFormat: JSON`), and Lambda filters application log
//! lines by level (`ApplicationLogLevel`, the `LogLevel` parameter). A line without a valid
//! `"level"`, or without a valid RFC 3339 `"timestamp"`, and every plain-text line, counts as INFO,
//! so under WARN, ERROR or FATAL a bare EMF object would be dropped before CloudWatch Logs sees it,
//! and its metrics (and the alarms and the dashboard on them) with it. A metrics line therefore is
//! a JSON log line of its own: the EMF object plus `timestamp`, `level` and `message`, at INFO or,
//! when the configured level (`AWS_LAMBDA_LOG_LEVEL`, set by Lambda from `ApplicationLogLevel`) is
//! above INFO, at exactly that level, so it is never filtered and never louder than it must be.
//!
//! Every metric is in [`NAMESPACE`]: the submitter's and the step metrics ([`Metric`]) under
//! `Stack` (and `Step`), the reconciler's counts under `Function`. The template's dashboard and
//! alarms are checked against what the functions print on the local stack
//! (tests/e2e/test_dashboard.py), so neither can silently go blank.

/// The CloudWatch namespace of every metric the functions publish.
pub const NAMESPACE: &str = "RedshiftEtlCallback";

/// The `message` of every metrics line, to find them among the other log lines.
pub const METRICS_MESSAGE: &str = "metrics";

/// Where Lambda passes the function's application log level (`ApplicationLogLevel`).
pub const LOG_LEVEL_VAR: &str = "AWS_LAMBDA_LOG_LEVEL";

/// The stack name (template `Globals`: `STACK_NAME: !Ref AWS::StackName`), the `Stack` dimension
/// that keeps two deployments in one account apart.
pub const STACK_VAR: &str = "STACK_NAME";

/// Every metric the functions publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A batch the Data API accepted (submitter).
    Submits,
    /// A submit the Data API refused as throttling or at its active-statement limit (submitter;
    /// the Task's `Retry` submits again later).
    SubmitsThrottled,
    /// A step closed with `SendTaskSuccess` (whoever closed it), dimension `Step`.
    StepsSucceeded,
    /// A step closed with `SendTaskFailure` (statement failed, aborted or lost), dimension `Step`.
    StepsFailed,
    /// The statement's run time as the Data API reports it (`Duration`), dimension `Step`.
    StepDuration,
    /// Rows the step's statements affected, dimension `Step`.
    RowsLoaded,
    /// An OpenLineage event that did not reach its endpoint (timeout, connection, HTTP error):
    /// counted, never retried, never failing a step (any function that closes a task).
    LineageEmitFailures,
    /// The violating rows a check step found (every finished check, 0 when it passed), dimension
    /// `Step` (the check's name).
    CheckViolations,
    /// A `warn` check that found violations and let the run go on, dimension `Step`.
    CheckWarnings,
}

/// A metric's CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

impl Metric {
    pub const ALL: [Metric; 9] = [
        Self::Submits,
        Self::SubmitsThrottled,
        Self::StepsSucceeded,
        Self::StepsFailed,
        Self::StepDuration,
        Self::RowsLoaded,
        Self::LineageEmitFailures,
        Self::CheckViolations,
        Self::CheckWarnings,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Submits => "Submits",
            Self::SubmitsThrottled => "SubmitsThrottled",
            Self::StepsSucceeded => "StepsSucceeded",
            Self::StepsFailed => "StepsFailed",
            Self::StepDuration => "StepDuration",
            Self::RowsLoaded => "RowsLoaded",
            Self::LineageEmitFailures => "LineageEmitFailures",
            Self::CheckViolations => "CheckViolations",
            Self::CheckWarnings => "CheckWarnings",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Self::StepDuration => Unit::Milliseconds,
            _ => Unit::Count,
        }
    }
}

/// The level a metrics line is logged at so that Lambda's log-level filter keeps it: INFO when
/// no level or one at most INFO is configured, else the configured level itself (WARN, ERROR,
/// FATAL). A value Lambda does not define gets FATAL, the one level no setting filters.
pub fn line_level(configured: Option<&str>) -> &'static str {
    match configured.map(|l| l.trim().to_ascii_uppercase()).as_deref() {
        None | Some("" | "TRACE" | "DEBUG" | "INFO") => "INFO",
        Some("WARN" | "WARNING") => "WARN",
        Some("ERROR") => "ERROR",
        _ => "FATAL",
    }
}

/// One EMF log line (no newline): `values` (name, unit, value) under every dimension set of
/// `dimension_sets` (names of `dimensions`), at `level`, stamped `timestamp_ms`.
pub fn emf_line(
    dimensions: &[(&str, &str)],
    dimension_sets: &[&[&str]],
    values: &[(&str, Unit, u64)],
    level: &str,
    timestamp_ms: i64,
) -> String {
    let timestamp = chrono::DateTime::from_timestamp_millis(timestamp_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut line = serde_json::json!({
        "timestamp": timestamp,
        "level": level,
        "message": METRICS_MESSAGE,
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimension_sets,
                "Metrics": values.iter()
                    .map(|(name, unit, _)| serde_json::json!({"Name": name, "Unit": unit.as_str()}))
                    .collect::<Vec<_>>(),
            }],
        },
    });
    for (name, value) in dimensions {
        line[*name] = (*value).into();
    }
    for (name, _, value) in values {
        line[*name] = (*value).into();
    }
    line.to_string()
}

/// Writes one metrics line to stdout (one line, one write), at the level [`line_level`] derives
/// from `AWS_LAMBDA_LOG_LEVEL`.
pub fn publish(
    dimensions: &[(&str, &str)],
    dimension_sets: &[&[&str]],
    values: &[(&str, Unit, u64)],
) {
    let configured = std::env::var(LOG_LEVEL_VAR).ok();
    println!(
        "{}",
        emf_line(
            dimensions,
            dimension_sets,
            values,
            line_level(configured.as_deref()),
            chrono::Utc::now().timestamp_millis()
        )
    );
}

fn stack() -> String {
    std::env::var(STACK_VAR).unwrap_or_else(|_| "unknown".into())
}

/// The submitter's outcome of one `BatchExecuteStatement`: accepted, or throttled.
pub fn submit(throttled: bool) {
    let stack = stack();
    publish(
        &[("Stack", &stack)],
        &[&["Stack"]],
        &[
            (
                Metric::Submits.name(),
                Metric::Submits.unit(),
                u64::from(!throttled),
            ),
            (
                Metric::SubmitsThrottled.name(),
                Metric::SubmitsThrottled.unit(),
                u64::from(throttled),
            ),
        ],
    );
}

/// The values of one step closed by a callback.
pub fn step_values(succeeded: bool, duration_ms: u64, rows: u64) -> [(&'static str, Unit, u64); 4] {
    let value = |m: Metric, v: u64| (m.name(), m.unit(), v);
    [
        value(Metric::StepsSucceeded, u64::from(succeeded)),
        value(Metric::StepsFailed, u64::from(!succeeded)),
        value(Metric::StepDuration, duration_ms),
        value(Metric::RowsLoaded, rows),
    ]
}

/// One step closed by a callback (completer, submitter or reconciler, whoever closed it), under
/// `Stack` + `Step` and `Stack` alone.
pub fn step_closed(step: &str, succeeded: bool, duration_ms: u64, rows: u64) {
    let stack = stack();
    publish(
        &[("Stack", &stack), ("Step", step)],
        &[&["Stack", "Step"], &["Stack"]],
        &step_values(succeeded, duration_ms, rows),
    );
}

/// One OpenLineage event not delivered, under `Stack`.
pub fn lineage_emit_failure() {
    let stack = stack();
    let metric = Metric::LineageEmitFailures;
    publish(
        &[("Stack", &stack)],
        &[&["Stack"]],
        &[(metric.name(), metric.unit(), 1)],
    );
}

/// The values of one finished check: its violating rows, and whether it only warned of them.
pub fn check_values(violations: u64, warned: bool) -> [(&'static str, Unit, u64); 2] {
    [
        (
            Metric::CheckViolations.name(),
            Metric::CheckViolations.unit(),
            violations,
        ),
        (
            Metric::CheckWarnings.name(),
            Metric::CheckWarnings.unit(),
            u64::from(warned),
        ),
    ]
}

/// One finished check (whoever closed its task), under `Stack` + `Step` and `Stack` alone.
pub fn check_closed(check: &str, violations: u64, warned: bool) {
    let stack = stack();
    publish(
        &[("Stack", &stack), ("Step", check)],
        &[&["Stack", "Step"], &["Stack"]],
        &check_values(violations, warned),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_line_is_never_below_the_configured_level_and_at_most_info_otherwise() {
        for (configured, level) in [
            (None, "INFO"),
            (Some(""), "INFO"),
            (Some("TRACE"), "INFO"),
            (Some("debug"), "INFO"),
            (Some("INFO"), "INFO"),
            (Some("WARN"), "WARN"),
            (Some("warn"), "WARN"),
            (Some("ERROR"), "ERROR"),
            (Some("FATAL"), "FATAL"),
            (Some("NOISY"), "FATAL"),
        ] {
            assert_eq!(line_level(configured), level, "{configured:?}");
        }
    }

    /// What CloudWatch needs to extract the metrics: `_aws` at the root, every dimension and every
    /// metric's value at the root, units it knows.
    #[test]
    fn a_step_line_is_valid_emf_under_both_dimension_sets() {
        let line = emf_line(
            &[("Stack", "etl"), ("Step", "LoadItem")],
            &[&["Stack", "Step"], &["Stack"]],
            &step_values(true, 1_234, 56),
            "WARN",
            1_624_773_600_123,
        );
        assert!(!line.contains('\n'));
        let json: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(json["level"], "WARN");
        assert_eq!(json["timestamp"], "2021-06-27T06:00:00.123Z");
        let directive = &json["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["Stack", "Step"], ["Stack"]])
        );
        assert_eq!(json["Stack"], "etl");
        assert_eq!(json["Step"], "LoadItem");
        assert_eq!(json["StepsSucceeded"], 1);
        assert_eq!(json["StepsFailed"], 0);
        assert_eq!(json["StepDuration"], 1_234);
        assert_eq!(json["RowsLoaded"], 56);
        let units: Vec<(&str, &str)> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
            .collect();
        assert_eq!(
            units,
            [
                ("StepsSucceeded", "Count"),
                ("StepsFailed", "Count"),
                ("StepDuration", "Milliseconds"),
                ("RowsLoaded", "Count")
            ]
        );
    }

    #[test]
    fn every_metric_has_a_distinct_name() {
        let mut names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Metric::ALL.len());
    }
}
