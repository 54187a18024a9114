//! Start-up configuration: command-line flags, each with an environment fallback.

use std::net::SocketAddr;

use crate::faults::{FaultSet, FaultsError};

pub const USAGE: &str = "\
redshift-data-emulator: the Redshift Data API (awsJson1_1) on PostgreSQL, for local runs and tests

USAGE:
    redshift-data-emulator [OPTIONS]

OPTIONS (environment fallback in brackets):
    --listen ADDR              loopback address to bind, port 0 = any free port
                               [REDSHIFT_DATA_EMULATOR_LISTEN] (default 127.0.0.1:0)
    --database-url URL         PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/dev
                               [REDSHIFT_DATA_EMULATOR_DATABASE_URL, DATABASE_URL] (required)
    --eventbridge-endpoint URL where PutEvents is sent (plain http)
                               [AWS_ENDPOINT_URL_EVENTBRIDGE, AWS_ENDPOINT_URL]
    --s3-endpoint URL          the S3 that COPY reads and UNLOAD writes (plain http, e.g. moto)
                               [REDSHIFT_DATA_EMULATOR_S3_ENDPOINT, AWS_ENDPOINT_URL_S3,
                               AWS_ENDPOINT_URL]
                               (none: COPY and UNLOAD fail with a named error)
    --event-bus NAME           EventBusName of the events [REDSHIFT_DATA_EMULATOR_EVENT_BUS] (default)
    --account ID               account in ARNs and events [REDSHIFT_DATA_EMULATOR_ACCOUNT] (123456789012)
    --region REGION            region in ARNs and events [REDSHIFT_DATA_EMULATOR_REGION, AWS_REGION,
                               AWS_DEFAULT_REGION] (us-east-1)
    --principal ARN            event `principal` [REDSHIFT_DATA_EMULATOR_PRINCIPAL]
                               (arn:aws:iam::<account>:user/redshift-data-emulator)
    --faults JSON              initial fault set, same JSON as POST /_emulator/faults: one
                               fault object or {\"rules\": [...]}
                               [REDSHIFT_DATA_EMULATOR_FAULTS] (all off)
    --max-active-statements N  answer ActiveStatementsExceededException while N statements are
                               SUBMITTED/PICKED/STARTED; N >= 1 or `unlimited`
                               [REDSHIFT_DATA_EMULATOR_MAX_ACTIVE_STATEMENTS] (200, the service's)
    --max-waiting-requests N   answer ActiveWaitingRequestsExceededException to a call with
                               WaitTimeSeconds while N such calls wait on the same statement;
                               N >= 1 or `unlimited` [REDSHIFT_DATA_EMULATOR_MAX_WAITING_REQUESTS]
                               (10; the service publishes no figure)
    --result-page-rows N       records per GetStatementResult page; the rest follow through
                               NextToken [REDSHIFT_DATA_EMULATOR_RESULT_PAGE_ROWS] (unlimited:
                               one page, as the service answers results under its page size)
    -h, --help                 this text
";

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub eventbridge_endpoint: Option<String>,
    /// Where COPY and UNLOAD reach S3; `None`: they fail with a named error.
    pub s3_endpoint: Option<String>,
    pub event_bus: String,
    pub account: String,
    pub region: String,
    pub principal: String,
    /// A single fault object or `{"rules": [...]}`.
    pub faults: FaultSet,
    /// `None`: unlimited.
    pub max_active_statements: Option<usize>,
    /// Calls with `WaitTimeSeconds` that may wait on one statement at once; `None`: unlimited.
    pub max_waiting_requests: Option<usize>,
    /// Records per `GetStatementResult` page; `None`: every record in one page.
    pub result_page_rows: Option<usize>,
}

/// The service's quota of active statements per cluster or workgroup.
pub const DEFAULT_MAX_ACTIVE_STATEMENTS: usize = 200;

/// Waiting calls per statement. The service documents the error
/// (`ActiveWaitingRequestsExceededException`: "the number of active requests with
/// WaitTimeSeconds for the same SQL statement exceeds the limit") but not the limit; this is the
/// emulator's own default.
pub const DEFAULT_MAX_WAITING_REQUESTS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("help requested")]
    Help,
    #[error("unknown option {0:?} (see --help)")]
    UnknownOption(String),
    #[error("option {0} needs a value")]
    MissingValue(String),
    #[error("invalid --listen address {value:?}: {reason}")]
    Listen { value: String, reason: String },
    #[error("no database URL: pass --database-url or set REDSHIFT_DATA_EMULATOR_DATABASE_URL / DATABASE_URL")]
    MissingDatabaseUrl,
    #[error("invalid --faults JSON: {0}")]
    Faults(#[from] serde_json::Error),
    #[error("invalid --faults: {0}")]
    FaultsInvalid(#[from] FaultsError),
    #[error("invalid --max-active-statements {0:?}: expected a whole number >= 1 or `unlimited`")]
    MaxActive(String),
    #[error("invalid --max-waiting-requests {0:?}: expected a whole number >= 1 or `unlimited`")]
    MaxWaiting(String),
    #[error("invalid --result-page-rows {0:?}: expected a whole number >= 1 or `unlimited`")]
    PageRows(String),
}

impl Config {
    /// A configuration for tests and embedding: the given database, any free port, no events.
    pub fn new(database_url: impl Into<String>) -> Self {
        let account = "123456789012".to_string();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            eventbridge_endpoint: None,
            s3_endpoint: None,
            event_bus: "default".into(),
            principal: default_principal(&account),
            account,
            region: "us-east-1".into(),
            faults: FaultSet::default(),
            max_active_statements: Some(DEFAULT_MAX_ACTIVE_STATEMENTS),
            max_waiting_requests: Some(DEFAULT_MAX_WAITING_REQUESTS),
            result_page_rows: None,
        }
    }

    /// Reads flags (without the program name) with `env` as the fallback for each.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let env_any = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| env(n).filter(|v| !v.trim().is_empty()))
        };
        let mut listen = env_any(&["REDSHIFT_DATA_EMULATOR_LISTEN"]);
        let mut database_url = env_any(&["REDSHIFT_DATA_EMULATOR_DATABASE_URL", "DATABASE_URL"]);
        let mut eventbridge = env_any(&["AWS_ENDPOINT_URL_EVENTBRIDGE", "AWS_ENDPOINT_URL"]);
        let mut s3_endpoint = env_any(&[
            "REDSHIFT_DATA_EMULATOR_S3_ENDPOINT",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL",
        ]);
        let mut event_bus = env_any(&["REDSHIFT_DATA_EMULATOR_EVENT_BUS"]);
        let mut account = env_any(&["REDSHIFT_DATA_EMULATOR_ACCOUNT"]);
        let mut region = env_any(&[
            "REDSHIFT_DATA_EMULATOR_REGION",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
        ]);
        let mut principal = env_any(&["REDSHIFT_DATA_EMULATOR_PRINCIPAL"]);
        let mut faults = env_any(&["REDSHIFT_DATA_EMULATOR_FAULTS"]);
        let mut max_active = env_any(&["REDSHIFT_DATA_EMULATOR_MAX_ACTIVE_STATEMENTS"]);
        let mut max_waiting = env_any(&["REDSHIFT_DATA_EMULATOR_MAX_WAITING_REQUESTS"]);
        let mut page_rows = env_any(&["REDSHIFT_DATA_EMULATOR_RESULT_PAGE_ROWS"]);

        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            if flag == "-h" || flag == "--help" {
                return Err(ConfigError::Help);
            }
            let slot = match flag.as_str() {
                "--listen" => &mut listen,
                "--database-url" => &mut database_url,
                "--eventbridge-endpoint" => &mut eventbridge,
                "--s3-endpoint" => &mut s3_endpoint,
                "--event-bus" => &mut event_bus,
                "--account" => &mut account,
                "--region" => &mut region,
                "--principal" => &mut principal,
                "--faults" => &mut faults,
                "--max-active-statements" => &mut max_active,
                "--max-waiting-requests" => &mut max_waiting,
                "--result-page-rows" => &mut page_rows,
                _ => return Err(ConfigError::UnknownOption(arg)),
            };
            let value = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .ok_or_else(|| ConfigError::MissingValue(flag.clone()))?,
            };
            *slot = Some(value);
        }

        let listen_text = listen.unwrap_or_else(|| "127.0.0.1:0".into());
        let listen: SocketAddr =
            listen_text
                .parse()
                .map_err(|e: std::net::AddrParseError| ConfigError::Listen {
                    value: listen_text.clone(),
                    reason: e.to_string(),
                })?;
        if !listen.ip().is_loopback() {
            return Err(ConfigError::Listen {
                value: listen_text,
                reason: "only loopback addresses (127.0.0.1, ::1) are allowed".into(),
            });
        }
        let account = account.unwrap_or_else(|| "123456789012".into());
        let faults: FaultSet = match faults {
            Some(json) => serde_json::from_str(&json)?,
            None => FaultSet::default(),
        };
        faults.validate()?;
        let max_active_statements = limit(
            max_active.as_deref(),
            DEFAULT_MAX_ACTIVE_STATEMENTS,
            ConfigError::MaxActive,
        )?;
        let max_waiting_requests = limit(
            max_waiting.as_deref(),
            DEFAULT_MAX_WAITING_REQUESTS,
            ConfigError::MaxWaiting,
        )?;
        let result_page_rows = match page_rows.as_deref().map(str::trim) {
            None | Some("unlimited") => None,
            Some(n) => Some(
                n.parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| ConfigError::PageRows(n.to_owned()))?,
            ),
        };
        Ok(Self {
            result_page_rows,
            listen,
            database_url: database_url.ok_or(ConfigError::MissingDatabaseUrl)?,
            eventbridge_endpoint: eventbridge,
            s3_endpoint,
            event_bus: event_bus.unwrap_or_else(|| "default".into()),
            principal: principal.unwrap_or_else(|| default_principal(&account)),
            account,
            region: region.unwrap_or_else(|| "us-east-1".into()),
            faults,
            max_active_statements,
            max_waiting_requests,
        })
    }
}

