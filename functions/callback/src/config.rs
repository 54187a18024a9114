//! Typed configuration from environment variables, read once at start-up. Every problem is
//! collected so that one failed cold start names every missing or bad variable at once.

use thiserror::Error;

use crate::store;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid configuration: {}", problems.join("; "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

/// Reads variables through `lookup` (the process environment in `main`, a map in tests).
pub struct Vars<F> {
    lookup: F,
    problems: Vec<String>,
}

/// Reads the process environment.
pub fn env() -> Vars<fn(&str) -> Option<String>> {
    Vars::new(|name| std::env::var(name).ok())
}

/// Lambda's longest function timeout.
pub const MAX_FUNCTION_TIMEOUT_SECONDS: i64 = 900;

/// The rendezvous table the functions share: `TOKEN_TABLE`; `TOKEN_TTL_SECONDS` (default
/// [`store::TOKEN_TTL_SECONDS`], derived from the step limits; at least
/// [`store::MAX_WAIT_SECONDS`]); and `FUNCTION_TIMEOUT_SECONDS`, this function's `Timeout` as the
/// template sets it (Lambda does not tell a function its timeout), from which the completion
/// claim's lease is derived ([`store::claim_seconds`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSettings {
    pub table: String,
    pub ttl_seconds: i64,
    pub claim_seconds: i64,
}

impl TableSettings {
    pub fn read<F: Fn(&str) -> Option<String>>(vars: &mut Vars<F>) -> Self {
        let table = vars.required("TOKEN_TABLE");
        let ttl_seconds = vars.seconds("TOKEN_TTL_SECONDS", store::TOKEN_TTL_SECONDS);
        if ttl_seconds < store::MAX_WAIT_SECONDS {
            vars.problem(format!(
                "TOKEN_TTL_SECONDS must be at least {} (the longest a step can wait)",
                store::MAX_WAIT_SECONDS
            ));
        }
        let timeout = vars.optional_seconds("FUNCTION_TIMEOUT_SECONDS");
        if timeout.is_some_and(|t| t > MAX_FUNCTION_TIMEOUT_SECONDS) {
            vars.problem(format!(
                "FUNCTION_TIMEOUT_SECONDS must be at most {MAX_FUNCTION_TIMEOUT_SECONDS} (Lambda's longest timeout)"
            ));
        }
        Self {
            table,
            ttl_seconds,
            claim_seconds: store::claim_seconds(timeout),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    pub fn new(lookup: F) -> Self {
        Self {
            lookup,
            problems: Vec::new(),
        }
    }

    /// A variable that may be unset; an empty value counts as unset.
    pub fn optional(&mut self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A variable that must be set; a missing one is recorded and an empty string returned.
    pub fn required(&mut self, name: &str) -> String {
        self.optional(name).unwrap_or_else(|| {
            self.problems.push(format!("{name} is not set"));
            String::new()
        })
    }

    /// An optional whole number of seconds with a default.
    pub fn seconds(&mut self, name: &str, default: i64) -> i64 {
        self.optional_seconds(name).unwrap_or(default)
    }

    /// An optional positive whole number of seconds; `None` when unset (or not one: recorded).
    pub fn optional_seconds(&mut self, name: &str) -> Option<i64> {
        match self.optional(name).map(|v| v.parse::<i64>()) {
            None => None,
            Some(Ok(v)) if v > 0 => Some(v),
            Some(_) => {
                self.problems
                    .push(format!("{name} must be a positive whole number of seconds"));
                None
            }
        }
    }

    /// An optional positive whole number with a default, at most `max`.
    pub fn count(&mut self, name: &str, default: usize, max: usize) -> usize {
        match self.optional(name).map(|v| v.parse::<usize>()) {
            None => default,
            Some(Ok(v)) if v > 0 && v <= max => v,
            Some(_) => {
                self.problems
                    .push(format!("{name} must be a whole number from 1 to {max}"));
                default
            }
        }
    }

    /// Records a problem found while combining variables.
    pub fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_problem_at_once() {
        let mut vars = Vars::new(|name: &str| match name {
            "EMPTY" => Some("  ".to_owned()),
            "TTL" => Some("-5".to_owned()),
            _ => None,
        });
        vars.required("A");
        vars.required("EMPTY");
        assert_eq!(vars.seconds("TTL", 10), 10);
        let err = vars.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: A is not set; EMPTY is not set; TTL must be a positive whole number of seconds"
        );
    }

    fn table_settings(vars: &[(&str, &str)]) -> Result<TableSettings, ConfigError> {
        let mut vars = Vars::new(|name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        });
        let settings = TableSettings::read(&mut vars);
        vars.finish().map(|()| settings)
    }

    #[test]
    fn the_ttl_is_derived_from_the_step_limits_and_the_lease_from_the_timeout() {
        let defaults = table_settings(&[("TOKEN_TABLE", "t")]).unwrap();
        assert_eq!(defaults.ttl_seconds, store::TOKEN_TTL_SECONDS);
        assert_eq!(defaults.claim_seconds, store::CLAIM_SECONDS);
        let short = table_settings(&[("TOKEN_TABLE", "t"), ("FUNCTION_TIMEOUT_SECONDS", "10")]);
        assert_eq!(short.unwrap().claim_seconds, 12);
        let reconciler =
            table_settings(&[("TOKEN_TABLE", "t"), ("FUNCTION_TIMEOUT_SECONDS", "60")]).unwrap();
        assert_eq!(reconciler.claim_seconds, store::CLAIM_SECONDS);
    }

    #[test]
    fn a_ttl_shorter_than_a_step_or_a_timeout_lambda_cannot_have_is_refused() {
        let err = table_settings(&[
            ("TOKEN_TABLE", "t"),
            ("TOKEN_TTL_SECONDS", "3600"),
            ("FUNCTION_TIMEOUT_SECONDS", "901"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("TOKEN_TTL_SECONDS must be at least 21600"),
            "{err}"
        );
        assert!(
            err.contains("FUNCTION_TIMEOUT_SECONDS must be at most 900"),
            "{err}"
        );
        let err = table_settings(&[("TOKEN_TABLE", "t"), ("FUNCTION_TIMEOUT_SECONDS", "0")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("FUNCTION_TIMEOUT_SECONDS must be a positive"),
            "{err}"
        );
    }
}
