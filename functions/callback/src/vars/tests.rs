use super::*;
use serde_json::json;

fn date() -> RunDate {
    RunDate::parse("2024-03-01").unwrap()
}

fn values() -> Values {
    Values::new(date())
        .with("schema", Value::Identifier("dev".into()))
        .with("who", Value::String("o'brien".into()))
        .with("n", Value::Integer(-5))
        .with(
            "since",
            Value::Date(NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()),
        )
}

/// The significant tokens (kind, text) of `sql`.
fn significant(sql: &str) -> Vec<(TokenKind, String)> {
    sql::tokenize(sql)
        .unwrap()
        .into_iter()
        .filter(|t| !t.is_trivia())
        .map(|t| (t.kind, t.text.to_owned()))
        .collect()
}

#[test]
fn built_ins_follow_the_run_date() {
    let filled = fill(
        "select {{run_date}}, {{run_date_prev}}, {{run_date_month_start}}, {{run_date_nodash}}, \
         's3://raw/clicks/{{run_date_nodash}}/', '{{run_date_prev}}'",
        &Values::new(date()),
    )
    .unwrap();
    assert_eq!(
        filled,
        "select '2024-03-01', DATE '2024-02-29', DATE '2024-03-01', '20240301', \
         's3://raw/clicks/20240301/', '2024-02-29'"
    );
    let first = fill(
        "{{run_date_prev}}",
        &Values::new(RunDate::parse("1900-01-01").unwrap()),
    );
    assert_eq!(first.unwrap(), "DATE '1899-12-31'");
}

#[test]
fn each_type_becomes_one_token_of_its_kind() {
    let filled = fill(
        "select * from {{schema}}.t where who = {{who}} and k > {{n}} and d >= {{since}}",
        &values(),
    )
    .unwrap();
    assert_eq!(
        filled,
        "select * from \"dev\".t where who = 'o''brien' and k > (-5) and d >= DATE '2024-01-02'"
    );
}

#[test]
fn placeholders_in_comments_and_quoted_identifiers_stay() {
    let sql = "select 1 -- {{nope}}\n/* {{nope}} */ from \"{{nope}}\"";
    assert_eq!(fill(sql, &values()).unwrap(), sql);
    assert!(placeholders(sql).unwrap().is_empty());
}

#[test]
fn malformed_and_unknown_placeholders_are_refused() {
    assert!(matches!(
        fill("select {{ schema }}", &values()),
        Err(FillError::Placeholder(PlaceholderError::Malformed(_)))
    ));
    assert!(matches!(
        fill("select {{customer}}", &values()),
        Err(FillError::Unknown { name, line: 1 }) if name == "customer"
    ));
    assert!(matches!(
        fill("select\n'{{customer}}'", &values()),
        Err(FillError::Unknown { name, line: 2 }) if name == "customer"
    ));
    // Inside a literal only an exact `{{name}}` is a placeholder: JSON text stays.
    let json = "select '{{\"a\": 1}}', '{{ x }}'";
    assert_eq!(fill(json, &values()).unwrap(), json);
}

#[test]
fn undeclared_names_are_found_with_their_line() {
    let sql = "select {{run_date}};\nselect * from {{schema}}.t\n where p = 's3://x/{{prefix}}/'";
    assert_eq!(
        check_declared(sql, |n| n == "schema"),
        Err(UndeclaredError::Undeclared(Undeclared {
            line: 3,
            name: "prefix".into()
        }))
    );
    let found = check_declared(sql, |n| n == "schema" || n == "prefix").unwrap();
    let names: Vec<_> = found
        .iter()
        .map(|p| (p.name.as_str(), p.line, p.literal))
        .collect();
    assert_eq!(
        names,
        vec![
            ("run_date", 1, None),
            ("schema", 2, None),
            ("prefix", 3, Some(LiteralKind::Quoted))
        ]
    );
}

#[test]
fn hostile_strings_stay_one_literal() {
    let long = "x'; drop table t; --".repeat(52_429); // just over 1 MB
    let hostile = [
        "'; drop table item; --",
        "a'b''c",
        "back\\'slash",
        "\\",
        "/* open",
        "-- comment",
        "semi;colon",
        "\u{2019}homoglyph\u{2018} \u{ff07}quote\u{ff07}",
        "\u{202e}rtl\u{200f}mark",
        "$$dollar$$",
        "\"double\"",
        "{{schema}}",
    ];
    for text in hostile {
        let value = Value::parse("s", VarType::String, &json!(text)).unwrap();
        let sql = format!("select {} as x", value.sql());
        let tokens = significant(&sql);
        assert_eq!(tokens.len(), 4, "{text:?} -> {sql}");
        assert_eq!(tokens[1].0, TokenKind::String, "{text:?}");
    }
    assert!(Value::parse("s", VarType::String, &json!("nul\u{0}")).is_err());
    let err = Value::parse("s", VarType::String, &json!(long)).unwrap_err();
    assert!(err.to_string().starts_with("variable s: is 1048"), "{err}");
}

