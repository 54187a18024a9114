//! Measures SQL libraries against the Redshift compatibility corpus: each case's statements are
//! translated Redshift -> PostgreSQL by one library, run on PostgreSQL (compat schema installed,
//! session as the emulator's), and the outcome tallied like the corpus test does.
use std::time::Instant;
use postgres::{Client, NoTls, SimpleQueryMessage};

struct Case { id: String, expect: Option<Vec<String>>, needs: bool, autocommit: bool, sql: String }

fn parse(path: &std::path::Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut cases: Vec<Case> = vec![];
    let mut header = false;
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("-- case:") { cases.push(Case{id: id.trim().into(), expect: None, needs: false, autocommit: false, sql: String::new()}); header = true; continue; }
        let Some(c) = cases.last_mut() else { continue };
        if header { if let Some(h) = line.strip_prefix("-- ") {
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            let v = v.strip_prefix(' ').unwrap_or(v).to_string();
            match k.trim() { "expect" => { let e = c.expect.get_or_insert_with(Vec::new); if v != "(no rows)" { e.push(v) } }, "needs" => c.needs = true, "autocommit" => c.autocommit = true, _ => {} }
            continue; } header = false; }
        c.sql.push_str(line); c.sql.push('\n');
    }
    cases
}

fn translate(lib: &str, stmt: &str) -> Result<String, String> {
    match lib {
        "none" => Ok(stmt.to_string()),
        "redshift-sql" => redshift_sql::translate::to_postgres(stmt).map_err(|e| e.to_string()),
        "sqlparser" => {
            let d = sqlparser::dialect::RedshiftSqlDialect {};
            let ast = sqlparser::parser::Parser::parse_sql(&d, stmt).map_err(|e| e.to_string())?;
            Ok(ast.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(";\n"))
        }
        #[cfg(feature = "polyglot")]
        "polyglot-sql" => polyglot_sql::transpile(stmt, polyglot_sql::DialectType::Redshift, polyglot_sql::DialectType::PostgreSQL).map(|v| v.join(";\n")).map_err(|e| e.to_string()),
        "sqlglot-rust" => sqlglot_rust::transpile_statements(stmt, sqlglot_rust::dialects::Dialect::Redshift, sqlglot_rust::dialects::Dialect::Postgres).map(|v| v.join(";\n")).map_err(|e| e.to_string()),
        _ => Err("not built".into()),
    }
}

fn same(e: &str, a: &str) -> bool {
    if e == a { return true }
    if !(e.contains('.') && a.contains('.')) { return false }
    matches!((e.parse::<f64>(), a.parse::<f64>()), (Ok(x), Ok(y)) if (x-y).abs() <= 1e-9_f64.max(x.abs()*1e-9))
}

fn main() {
    let url = std::env::args().nth(1).unwrap();
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../local/redshift-data-emulator/tests/corpus"));
    let mut files: Vec<_> = std::fs::read_dir(dir.join("cases")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let cases: Vec<Case> = files.iter().flat_map(|p| parse(p)).collect();
    let mut c = Client::connect(&url, NoTls).unwrap();
    c.batch_execute(&format!("SET TIME ZONE 'UTC'; SET search_path = {}", redshift_sql::compat::SEARCH_PATH)).unwrap();
    let libs: Vec<String> = std::env::args().skip(2).collect();
    for lib in libs.iter().map(String::as_str) {
        let (mut inside, mut finished, mut compared, mut matched, mut wrong, mut parsed_all) = (0, 0, 0, 0, 0, 0);
        let mut ns = 0u128;
        for case in cases.iter().filter(|c| !c.needs) {
            inside += 1;
            let stmts = redshift_sql::lexer::split_statements(&case.sql).unwrap();
            if !case.autocommit { c.batch_execute("BEGIN").unwrap(); }
            let mut ok = true; let mut last: Option<Vec<String>> = None; let mut parsed = true;
            for s in &stmts {
                let t0 = Instant::now();
                let t = translate(lib, s);
                ns += t0.elapsed().as_nanos();
                let Ok(t) = t else { ok = false; parsed = false; break };
                match c.simple_query(&t) {
                    Ok(msgs) => { let mut rows = vec![]; let mut cols = false; for m in msgs { match m { SimpleQueryMessage::RowDescription(_) => cols = true, SimpleQueryMessage::Row(r) => { cols = true; rows.push((0..r.len()).map(|i| r.get(i).unwrap_or("NULL").to_string()).collect::<Vec<_>>().join(" | ")) }, _ => {} } } if cols { last = Some(rows) } }
                    Err(_) => { ok = false; break }
                }
            }
            if !case.autocommit { let _ = c.batch_execute("ROLLBACK"); }
            let _ = c.batch_execute(&format!("DISCARD ALL; SET TIME ZONE 'UTC'; SET search_path = {}", redshift_sql::compat::SEARCH_PATH));
            parsed_all += usize::from(parsed);
            if ok { finished += 1 }
            if let Some(e) = &case.expect { compared += 1; let r = last.unwrap_or_default(); let m = ok && e.len() == r.len() && e.iter().zip(&r).all(|(e, a)| { let (e, a): (Vec<&str>, Vec<&str>) = (e.split(" | ").collect(), a.split(" | ").collect()); e.len() == a.len() && e.iter().zip(&a).all(|(e, a)| same(e, a)) }); if m { matched += 1 } else if ok { wrong += 1 } }
            let _ = &case.id;
        }
        println!("{lib:13} translated {parsed_all}/{inside}  finish {finished}/{inside} ({:.0}%)  documented match {matched}/{compared} ({:.0}%)  wrong answers {wrong}  translate time {:.1} ms total", 100.0*finished as f64/inside as f64, 100.0*matched as f64/compared as f64, ns as f64/1e6);
    }
}
