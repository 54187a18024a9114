//! Criterion benchmark of the Redshift -> PostgreSQL translation on a 100 KB script (the Data API's
//! SQL size limit) made of the corpus' Redshift shapes: layout clauses, bare date parts, NVL,
//! DECODE, LISTAGG, TOP, #temp tables, backslash literals, a procedure with a `$$` body.
//! Target (issue 23): the translation adds at most 1 ms to a 100 KB script.
//!
//! `cargo bench -p redshift-sql --bench translate` (`make bench` checks the median with
//! `bench/check_criterion.py`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use redshift_sql::lexer::tokenize;
use redshift_sql::translate::to_postgres;

const STATEMENTS: &[&str] = &[
    "create table if not exists stg_sales_{n} (id bigint identity(1,1), sold_on date encode az64, note varchar(max) encode zstd, body super) diststyle key distkey(id) compound sortkey(sold_on, id);\n",
    "insert into #tmp_{n} select id, nvl(note, 'n/a'), decode(kind, 1, 'one', 2, 'two', 'other'), dateadd(day, -1, trunc(getdate())) from stg_sales_{n} where sold_on > dateadd(month, -3, sysdate) and note ~ '\\\\d+\\\\.\\\\d+';\n",
    "select top 10 catgroup, listagg(catname, ', ') within group (order by catname), datediff(week, min(saletime), max(saletime)), avg(qtysold) from sales join category using (catid) -- a comment; with a semicolon\n group by catgroup order by 2 desc;\n",
    "create or replace procedure sp_{n}(f1 int, f2 inout varchar(256)) as $$ begin f2 := nvl(f2, '') || date_part(w, getdate()); end $$ language plpgsql;\n",
    "select 1 minus select 2; alter table stg_sales_{n} alter diststyle even; vacuum delete only stg_sales_{n} to 90 percent; analyze stg_sales_{n} predicate columns;\n",
];

fn script() -> String {
    let mut script = String::new();
    let mut n = 0;
    while script.len() < 100 * 1024 - 600 {
        script.push_str(&STATEMENTS[n % STATEMENTS.len()].replace("{n}", &n.to_string()));
        n += 1;
    }
    script
}

fn bench(c: &mut Criterion) {
    let script = script();
    assert!(to_postgres(&script).is_ok());
    let mut group = c.benchmark_group("translate");
    group.throughput(Throughput::Bytes(script.len() as u64));
    group.bench_function("to_postgres_100kb", |b| {
        b.iter(|| to_postgres(black_box(&script)).unwrap())
    });
    // The lexer alone on the same script: what the translation adds is the difference.
    group.bench_function("tokenize_100kb", |b| {
        b.iter(|| tokenize(black_box(&script)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
