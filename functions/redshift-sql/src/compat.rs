//! The PostgreSQL side of the emulation: Redshift functions, aggregates and system views written
//! in SQL/PL/pgSQL (`sql/redshift_compat.sql`), installed by the emulator into
//! [`SCHEMA`], which every emulator session puts in its search path ([`SEARCH_PATH`]) after the
//! user's schemas. Tables are still created in `public`. Where a compat function must win over
//! PostgreSQL's own (`avg(integer)` returns an integer on Redshift, r_AVG.html) the translation
//! calls it qualified.

/// The schema the compatibility objects live in.
pub const SCHEMA: &str = "redshift_compat";

/// The SQL that creates (or replaces) every compatibility object; idempotent.
pub const SQL: &str = include_str!("../sql/redshift_compat.sql");

/// The search path of an emulator session: Redshift's default (`"$user", public`), then the
/// compatibility schema. `pg_catalog` stays implicitly first: placed after `public`, a table named
/// like a type (TICKIT's `date`) would hide the type. Functions that must override PostgreSQL's
/// own are called qualified by the translation instead.
pub const SEARCH_PATH: &str = "\"$user\", public, redshift_compat";

/// A fingerprint of [`SQL`] (64-bit FNV-1a, hex): the emulator records it as the schema's comment
/// and reinstalls only when it differs.
pub fn version() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in SQL.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("redshift-sql compat {hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_creates_its_schema_and_the_search_path_names_it_before_pg_catalog() {
        assert!(SQL.contains(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA};")));
        let compat = SEARCH_PATH.find(SCHEMA).expect("compat schema in the path");
        let public = SEARCH_PATH.find("public").expect("public in the path");
        assert!(public < compat);
        assert!(
            !SEARCH_PATH.contains("pg_catalog"),
            "pg_catalog must stay implicitly first"
        );
        assert_eq!(version(), version());
        assert!(version().starts_with("redshift-sql compat "));
    }
}
