//! `[vars]` in the definition: declarations, the undeclared-placeholder refusal, the unused
//! warning, what the state machine carries, the README's table.

use std::collections::BTreeMap;
use std::path::Path;

use pipeline::definition::Definition;
use pipeline::{docs, Plan};

fn parse(text: &str, scripts: &[(&str, &str)]) -> Result<Definition, pipeline::DefinitionError> {
    let scripts: BTreeMap<String, String> = scripts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Definition::parse(text, Path::new("pipelines/test.toml"), |name| {
        Some(
            scripts
                .get(name)
                .cloned()
                .unwrap_or_else(|| "select 1;".into())
                .into_bytes(),
        )
    })
}

const DEF: &str = r#"
name = "P"

[vars]
schema = { type = "identifier", default = "public", description = "Where | the tables live." }
prefix = { type = "string", default = "raw" }
limit = { type = "integer", default = 10 }
since = { type = "date", default = "2021-01-01" }

[[step]]
name = "A"
script = "a.sql"

[[step]]
name = "B"
script = "b.sql"
after = ["A"]
"#;

const A: &str = "create table if not exists {{schema}}.t (d date);\n\
                 insert into {{schema}}.t select {{run_date_prev}} where {{limit}} > 0;";
const B: &str =
    "select * from {{schema}}.t where d >= {{since}} and '{{prefix}}/{{run_date_nodash}}' <> '';";

#[test]
fn declared_variables_are_typed_used_and_carried_by_the_state_machine() {
    let def = parse(DEF, &[("a.sql", A), ("b.sql", B)]).unwrap();
    assert!(def.warnings.is_empty(), "{:?}", def.warnings);
    let names: Vec<_> = def
        .vars
        .iter()
        .map(|v| (v.name.as_str(), v.used_by.clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("limit", vec!["A".to_owned()]),
            ("prefix", vec!["B".to_owned()]),
            ("schema", vec!["A".to_owned(), "B".to_owned()]),
            ("since", vec!["B".to_owned()]),
        ]
    );
    // The lineage reads the tables as the defaults name them.
    let data = &def.steps[0].data;
    assert_eq!(
        data.writes
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>(),
        vec!["public.t"]
    );

    let plan = Plan::new(def);
    let asl: serde_json::Value = serde_json::from_str(&plan.asl().unwrap()).unwrap();
    let states = &asl["States"];
    assert_eq!(states["CheckInput"]["Choices"][1]["Next"], "ResolveVars");
    assert_eq!(states["DefaultRunDate"]["Next"], "ResolveVars");
    let resolve = &states["ResolveVars"];
    assert_eq!(resolve["Resource"], "arn:aws:states:::lambda:invoke");
    assert_eq!(resolve["Next"], "AcquireRunLock");
    assert_eq!(resolve["ResultPath"], "$");
    assert_eq!(resolve["ResultSelector"]["vars.$"], "$.Payload.vars");
    assert_eq!(
        resolve["Catch"][0]["ErrorEquals"],
        serde_json::json!(["InvalidInput", "InvalidPipelineVars"])
    );
    assert!(
        states.get("Settings").is_none(),
        "ResolveVars builds the state"
    );
    let declared = &resolve["Parameters"]["Payload"]["resolveVars"]["declared"];
    assert_eq!(
        declared["schema"],
        serde_json::json!({"type": "identifier", "default": "public"})
    );
    assert_eq!(
        declared["prefix"],
        serde_json::json!({"type": "string", "default": "raw", "inLiteral": ["quoted"]})
    );
    assert_eq!(declared["limit"]["default"], 10);
    assert_eq!(states["ReadVarsRefusal"]["Next"], "VarsRefused");
    assert_eq!(states["VarsRefused"]["Next"], "RunFailed");
    let step = &states["Pipeline"]["Branches"][0]["States"]["A"]["Parameters"]["Payload"];
    assert_eq!(step["vars.$"], "$.vars");
    assert_eq!(
        step["varTypes"],
        serde_json::json!({"limit": "integer", "prefix": "string", "schema": "identifier", "since": "date"})
    );

    let table = docs::table(&plan.definition, "pipelines");
    assert!(
        table.contains(
            "| `{{schema}}` | identifier | `public` | `A`, `B` | Where \\| the tables live. |"
        ),
        "{table}"
    );
    assert!(
        table.contains("| `{{limit}}` | integer | `10` | `A` |  |"),
        "{table}"
    );
}

