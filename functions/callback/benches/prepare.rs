//! Micro-benchmark of the submitter's script preparation on a worst-case legal script: just under
//! the Data API limits (100 KB, 40 statements), full of string literals, comments, a quoted
//! identifier, dollar quoting and `{{run_date}}` placeholders.
//!
//! `cargo bench -p etl-callback --bench prepare` (or `make bench`). std only, no criterion: warm
//! up, time single calls for about a second, print the median and the throughput, and exit 1 when
//! a median is over its target.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use etl_callback::run_date::RunDate;
use etl_callback::script::{self, MAX_SCRIPT_BYTES, MAX_STATEMENTS};
use etl_callback::sql;

/// Regression guards, about 10x the medians measured on the 2-core dev machine (prepare 0.96 ms,
/// split_statements 0.39 ms for the 99 KB script, release build): they catch an accidentally
/// quadratic tokenizer or placeholder pass, not noise from a loaded machine.
const PREPARE_TARGET: Duration = Duration::from_millis(10);
const SPLIT_TARGET: Duration = Duration::from_millis(4);

const WARM_UP: Duration = Duration::from_millis(200);
const MEASURE: Duration = Duration::from_secs(1);

/// 40 statements filling the 100 KB limit (less a little slack), each with everything the tokenizer
/// must not split on: `;` inside literals, comments, a quoted identifier and a dollar-quoted string.
fn worst_case_script() -> String {
    let budget = (MAX_SCRIPT_BYTES - 1024) / MAX_STATEMENTS;
    let mut script = String::new();
    for s in 0..MAX_STATEMENTS {
        let start = script.len();
        script.push_str(&format!(
            "-- step {s}: load; stage; merge {{{{run_date}}}} (in a comment: left alone)\n\
             /* block; comment /* nested; */ still a comment */\n\
             insert into \"stg;sales_{s}\" (id, sold_on, note, body) values\n"
        ));
        let mut row = 0;
        while script.len() - start < budget - 160 {
            script.push_str(&format!(
                "    ({row}, {{{{run_date}}}}::date, 'it''s; row {row} -- not a comment', $q$a;b {{{{run_date}}}}$q$), -- row {row};\n"
            ));
            row += 1;
        }
        script.push_str(&format!(
            "    ({row}, {{{{run_date}}}}::date, E'last\\'; row', 'x');\n\n"
        ));
    }
    script
}

/// Median time of one call, timed call by call for about `MEASURE` after a warm-up.
fn median_of(mut call: impl FnMut()) -> (Duration, usize) {
    let warm_up = Instant::now();
    while warm_up.elapsed() < WARM_UP {
        call();
    }
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < MEASURE || samples.len() < 11 {
        let t = Instant::now();
        call();
        samples.push(t.elapsed());
    }
    samples.sort_unstable();
    (samples[samples.len() / 2], samples.len())
}

/// Times `call` on a script of `bytes`, prints one line and says whether the median met `target`.
fn check(name: &str, target: Duration, bytes: usize, call: impl FnMut()) -> bool {
    let (median, runs) = median_of(call);
    let mib_per_s = bytes as f64 / median.as_secs_f64() / (1024.0 * 1024.0);
    let ok = median <= target;
    println!(
        "{name:<22} median {:>8.3} ms  {mib_per_s:>7.1} MiB/s  ({runs} runs)  target {:.1} ms  {}",
        median.as_secs_f64() * 1e3,
        target.as_secs_f64() * 1e3,
        if ok { "ok" } else { "MISSED" }
    );
    ok
}

fn main() -> ExitCode {
    let script = worst_case_script();
    let run_date = RunDate::parse("2021-06-26").expect("valid date");
    let statements = script::prepare(script.as_bytes(), run_date).expect("the script is legal");
    assert_eq!(statements.len(), MAX_STATEMENTS);
    assert!(script.len() > MAX_SCRIPT_BYTES * 95 / 100 && script.len() <= MAX_SCRIPT_BYTES);
    println!(
        "script: {} bytes, {} statements, {} `{{{{run_date}}}}` (some inside literals and comments)",
        script.len(),
        statements.len(),
        script.matches("{{run_date}}").count()
    );

    let prepare = check("script::prepare", PREPARE_TARGET, script.len(), || {
        black_box(script::prepare(black_box(script.as_bytes()), run_date).unwrap());
    });
    let split = check("sql::split_statements", SPLIT_TARGET, script.len(), || {
        black_box(sql::split_statements(black_box(&script)).unwrap());
    });
    if !(prepare && split) {
        eprintln!("error: a script preparation median is over its target");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
