//! The reconciler's counts as CloudWatch metrics: one Embedded Metric Format (EMF) object per
//! invocation, written to stdout, which Lambda sends to CloudWatch Logs, which extracts the metrics.
//!
//! The functions log JSON (`LoggingConfig.LogFormat: JSON`), and then Lambda filters application
//! log lines by level (`ApplicationLogLevel`, the `LogLevel` parameter). A line without a valid
//! `"level"`, or without a valid RFC 3339 `"timestamp"`, and every plain-text line, counts as INFO,
//! so under WARN, ERROR or FATAL a bare EMF object would be dropped before CloudWatch Logs sees it,
//! and the metrics (and `LostEventsRecoveredAlarm`) with it. The metrics line therefore is a JSON log
//! line of its own: the EMF object plus `timestamp`, `level` and `message`, at INFO or, when the
//! configured level (`AWS_LAMBDA_LOG_LEVEL`, set by Lambda from `ApplicationLogLevel`) is above
//! INFO, at exactly that level, so it is never filtered and never louder than it must be.

use crate::Summary;

/// The CloudWatch namespace of the reconciler's metrics.
pub const METRICS_NAMESPACE: &str = "RedshiftEtlCallback";

/// The `message` of the metrics line, to find it among the other log lines.
pub const METRICS_MESSAGE: &str = "reconciler metrics";

/// Where Lambda passes the function's application log level (`ApplicationLogLevel`).
pub const LOG_LEVEL_VAR: &str = "AWS_LAMBDA_LOG_LEVEL";

/// The level the metrics line is logged at so that Lambda's log-level filter keeps it: INFO when
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

impl Summary {
    fn metrics(&self) -> [(&'static str, u64); 9] {
        [
            ("LostEventsRecovered", self.lost_events_recovered),
            ("Heartbeats", self.heartbeats),
            ("Cancellations", self.cancellations),
            ("TasksClosed", self.tasks_closed),
            ("StatementsNotFound", self.statements_not_found),
            ("Throttled", self.throttled),
            ("Errors", self.errors),
            ("LocksReleased", self.locks_released),
            (
                "ClosedTokenOfRunningExecution",
                self.closed_tokens_of_running_executions,
            ),
        ]
    }

    /// The counts as one Embedded Metric Format JSON log line (no newline), dimension
    /// `Function`, at the level [`line_level`] derives from `AWS_LAMBDA_LOG_LEVEL`.
    pub fn emf_line(&self, function: &str, timestamp_ms: i64) -> String {
        let configured = std::env::var(LOG_LEVEL_VAR).ok();
        self.emf_line_at(function, line_level(configured.as_deref()), timestamp_ms)
    }

    /// [`Summary::emf_line`] at a given log level.
    pub fn emf_line_at(&self, function: &str, level: &str, timestamp_ms: i64) -> String {
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
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [["Function"]],
                    "Metrics": self.metrics().iter()
                        .map(|(name, _)| serde_json::json!({"Name": name, "Unit": "Count"}))
                        .collect::<Vec<_>>(),
                }],
            },
            "Function": function,
        });
        for (name, value) in self.metrics() {
            line[name] = value.into();
        }
        line.to_string()
    }
}

/// Writes the invocation's metrics line to stdout (one line, one write).
pub fn publish(summary: &Summary, function: &str) {
    println!(
        "{}",
        summary.emf_line(function, chrono::Utc::now().timestamp_millis())
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn summary() -> Summary {
        Summary {
            trigger: "schedule".into(),
            lost_events_recovered: 2,
            heartbeats: 3,
            ..Summary::default()
        }
    }

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

    /// What Lambda needs to keep the line under every `ApplicationLogLevel` (a JSON object with a
    /// known `level` and an RFC 3339 `timestamp`) and what CloudWatch needs to extract the metrics
    /// (`_aws` at the root, every metric's value at the root).
    #[test]
    fn the_metrics_line_is_a_json_log_line_lambda_keeps_at_every_level_and_valid_emf() {
        for level in ["INFO", "WARN", "ERROR", "FATAL"] {
            let line = summary().emf_line_at("etl-ReconcilerFunction-x", level, 1_624_773_600_123);
            assert!(!line.contains('\n'));
            let json: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(json["level"], level);
            assert_eq!(json["timestamp"], "2021-06-27T06:00:00.123Z");
            assert!(
                chrono::DateTime::parse_from_rfc3339(json["timestamp"].as_str().unwrap()).is_ok()
            );
            assert_eq!(json["message"], METRICS_MESSAGE);
            assert_eq!(json["_aws"]["Timestamp"], 1_624_773_600_123_i64);
            let directive = &json["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(directive["Namespace"], METRICS_NAMESPACE);
            assert_eq!(directive["Dimensions"], serde_json::json!([["Function"]]));
            assert_eq!(json["Function"], "etl-ReconcilerFunction-x");
            let names: Vec<&str> = directive["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["Name"].as_str().unwrap())
                .collect();
            assert_eq!(names.len(), 9);
            for name in names {
                assert!(json[name].is_u64(), "{name} has a value");
            }
            assert_eq!(json["LostEventsRecovered"], 2);
            assert_eq!(json["Heartbeats"], 3);
        }
    }

    #[test]
    fn the_line_s_level_follows_lambda_s_log_level_variable() {
        // The one test here that reads the environment; nothing else in this crate sets it.
        let line: Value = serde_json::from_str(&summary().emf_line("f", 0)).unwrap();
        let expected = line_level(std::env::var(LOG_LEVEL_VAR).ok().as_deref());
        assert_eq!(line["level"], expected);
        assert_eq!(line["timestamp"], "1970-01-01T00:00:00.000Z");
    }
}