#[test]
fn an_undeclared_placeholder_is_refused_with_its_file_and_line() {
    let e = parse(
        DEF,
        &[("a.sql", A), ("b.sql", "select 1;\nselect {{schemas}}.t;")],
    )
    .unwrap_err();
    assert_eq!(e.name(), "UndeclaredVariable");
    assert!(
        e.to_string()
            .starts_with("pipelines/b.sql: 2: schemas (step B uses {{schemas}}"),
        "{e}"
    );
    // Inside a literal too.
    let e = parse(DEF, &[("a.sql", A), ("b.sql", "select 's3://x/{{day}}/';")]).unwrap_err();
    assert_eq!(e.name(), "UndeclaredVariable");
    // In a comment a placeholder is nothing.
    parse(
        DEF,
        &[("a.sql", A), ("b.sql", &format!("-- {{{{day}}}}\n{B}"))],
    )
    .unwrap();
}

#[test]
fn an_unused_variable_is_a_warning() {
    let def = parse(DEF, &[("a.sql", A), ("b.sql", "select 1;")]).unwrap();
    assert_eq!(
        def.warnings,
        vec![
            "pipelines/test.toml: warning: variable prefix is declared in [vars] but no script uses {{prefix}}",
            "pipelines/test.toml: warning: variable since is declared in [vars] but no script uses {{since}}",
        ]
    );
}

#[test]
fn bad_declarations_are_refused() {
    for (vars, expected) in [
        (
            r#"Schema = { type = "identifier", default = "x" }"#,
            "must be 1-64 characters",
        ),
        (
            r#"run_date = { type = "date", default = "2021-01-01" }"#,
            "is a built-in",
        ),
        (
            r#"x = { type = "text", default = "x" }"#,
            "is not one of identifier",
        ),
        (
            r#"x = { type = "integer", default = "ten" }"#,
            "variable x: \"ten\" is not an integer",
        ),
        (
            r#"x = { type = "date", default = "2021-02-30" }"#,
            "is not a calendar date",
        ),
        (
            r#"x = { type = "identifier", default = "" }"#,
            "must not be empty",
        ),
        (
            r#"x = { type = "string", default = 1.5 }"#,
            "must be a string or an integer",
        ),
        (
            r#"x = { type = "string", default = "${AWS::Region}" }"#,
            "CloudFormation would substitute",
        ),
        (r#"x = { type = "string" }"#, "missing field `default`"),
        (
            r#"x = { type = "string", default = "a", color = "red" }"#,
            "unknown field `color`",
        ),
    ] {
        let text =
            format!("name = \"P\"\n[vars]\n{vars}\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\n");
        let e = parse(&text, &[]).unwrap_err();
        assert_eq!(e.name(), "InvalidDefinition", "{vars}: {e}");
        assert!(e.to_string().contains(expected), "{vars}: {e}");
    }
}

#[test]
fn a_pipeline_without_vars_refuses_a_run_that_gives_some() {
    let def = parse(
        "name = \"P\"\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\n",
        &[],
    )
    .unwrap();
    let plan = Plan::new(def);
    let asl: serde_json::Value = serde_json::from_str(&plan.asl().unwrap()).unwrap();
    let states = &asl["States"];
    assert!(states.get("ResolveVars").is_none());
    assert_eq!(states["CheckInput"]["Choices"][1]["Next"], "UnexpectedVars");
    assert_eq!(
        states["UnexpectedVars"]["Parameters"]["Error"],
        "InvalidInput"
    );
    assert_eq!(states["DefaultRunDate"]["Next"], "Settings");
    assert_eq!(states["Settings"]["Next"], "AcquireRunLock");
    let payload = &states["Pipeline"]["Branches"][0]["States"]["A"]["Parameters"]["Payload"];
    assert!(payload.get("varTypes").is_none() && payload.get("vars.$").is_none());
}