/// A limit option: unset → `default`, `unlimited` → `None`, else a whole number >= 1.
fn limit(
    value: Option<&str>,
    default: usize,
    invalid: fn(String) -> ConfigError,
) -> Result<Option<usize>, ConfigError> {
    match value.map(str::trim) {
        None => Ok(Some(default)),
        Some("unlimited") => Ok(None),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(invalid(text.to_string())),
        },
    }
}

fn default_principal(account: &str) -> String {
    format!("arn:aws:iam::{account}:user/redshift-data-emulator")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(args.iter().map(|s| s.to_string()), |k| env.get(k).cloned())
    }

    #[test]
    fn flags_override_environment() {
        let config = parse(
            &[
                "--listen",
                "127.0.0.1:9000",
                "--database-url=postgres://x/dev",
            ],
            &[
                ("DATABASE_URL", "postgres://env/dev"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ],
        )
        .expect("parses");
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.database_url, "postgres://x/dev");
        assert_eq!(
            config.eventbridge_endpoint.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(config.account, "123456789012");
        assert_eq!(config.region, "us-east-1");
        assert!(config.faults.is_off());
    }

    #[test]
    fn eventbridge_specific_endpoint_wins_over_generic() {
        let config = parse(
            &[],
            &[
                ("DATABASE_URL", "postgres://env/dev"),
                ("AWS_ENDPOINT_URL", "http://generic"),
                ("AWS_ENDPOINT_URL_EVENTBRIDGE", "http://events"),
            ],
        )
        .expect("parses");
        assert_eq!(
            config.eventbridge_endpoint.as_deref(),
            Some("http://events")
        );
    }

    #[test]
    fn refuses_non_loopback_and_missing_database() {
        assert!(matches!(
            parse(&["--listen", "0.0.0.0:1", "--database-url", "x"], &[]),
            Err(ConfigError::Listen { .. })
        ));
        assert!(matches!(
            parse(&[], &[]),
            Err(ConfigError::MissingDatabaseUrl)
        ));
        assert!(matches!(
            parse(&["--bogus"], &[]),
            Err(ConfigError::UnknownOption(_))
        ));
    }

    #[test]
    fn faults_json_is_read_at_start() {
        let config = parse(
            &["--database-url", "x", "--faults", r#"{"delay_ms": 250}"#],
            &[],
        )
        .expect("parses");
        assert_eq!(config.faults.rules()[0].delay_ms, 250);
        let rules = parse(
            &["--database-url", "x"],
            &[(
                "REDSHIFT_DATA_EMULATOR_FAULTS",
                r#"{"rules": [{"statement_name_contains": "A", "delay_ms": 1}, {"drop_event": true}]}"#,
            )],
        )
        .expect("parses rules");
        assert_eq!(rules.faults.rules().len(), 2);
        assert!(rules.faults.rules()[1].drop_event);
        let error = parse(
            &[
                "--database-url",
                "x",
                "--faults",
                r#"{"rules": [{}, {"response_fault_times": 1}]}"#,
            ],
            &[],
        )
        .expect_err("invalid rule");
        assert!(error.to_string().contains("rules[1]"), "{error}");
        assert!(matches!(
            parse(
                &[
                    "--database-url",
                    "x",
                    "--faults",
                    r#"{"fail_response_after_submit": true, "reject_response_after_submit": true}"#
                ],
                &[]
            ),
            Err(ConfigError::FaultsInvalid(_))
        ));
    }

    #[test]
    fn max_active_statements_from_flag_or_environment() {
        let db = ("DATABASE_URL", "postgres://env/dev");
        assert_eq!(
            parse(&[], &[db]).expect("parses").max_active_statements,
            Some(200)
        );
        let env = ("REDSHIFT_DATA_EMULATOR_MAX_ACTIVE_STATEMENTS", "7");
        assert_eq!(
            parse(&[], &[db, env])
                .expect("parses")
                .max_active_statements,
            Some(7)
        );
        assert_eq!(
            parse(&["--max-active-statements", "3"], &[db, env])
                .expect("parses")
                .max_active_statements,
            Some(3),
            "the flag wins"
        );
        assert_eq!(
            parse(&["--max-active-statements=unlimited"], &[db])
                .expect("parses")
                .max_active_statements,
            None
        );
        for bad in ["0", "-1", "lots"] {
            assert!(matches!(
                parse(&["--max-active-statements", bad], &[db]),
                Err(ConfigError::MaxActive(_))
            ));
        }
    }

    #[test]
    fn max_waiting_requests_from_flag_or_environment() {
        let db = ("DATABASE_URL", "postgres://env/dev");
        let waiting =
            |args: &[&str], env: &[(&str, &str)]| parse(args, env).map(|c| c.max_waiting_requests);
        assert_eq!(waiting(&[], &[db]).expect("parses"), Some(10));
        let env = ("REDSHIFT_DATA_EMULATOR_MAX_WAITING_REQUESTS", "2");
        assert_eq!(waiting(&[], &[db, env]).expect("parses"), Some(2));
        assert_eq!(
            waiting(&["--max-waiting-requests=5"], &[db, env]).expect("parses"),
            Some(5),
            "the flag wins"
        );
        assert_eq!(
            waiting(&["--max-waiting-requests", "unlimited"], &[db]).expect("parses"),
            None
        );
        for bad in ["0", "x"] {
            assert!(matches!(
                parse(&["--max-waiting-requests", bad], &[db]),
                Err(ConfigError::MaxWaiting(_))
            ));
        }
    }
}
