//! The functions' log subscriber: `lambda_runtime`'s default (level from `AWS_LAMBDA_LOG_LEVEL`
//! or `RUST_LOG`, JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`), but every line carries an RFC 3339
//! `timestamp`. Lambda's log-level filter treats a JSON line without a valid timestamp as INFO
//! ("If you don't supply a valid timestamp, Lambda will assign the log the level INFO",
//! <https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html>), and
//! `init_default_subscriber` writes none (`without_time`): at `LogLevel=WARN` every `warn!` and
//! `error!` line would then be dropped as INFO.

use std::str::FromStr;

use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter};
use lambda_runtime::tracing::subscriber::fmt::MakeWriter;

/// Installs the subscriber on stdout (once per cold start, in `main`).
pub fn init() {
    init_with_writer(std::io::stdout, |name| std::env::var(name).ok());
}

/// [`init`] with a writer and an environment lookup, for tests.
pub fn init_with_writer<W>(writer: W, env: impl Fn(&str) -> Option<String>)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let level = env("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| env("RUST_LOG"))
        .and_then(|l| LevelFilter::from_str(&l).ok())
        .unwrap_or(LevelFilter::INFO);
    let builder = lambda_runtime::tracing::subscriber::fmt()
        .with_target(false)
        .with_env_filter(
            EnvFilter::builder()
                .with_default_directive(level.into())
                .parse_lossy(""),
        )
        .with_writer(writer);
    let json = env("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use lambda_runtime::tracing;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Lines {
        type Writer = Lines;
        fn make_writer(&'w self) -> Lines {
            self.clone()
        }
    }

    #[test]
    fn json_lines_carry_the_level_and_an_rfc3339_timestamp_so_lambda_filters_them_by_their_level() {
        let lines = Lines::default();
        let env = |name: &str| match name {
            "AWS_LAMBDA_LOG_FORMAT" => Some("JSON".to_owned()),
            "AWS_LAMBDA_LOG_LEVEL" => Some("WARN".to_owned()),
            _ => None,
        };
        init_with_writer(lines.clone(), env);
        tracing::info!("filtered out at WARN");
        tracing::warn!(statement_id = "s-1", "kept");
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let logged: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(logged.len(), 1, "{text}");
        assert_eq!(logged[0]["level"], "WARN");
        assert_eq!(logged[0]["fields"]["message"], "kept");
        let timestamp = logged[0]["timestamp"].as_str().expect("a timestamp");
        chrono::DateTime::parse_from_rfc3339(timestamp)
            .unwrap_or_else(|e| panic!("{timestamp}: {e}"));
    }
}