#[test]
fn a_value_that_could_end_its_literal_is_refused_there() {
    let v = Values::new(date()).with("p", Value::String("it's".into()));
    assert!(matches!(
        fill("copy t from 's3://b/{{p}}/'", &v),
        Err(FillError::Var(VarError::Invalid { name, .. })) if name == "p"
    ));
    let v = Values::new(date()).with("p", Value::String("a\\".into()));
    assert!(fill("select '{{p}}'", &v).is_err());
    let v = Values::new(date()).with("p", Value::Identifier("a$$b".into()));
    assert!(fill("select $$ {{p}} $$", &v).is_err());
    assert_eq!(fill("select '{{p}}'", &v).unwrap(), "select 'a$$b'");
    // Outside a literal the same values are quoted.
    let v = Values::new(date()).with("p", Value::String("it's".into()));
    assert_eq!(fill("select {{p}}", &v).unwrap(), "select 'it''s'");
}

#[test]
fn identifiers_are_checked_and_quoted() {
    let q = |s: &str| Value::parse("schema", VarType::Identifier, &json!(s));
    assert_eq!(q("dev").unwrap().sql(), "\"dev\"");
    assert_eq!(q("a\"b").unwrap().sql(), "\"a\"\"b\"");
    assert_eq!(
        q("x\"; drop table t; --").unwrap().sql(),
        "\"x\"\"; drop table t; --\""
    );
    assert_eq!(q(&"é".repeat(63)).unwrap().sql().len(), 128);
    for bad in [
        "",
        "a\u{0}b",
        "tab\there",
        &"x".repeat(128),
        &"é".repeat(64),
    ] {
        let err = q(bad).unwrap_err();
        assert!(
            matches!(&err, VarError::Invalid { name, .. } if name == "schema"),
            "{bad:?}"
        );
    }
    assert!(Value::parse("schema", VarType::Identifier, &json!(1)).is_err());
}

#[test]
fn integers_are_i64_only() {
    let i = |v: serde_json::Value| Value::parse("n", VarType::Integer, &v);
    assert_eq!(i(json!(42)).unwrap(), Value::Integer(42));
    assert_eq!(i(json!("-7")).unwrap(), Value::Integer(-7));
    assert_eq!(i(json!(i64::MIN)).unwrap().sql(), "(-9223372036854775808)");
    for bad in [
        json!(9_223_372_036_854_775_808u64),
        json!("9223372036854775808"),
        json!("99999999999999999999999"),
        json!(1.5),
        json!("1e3"),
        json!("1; drop table t"),
        json!(" 1"),
        json!("+1"),
        json!("-"),
        json!(null),
        json!(true),
    ] {
        assert!(i(bad.clone()).is_err(), "{bad}");
    }
    // A negative number after a minus does not become a comment.
    let v = Values::new(date()).with("n", Value::Integer(-5));
    assert_eq!(fill("select 1-{{n}}", &v).unwrap(), "select 1-(-5)");
}

#[test]
fn dates_are_calendar_dates() {
    let d = |v: serde_json::Value| Value::parse("since", VarType::Date, &v);
    assert_eq!(d(json!("2024-02-29")).unwrap().sql(), "DATE '2024-02-29'");
    for bad in [
        "2023-02-29",
        "2024-1-02",
        "2024-01-02'",
        "0001-01-01",
        "yesterday",
    ] {
        assert!(d(json!(bad)).is_err(), "{bad}");
    }
}

#[test]
fn values_do_not_glue_onto_their_neighbours() {
    let v = Values::new(date())
        .with("s", Value::String("x".into()))
        .with("i", Value::Identifier("y".into()))
        .with("n", Value::Integer(3));
    assert_eq!(fill("select e{{s}}", &v).unwrap(), "select e 'x'");
    assert_eq!(
        fill("select 'a'{{s}}'b'", &v).unwrap(),
        "select 'a' 'x' 'b'"
    );
    assert_eq!(fill("select \"a\"{{i}}", &v).unwrap(), "select \"a\" \"y\"");
    assert_eq!(fill("select x{{n}}y", &v).unwrap(), "select x 3 y");
    assert_eq!(fill("select ({{n}})", &v).unwrap(), "select (3)");
}

