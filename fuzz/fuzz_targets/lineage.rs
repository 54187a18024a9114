//! The lineage analysis (`redshift_sql::lineage::analyze`), what `pipeline check` runs on every
//! step's script: never panics, never recurses without bound (nesting is capped), is
//! deterministic, numbers its warnings as the splitter numbers the statements, and names only
//! tables of two or three non-empty parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redshift_sql::lexer::split_statements;
use redshift_sql::lineage::{analyze, TableName};

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let analysis = analyze(sql);
    assert_eq!(analyze(sql), analysis, "not deterministic");
    match split_statements(sql) {
        Ok(statements) => {
            for w in &analysis.warnings {
                assert!(
                    (1..=statements.len()).contains(&w.statement),
                    "warning for statement {} of {}: {w}",
                    w.statement,
                    statements.len()
                );
                assert!(w.start.chars().count() <= 60);
            }
        }
        Err(_) => {
            assert_eq!(analysis.warnings.len(), 1);
            assert_eq!(analysis.warnings[0].statement, 0);
            assert!(analysis.reads.is_empty() && analysis.writes.is_empty());
        }
    }
    for table in analysis.reads.iter().chain(&analysis.writes) {
        let parts = table.as_str().split('.').count();
        assert!(parts >= 2, "{table}: not schema-qualified");
        assert!(!table.as_str().is_empty());
    }
    // A declared name goes through the same names.
    let _ = TableName::parse(sql);
});
