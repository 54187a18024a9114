//! The state machine's `ResolveVars` (before the run lock): defaults, the deployment's
//! `PIPELINE_VARS`, the run's `vars`; what is refused and with which name.

use serde_json::json;
use submitter::{resolve_vars, Refused, Resolved};

fn declared() -> serde_json::Value {
    json!({
        "schema": {"type": "identifier", "default": "public"},
        "limit": {"type": "integer", "default": 10},
        "prefix": {"type": "string", "default": "raw", "inLiteral": ["quoted"]},
        "since": {"type": "date", "default": "2021-01-01"},
    })
}

fn refused(resolved: Resolved) -> Refused {
    match resolved {
        Resolved::Refused(r) => r,
        Resolved::Vars(v) => panic!("accepted: {v:?}"),
    }
}

#[test]
fn the_run_overrides_the_deployment_which_overrides_the_defaults() {
    let input = json!({"runDate": "2021-06-26", "vars": {"limit": "20", "since": "2024-02-29"}});
    let resolved = resolve_vars(
        r#"{"schema": "dev", "limit": 5}"#,
        &declared(),
        Some(&input),
    );
    assert_eq!(
        serde_json::to_value(&resolved).unwrap(),
        json!({"vars": {"schema": "dev", "limit": 20, "prefix": "raw", "since": "2024-02-29"}})
    );
    let defaults = resolve_vars("{}", &declared(), Some(&json!({})));
    assert_eq!(
        serde_json::to_value(&defaults).unwrap()["vars"]["schema"],
        "public"
    );
    // `"vars": null` (what a backfill passes on when it was given none) is no variables.
    let null = resolve_vars("{}", &declared(), Some(&json!({"vars": null})));
    assert!(matches!(null, Resolved::Vars(_)));
}

#[test]
fn a_bad_run_value_is_invalid_input_naming_the_variable() {
    for (vars, needle) in [
        (json!({"schema": 5}), "variable schema: must be a string (type identifier), not a number"),
        (json!({"schemaa": "x"}), "variable \"schemaa\" is not declared in the pipeline's [vars] (declared: limit, prefix, schema, since)"),
        (json!({"limit": "9223372036854775808"}), "variable limit: \"9223372036854775808\" is not an integer"),
        (json!({"limit": 1.5}), "variable limit: 1.5 is not an integer"),
        (json!({"since": "2023-02-29"}), "variable since: \"2023-02-29\" is not a calendar date"),
        (json!({"prefix": "it's"}), "variable prefix: contains ', which would end the string literal"),
        (json!({"prefix": "a\\b"}), "variable prefix: contains \\"),
        (json!({"prefix": "nul\u{0}"}), "variable prefix: contains U+0000"),
        (json!({"prefix": "x".repeat(1 << 20)}), "variable prefix: is 1048576 bytes long"),
        (json!({"schema": "\"; drop table t; --".repeat(10)}), "variable schema: is 190 bytes long"),
        (json!("dev"), "variable vars: must be an object"),
    ] {
        let input = json!({"vars": vars});
        let r = refused(resolve_vars("{}", &declared(), Some(&input)));
        assert_eq!(r.error, "InvalidInput", "{needle}");
        assert!(r.cause.contains(needle), "{} does not contain {needle}", r.cause);
        assert!(r.cause.contains("(in the execution input's vars); nothing was run"), "{}", r.cause);
        assert!(r.cause.len() < 1000, "the cause stays short: {}", r.cause.len());
    }
}

#[test]
fn a_bad_deployment_value_is_invalid_pipeline_vars() {
    for (deployment, needle) in [
        ("{\"schema\": 1}", "variable schema: must be a string"),
        ("{\"color\": \"red\"}", "variable \"color\" is not declared"),
        ("[1]", "PipelineVars is not a JSON object"),
        ("{\"schema\": \"a\"", "PipelineVars is not a JSON object"),
    ] {
        let r = refused(resolve_vars(deployment, &declared(), None));
        assert_eq!(r.error, "InvalidPipelineVars", "{deployment}");
        assert!(r.cause.contains(needle), "{}", r.cause);
    }
}