#[test]
fn resolve_layers_defaults_deployment_and_run() {
    let declared = parse_declared(&json!({
        "schema": {"type": "identifier", "default": "public"},
        "limit": {"type": "integer", "default": 10},
        "prefix": {"type": "string", "default": "raw", "inLiteral": ["quoted"]},
    }))
    .unwrap();
    let deployment = json!({"schema": "dev"});
    let run = json!({"limit": "20"});
    let values = resolve(&declared, &[("d", Some(&deployment)), ("r", Some(&run))]).unwrap();
    assert_eq!(values["schema"], Value::Identifier("dev".into()));
    assert_eq!(values["limit"], Value::Integer(20));
    assert_eq!(values["prefix"], Value::String("raw".into()));

    let unknown = json!({"schemas": "x"});
    let err = resolve(&declared, &[("the run", Some(&unknown))]).unwrap_err();
    assert_eq!(err.layer, "the run");
    assert!(err.to_string().contains("\"schemas\""), "{err}");
    let bad = json!({"limit": "ten"});
    let err = resolve(&declared, &[("r", Some(&bad))]).unwrap_err();
    assert!(matches!(err.error, VarError::Invalid { ref name, .. } if name == "limit"));
    let quote = json!({"prefix": "a'b"});
    let err = resolve(&declared, &[("r", Some(&quote))]).unwrap_err();
    assert!(matches!(err.error, VarError::Invalid { ref name, .. } if name == "prefix"));
    assert!(resolve(&declared, &[("r", Some(&json!([1])))]).is_err());
}

#[test]
fn names_are_checked() {
    assert!(check_name("schema").is_ok());
    assert!(check_name("_x1").is_ok());
    for bad in [
        "",
        "Schema",
        "1x",
        "a-b",
        "run_date",
        "run_date_nodash",
        &"a".repeat(65),
    ] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
}

/// A small deterministic generator (xorshift): no dependency for a property test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// The property: a filled placeholder outside literals is replaced by its value's own tokens and
/// nothing around it changes; inside a literal, the literal stays one token and nothing around it
/// changes. Over random templates and hostile values of every type.
#[test]
fn substitution_never_changes_the_token_structure_around_the_placeholder() {
    let pieces = [
        "select", " ", "'lit'", "\"Q\"", "--c\n", "/*c*/", "x", "1", "-", "+", ".", "e", ";", "(",
        ")", "::", "$$d$$", ",", "'",
    ];
    let strings = [
        "'", "''", "\\", "\\'", "--", "/*", "*/", ";", "$$", "\"", "\u{2019}", "\u{0301}",
        "\u{202e}", "a b", "é", "{{x}}", "",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut checked = 0;
    for _ in 0..20_000 {
        let before: String = (0..rng.next() % 4).map(|_| rng.pick(&pieces)).collect();
        let after: String = (0..rng.next() % 4).map(|_| rng.pick(&pieces)).collect();
        let text: String = (0..1 + rng.next() % 3)
            .map(|_| rng.pick(&strings))
            .collect();
        let (ty, json) = match rng.next() % 4 {
            0 => (VarType::String, json!(text)),
            1 => (VarType::Identifier, json!(format!("i{text}"))),
            2 => (VarType::Integer, json!(rng.next() as i64)),
            _ => (VarType::Date, json!("2024-02-29")),
        };
        let value = Value::parse("v", ty, &json).unwrap();
        let values = Values::new(date()).with("v", value.clone());
        // Outside a literal: the template with the placeholder as its own statement part.
        let template = format!("{before} {{{{v}}}} {after}");
        let around = format!("{before} \u{1} {after}");
        let Ok(expected_around) = sql::tokenize(&around) else {
            continue;
        };
        if expected_around
            .iter()
            .any(|t| t.kind != TokenKind::Punct && t.text.contains('\u{1}'))
        {
            continue; // the placeholder fell inside a literal or comment of the template
        }
        let filled = fill(&template, &values).unwrap();
        let mut expected = Vec::new();
        for t in expected_around.iter().filter(|t| !t.is_trivia()) {
            if t.text == "\u{1}" {
                expected.extend(significant(&value.sql()));
            } else {
                expected.push((t.kind, t.text.to_owned()));
            }
        }
        assert_eq!(
            significant(&filled),
            expected,
            "{template:?} with {value:?}"
        );
        checked += 1;
        // Inside a literal: one string token, the same tokens around it.
        let in_lit = format!("{before} 's3://b/{{{{v}}}}/' {after}");
        match fill(&in_lit, &values) {
            Ok(filled) => {
                let lit = format!("'s3://b/{}/'", value.text());
                let mut expected = significant(&format!("{before} \u{1} {after}"));
                for e in &mut expected {
                    if e.1 == "\u{1}" {
                        *e = (TokenKind::String, lit.clone());
                    }
                }
                assert_eq!(significant(&filled), expected, "{in_lit:?} with {value:?}");
            }
            Err(FillError::Var(_)) => {
                assert!(LiteralKind::Quoted.refuses(&value.text()).is_some());
            }
            Err(other) => panic!("{in_lit:?}: {other}"),
        }
    }
    assert!(checked > 5_000, "only {checked} templates checked");
}
