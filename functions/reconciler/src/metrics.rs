//! The reconciler's counts as CloudWatch metrics: one Embedded Metric Format (EMF) line per
//! invocation ([`etl_callback::metrics`], which says why it is a JSON log line with a level).

use crate::Summary;
use etl_callback::metrics::{emf_line, line_level, Unit, LOG_LEVEL_VAR};

/// The CloudWatch namespace of the reconciler's metrics (the functions' one namespace).
pub const METRICS_NAMESPACE: &str = etl_callback::metrics::NAMESPACE;

impl Summary {
    fn metrics(&self) -> [(&'static str, Unit, u64); 9] {
        [
            (
                "LostEventsRecovered",
                Unit::Count,
                self.lost_events_recovered,
            ),
            ("Heartbeats", Unit::Count, self.heartbeats),
            ("Cancellations", Unit::Count, self.cancellations),
            ("TasksClosed", Unit::Count, self.tasks_closed),
            ("StatementsNotFound", Unit::Count, self.statements_not_found),
            ("Throttled", Unit::Count, self.throttled),
            ("Errors", Unit::Count, self.errors),
            ("LocksReleased", Unit::Count, self.locks_released),
            (
                "ClosedTokenOfRunningExecution",
                Unit::Count,
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
        emf_line(
            &[("Function", function)],
            &[&["Function"]],
            &self.metrics(),
            level,
            timestamp_ms,
        )
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
            assert_eq!(json["message"], etl_callback::metrics::METRICS_MESSAGE);
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
