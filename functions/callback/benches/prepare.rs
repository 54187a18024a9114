//! Criterion benchmark of the submitter's script preparation on a worst-case legal script: just
//! under the Data API limits (100 KB, 40 statements), full of string literals, comments, a quoted
//! identifier, dollar quoting and `{{run_date}}` placeholders.
//!
//! `cargo bench -p etl-callback --bench prepare` (`make bench` checks the medians with
//! `bench/check_criterion.py`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etl_callback::run_date::RunDate;
use etl_callback::script::{self, MAX_SCRIPT_BYTES, MAX_STATEMENTS};
use etl_callback::sql;

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

fn prepare(c: &mut Criterion) {
    let script = worst_case_script();
    let run_date = RunDate::parse("2021-06-26").expect("valid date");
    let statements = script::prepare(script.as_bytes(), run_date).expect("the script is legal");
    assert_eq!(statements.len(), MAX_STATEMENTS);
    assert!(script.len() > MAX_SCRIPT_BYTES * 95 / 100 && script.len() <= MAX_SCRIPT_BYTES);
    let mut group = c.benchmark_group("prepare");
    group.throughput(Throughput::Bytes(script.len() as u64));
    group.bench_function("script_prepare", |b| {
        b.iter(|| script::prepare(black_box(script.as_bytes()), run_date).unwrap())
    });
    group.bench_function("split_statements", |b| {
        b.iter(|| sql::split_statements(black_box(&script)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, prepare);
criterion_main!(benches);
