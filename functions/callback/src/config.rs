//! Typed configuration from environment variables, read once at start-up. Every problem is
//! collected so that one failed cold start names every missing or bad variable at once.

use thiserror::Error;

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

/// The rendezvous table both functions share: `TOKEN_TABLE`, `TOKEN_TTL_SECONDS` (default 2 days).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSettings {
    pub table: String,
    pub ttl_seconds: i64,
}

impl TableSettings {
    pub fn read<F: Fn(&str) -> Option<String>>(vars: &mut Vars<F>) -> Self {
        Self {
            table: vars.required("TOKEN_TABLE"),
            ttl_seconds: vars.seconds("TOKEN_TTL_SECONDS", 172_800),
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
        match self.optional(name).map(|v| v.parse::<i64>()) {
            None => default,
            Some(Ok(v)) if v > 0 => v,
            Some(_) => {
                self.problems
                    .push(format!("{name} must be a positive whole number of seconds"));
                default
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
}
