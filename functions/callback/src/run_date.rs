//! The run date: validated as a calendar date before it can reach any SQL.

use std::fmt;

use chrono::{DateTime, NaiveDate};
use thiserror::Error;

/// The years a run date may have: four digits, and a day Redshift's `date` holds.
const SUPPORTED_YEARS: std::ops::RangeInclusive<i32> = 1900..=9999;

/// A validated run date. Its only textual form is `YYYY-MM-DD`, so it is safe to place in SQL as a
/// quoted literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RunDate(NaiveDate);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RunDateError {
    #[error("run date {value:?} is not a calendar date in the form YYYY-MM-DD")]
    NotADate { value: String },
    #[error("run date {value:?} is outside the supported years 1900-9999")]
    OutOfRange { value: String },
    #[error(
        "no run date given and the execution start time {value:?} is not an RFC 3339 timestamp"
    )]
    BadStartTime { value: String },
    /// The execution start time (any RFC 3339 timestamp the input carries) falls on a day
    /// outside the years a run date may have (found by the `run_date` fuzz target).
    #[error("no run date given and the execution start time {value:?} is a day outside the supported years 1900-9999")]
    StartTimeOutOfRange { value: String },
}

impl RunDateError {
    /// The message naming where a given run date came from (the object that triggered the run,
    /// `s3://bucket/key`). A missing run date came from no object: its message is unchanged.
    pub fn from_origin(&self, origin: &str) -> String {
        match self {
            Self::NotADate { value } => format!(
                "run date {value:?} (from {origin}) is not a calendar date in the form YYYY-MM-DD"
            ),
            Self::OutOfRange { value } => format!(
                "run date {value:?} (from {origin}) is outside the supported years 1900-9999"
            ),
            Self::BadStartTime { .. } | Self::StartTimeOutOfRange { .. } => self.to_string(),
        }
    }

    /// Whether the error is about a run date that was given (and so may have an origin).
    pub fn is_given_date(&self) -> bool {
        matches!(self, Self::NotADate { .. } | Self::OutOfRange { .. })
    }
}

impl RunDate {
    /// Parses a strict `YYYY-MM-DD` calendar date (no time, no spaces, no other separators).
    pub fn parse(value: &str) -> Result<Self, RunDateError> {
        let shaped = value.len() == 10
            && value.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        let date = shaped
            .then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok())
            .flatten()
            .ok_or_else(|| RunDateError::NotADate {
                value: value.to_owned(),
            })?;
        if !SUPPORTED_YEARS.contains(&chrono::Datelike::year(&date)) {
            return Err(RunDateError::OutOfRange {
                value: value.to_owned(),
            });
        }
        Ok(Self(date))
    }

    /// The run date of an execution: the one given, or else the UTC day the execution started.
    pub fn resolve(given: Option<&str>, execution_start_time: &str) -> Result<Self, RunDateError> {
        match given {
            Some(value) => Self::parse(value),
            None => {
                let day = DateTime::parse_from_rfc3339(execution_start_time)
                    .map(|t| t.naive_utc().date())
                    .map_err(|_| RunDateError::BadStartTime {
                        value: execution_start_time.to_owned(),
                    })?;
                if !SUPPORTED_YEARS.contains(&chrono::Datelike::year(&day)) {
                    return Err(RunDateError::StartTimeOutOfRange {
                        value: execution_start_time.to_owned(),
                    });
                }
                Ok(Self(day))
            }
        }
    }

    /// The date as a SQL string literal, e.g. `'2021-06-26'`.
    pub fn sql_literal(&self) -> String {
        format!("'{self}'")
    }
}

impl fmt::Display for RunDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_calendar_dates() {
        assert_eq!(
            RunDate::parse("2021-06-26").unwrap().to_string(),
            "2021-06-26"
        );
        assert_eq!(
            RunDate::parse("2024-02-29").unwrap().sql_literal(),
            "'2024-02-29'"
        );
    }

    #[test]
    fn rejects_hostile_and_malformed_values() {
        for value in [
            "",
            "2021-6-26",
            "2021-06-26 ",
            " 2021-06-26",
            "2021/06/26",
            "2021-13-01",
            "2021-02-29",
            "2021-06-26'; drop table item; --",
            "'2021-06-26'",
            "2021-06-26T00:00:00Z",
            "+021-06-26",
            "２０２１-06-26",
            "20210626",
        ] {
            assert!(
                matches!(RunDate::parse(value), Err(RunDateError::NotADate { .. })),
                "{value:?} should be rejected"
            );
        }
        assert!(matches!(
            RunDate::parse("0001-01-01"),
            Err(RunDateError::OutOfRange { .. })
        ));
    }

    #[test]
    fn defaults_to_the_utc_day_the_execution_started() {
        let date = RunDate::resolve(None, "2021-06-26T23:30:00.123-02:00").unwrap();
        assert_eq!(date.to_string(), "2021-06-27");
        assert_eq!(
            RunDate::resolve(Some("2020-01-01"), "2021-06-26T10:00:00Z")
                .unwrap()
                .to_string(),
            "2020-01-01"
        );
        assert!(matches!(
            RunDate::resolve(None, "yesterday"),
            Err(RunDateError::BadStartTime { .. })
        ));
    }

    /// Fuzzing regression (`fuzz/corpus/run_date/start-time-year-331`): a start time is any RFC
    /// 3339 timestamp, so its day was taken as the run date whatever its year (`0331-06-27`,
    /// `+10000-01-01` as text), outside the strict form every run date has.
    #[test]
    fn a_start_time_outside_the_supported_years_is_a_named_error() {
        for start in [
            "0331-06-27T06:00:00.13Z",
            "1899-12-31T23:59:59Z",
            "9999-12-31T23:00:00-05:00",
        ] {
            let error = RunDate::resolve(None, start).unwrap_err();
            assert_eq!(
                error,
                RunDateError::StartTimeOutOfRange {
                    value: start.to_owned()
                }
            );
            assert!(!error.is_given_date());
        }
        assert_eq!(
            RunDate::resolve(None, "1900-01-01T00:00:00+01:00"),
            Err(RunDateError::StartTimeOutOfRange {
                value: "1900-01-01T00:00:00+01:00".to_owned()
            })
        );
        assert_eq!(
            RunDate::resolve(None, "9999-12-31T23:59:59Z")
                .unwrap()
                .to_string(),
            "9999-12-31"
        );
    }
}
