//! The generator against what users depend on: the committed state machine and README are what
//! the definition generates, any DAG runs every step after its dependencies (exactly for
//! series-parallel graphs), and every bad definition is refused with a named error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pipeline::definition::Definition;
use pipeline::docs;
use pipeline::layout::{ancestors, critical_path, Layout};
use pipeline::{limits, Plan};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A definition checked against in-memory scripts (every `*.sql` name exists unless listed in
/// `missing`; `scripts` overrides a script's text).
fn parse_with(
    text: &str,
    scripts: &[(&str, &str)],
    missing: &[&str],
) -> Result<Definition, pipeline::DefinitionError> {
    let scripts: BTreeMap<String, String> = scripts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let missing: BTreeSet<String> = missing.iter().map(|s| s.to_string()).collect();
    Definition::parse(text, Path::new("pipelines/test.toml"), |name| {
        if missing.contains(name) {
            None
        } else {
            Some(
                scripts
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| "select 1;".into())
                    .into_bytes(),
            )
        }
    })
}

fn parse(text: &str) -> Definition {
    parse_with(text, &[], &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn refused(text: &str) -> (String, String) {
    refused_with(text, &[], &[])
}

fn refused_with(text: &str, scripts: &[(&str, &str)], missing: &[&str]) -> (String, String) {
    match parse_with(text, scripts, missing) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => (e.name().to_owned(), e.to_string()),
    }
}

/// A definition from `(step, after)` pairs.
fn graph(edges: &[(&str, &[&str])]) -> String {
    let mut text = String::from("name = \"Test\"\n");
    for (step, after) in edges {
        let after: Vec<String> = after.iter().map(|a| format!("\"{a}\"")).collect();
        text.push_str(&format!(
            "[[step]]\nname = \"{step}\"\nscript = \"{}.sql\"\nafter = [{}]\n",
            step.to_lowercase(),
            after.join(", ")
        ));
    }
    text
}

/// [`graph`] of generated steps.
fn parse_owned(edges: &[(String, Vec<String>)]) -> Definition {
    let pairs: Vec<(&str, Vec<&str>)> = edges
        .iter()
        .map(|(s, a)| (s.as_str(), a.iter().map(String::as_str).collect()))
        .collect();
    let refs: Vec<(&str, &[&str])> = pairs.iter().map(|(s, a)| (*s, a.as_slice())).collect();
    parse(&graph(&refs))
}

fn names(def: &Definition, set: &BTreeSet<usize>) -> Vec<String> {
    set.iter().map(|&i| def.steps[i].name.clone()).collect()
}

// --- the committed files --------------------------------------------------------------------

#[test]
fn the_committed_state_machine_and_readme_are_what_the_definition_generates() {
    let root = root();
    std::env::set_current_dir(&root).unwrap();
    let plan = Plan::load(Path::new(pipeline::DEFAULT_DEFINITION))
        .unwrap_or_else(|e| panic!("{}: {e}", e.name()));
    let expected = plan.asl().unwrap();
    let committed = std::fs::read_to_string(pipeline::DEFAULT_ASL).unwrap();
    if let Some(diff) = docs::first_difference(&expected, &committed) {
        panic!(
            "{} is stale ({diff}); run `make asl`",
            pipeline::DEFAULT_ASL
        );
    }
    let readme = std::fs::read_to_string("README.md").unwrap();
    let updated = docs::update_readme(&readme, &plan.definition, "scripts").unwrap();
    if let Some(diff) = docs::first_difference(&updated, &readme) {
        panic!("README.md's pipeline diagram or step table is stale ({diff}); run `make asl`");
    }
}

#[test]
fn generating_twice_gives_the_same_bytes() {
    std::env::set_current_dir(root()).unwrap();
    let a = Plan::load(Path::new(pipeline::DEFAULT_DEFINITION))
        .unwrap()
        .asl()
        .unwrap();
    let b = Plan::load(Path::new(pipeline::DEFAULT_DEFINITION))
        .unwrap()
        .asl()
        .unwrap();
    assert_eq!(a, b);
}

// --- the sales ETL ----------------------------------------------------------------------------

fn sales() -> (Plan, serde_json::Value) {
    std::env::set_current_dir(root()).unwrap();
    let plan = Plan::load(Path::new(pipeline::DEFAULT_DEFINITION)).unwrap();
    let asl = serde_json::from_str(&plan.asl().unwrap()).unwrap();
    (plan, asl)
}

#[test]
fn the_sales_etl_is_setup_then_both_dimensions_in_parallel_then_facts_then_validation() {
    let (plan, asl) = sales();
    let step = |name: &str| Layout::Step(plan.definition.step_index(name).unwrap());
    assert_eq!(
        plan.layout,
        Layout::Series(vec![
            step("SetupSalesDataPipeline"),
            Layout::Parallel(vec![step("LoadCustomerAddress"), step("LoadItem")]),
            step("LoadStoreSales"),
            Layout::Parallel(vec![
                step("ValidateSalesData"),
                step("UniqueSalesTickets"),
                step("SalesReferenceCurrentItems"),
            ]),
        ])
    );
    let branch = &asl["States"]["Pipeline"]["Branches"][0];
    assert_eq!(branch["StartAt"], "SetupSalesDataPipeline");
    assert_eq!(
        branch["States"]["SetupSalesDataPipeline"]["Next"],
        "LoadDimensions"
    );
    let dims = &branch["States"]["LoadDimensions"];
    assert_eq!(dims["Type"], "Parallel");
    assert_eq!(dims["Next"], "LoadStoreSales");
    assert_eq!(dims["ResultPath"], "$.steps");
    assert_eq!(
        dims["ResultSelector"]["SetupSalesDataPipeline.$"],
        "$[0].steps.SetupSalesDataPipeline"
    );
    assert_eq!(dims["ResultSelector"]["LoadItem.$"], "$[1].steps.LoadItem");
    let checks = &branch["States"]["CheckSales"];
    assert_eq!(checks["Type"], "Parallel");
    assert_eq!(checks["End"], true);
    // the validation is a check: Check.Failed is renamed by the functions, not by a Catch, and
    // its SELECT travels in the payload (the submitter wraps it; the closer reads its rows)
    let validate = &checks["Branches"][0]["States"]["ValidateSalesData"];
    let payload = &validate["Parameters"]["Payload"];
    assert_eq!(
        payload["errors"]["Check.Failed"],
        "Validation.NoSalesLoaded"
    );
    assert!(payload.get("script").is_none());
    assert_eq!(payload["check"]["severity"], "error");
    assert_eq!(payload["check"]["maxRows"], 10);
    assert!(payload["check"]["sql"]
        .as_str()
        .unwrap()
        .contains("row_count < 1"));
    // Check.Failed is never retried: only throttling, Lambda errors and the run lock are
    for retry in validate["Retry"].as_array().unwrap() {
        assert!(!retry["ErrorEquals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("Check.")));
    }
    assert!(validate.get("Catch").is_none());
    assert!(branch["States"]["LoadItem"]["Parameters"]["Payload"]
        .get("errors")
        .is_none());
}

#[test]
fn every_sql_task_has_the_one_policy() {
    let (plan, asl) = sales();
    let text = serde_json::to_string(&asl).unwrap();
    let tasks = all_states(&asl)
        .into_iter()
        .filter(|(_, s)| s["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken")
        .collect::<Vec<_>>();
    assert_eq!(tasks.len(), plan.definition.steps.len());
    for (name, task) in &tasks {
        assert_eq!(task["Retry"], tasks[0].1["Retry"], "{name}");
        assert_eq!(task["Parameters"]["Payload"]["step"], name.as_str());
        assert_eq!(task["ResultPath"], format!("$.steps.{name}"));
        assert_eq!(task["HeartbeatSecondsPath"], "$.settings.heartbeatSeconds");
        assert_eq!(task["TimeoutSecondsPath"], "$.settings.timeoutSeconds");
        assert!(
            task.get("Catch").is_none(),
            "{name}: a failed step must stay the failed state (Redrive)"
        );
        let retried: Vec<&str> = task["Retry"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r["ErrorEquals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.as_str().unwrap())
            })
            .collect();
        for error in [
            "Lambda.ServiceException",
            "Lambda.Unknown",
            "Sandbox.Timedout",
            "Runtime.ExitError",
            "RedshiftThrottled",
        ] {
            assert!(retried.contains(&error), "{name} does not retry {error}");
        }
    }
    // one Fail state, one release, no States.* error raised by a Fail state
    let fails: Vec<_> = all_states(&asl)
        .into_iter()
        .filter(|(_, s)| s["Type"] == "Fail")
        .collect();
    assert_eq!(fails.len(), 1);
    assert_eq!(fails[0].0, "RunFailed");
    assert_eq!(text.matches("DELETE holders :me").count(), 1);
    assert!(
        !text.contains("States.Runtime"),
        "a Catch cannot match States.Runtime on AWS"
    );
    for (name, state) in all_states(&asl) {
        if let Some(error) = state["Parameters"]["Error"].as_str() {
            assert!(!error.starts_with("States."), "{name} raises {error}");
        }
    }
}

fn all_states(asl: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for (name, state) in asl["States"].as_object().unwrap() {
        out.push((name.clone(), state.clone()));
        for branch in state["Branches"].as_array().into_iter().flatten() {
            out.extend(all_states(branch));
        }
    }
    out
}

#[test]
fn state_names_are_unique_across_the_machine() {
    let (_, asl) = sales();
    let names: Vec<String> = all_states(&asl).into_iter().map(|(n, _)| n).collect();
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
}

// --- any DAG ----------------------------------------------------------------------------------

#[test]
fn a_diamond_with_a_fan_out_is_laid_out_exactly() {
    let def = parse(&graph(&[
        ("A", &[]),
        ("B", &["A"]),
        ("C", &["A"]),
        ("D", &["B", "C"]),
        ("E1", &["D"]),
        ("E2", &["D"]),
        ("E3", &["D"]),
        ("F", &["E1", "E2", "E3"]),
    ]));
    let layout = Layout::of(&def);
    let s = |i| Layout::Step(i);
    assert_eq!(
        layout,
        Layout::Series(vec![
            s(0),
            Layout::Parallel(vec![s(1), s(2)]),
            s(3),
            Layout::Parallel(vec![s(4), s(5), s(6)]),
            s(7)
        ])
    );
    assert!(layout.extra_waits(&def).iter().all(BTreeSet::is_empty));
    assert_eq!(layout.depth(), critical_path(&def));
}

#[test]
fn a_graph_that_is_not_series_parallel_waits_for_its_sources_and_says_so() {
    // A -> C, A -> D, B -> D: C does not depend on B, but there is no exact nesting.
    let def = parse(&graph(&[
        ("A", &[]),
        ("B", &[]),
        ("C", &["A"]),
        ("D", &["A", "B"]),
    ]));
    let layout = Layout::of(&def);
    let s = |i| Layout::Step(i);
    assert_eq!(
        layout,
        Layout::Series(vec![
            Layout::Parallel(vec![s(0), s(1)]),
            Layout::Parallel(vec![s(2), s(3)])
        ])
    );
    let extra = layout.extra_waits(&def);
    assert_eq!(names(&def, &extra[2]), ["B"]);
    assert!(extra[0].is_empty() && extra[1].is_empty() && extra[3].is_empty());
    // still two steps deep: the cost is C's wait for B, not a longer chain
    assert_eq!(layout.depth(), 2);
    assert_eq!(critical_path(&def), 2);
    let summary = Plan::new(def).summary();
    assert_eq!(summary["seriesParallel"], false);
    assert_eq!(summary["steps"][2]["extraWaits"], serde_json::json!(["B"]));
}

#[test]
fn independent_chains_run_as_branches_and_a_lone_step_is_one_task() {
    let def = parse(&graph(&[
        ("A", &[]),
        ("B", &["A"]),
        ("X", &[]),
        ("Y", &["X"]),
        ("Z", &[]),
    ]));
    let layout = Layout::of(&def);
    let s = |i| Layout::Step(i);
    assert_eq!(
        layout,
        Layout::Parallel(vec![
            Layout::Series(vec![s(0), s(1)]),
            Layout::Series(vec![s(2), s(3)]),
            s(4)
        ])
    );
    let one = parse(&graph(&[("Only", &[])]));
    let asl: serde_json::Value = serde_json::from_str(&Plan::new(one).asl().unwrap()).unwrap();
    assert_eq!(
        asl["States"]["Pipeline"]["Branches"][0]["States"]["Only"]["End"],
        true
    );
}

/// A small deterministic generator (no dependency): xorshift.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn in_any_dag_no_step_starts_before_its_dependencies_and_the_generated_asl_holds_together() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..300 {
        let n = 1 + rng.below(12) as usize;
        let mut edges: Vec<(String, Vec<String>)> = Vec::new();
        for i in 0..n {
            let after: Vec<String> = (0..i)
                .filter(|_| rng.below(4) == 0)
                .map(|j| format!("S{j}"))
                .collect();
            edges.push((format!("S{i}"), after));
        }
        let def = parse_owned(&edges);
        let layout = Layout::of(&def);
        let waits = layout.waits_for(n);
        for (i, anc) in ancestors(&def).iter().enumerate() {
            assert!(
                anc.is_subset(&waits[i]),
                "case {case}: {} starts before {:?}",
                def.steps[i].name,
                names(&def, anc)
            );
        }
        let mut seen = layout.steps();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..n).collect::<Vec<_>>(),
            "case {case}: every step exactly once"
        );
        let asl: serde_json::Value =
            serde_json::from_str(&Plan::new(def.clone()).asl().unwrap()).unwrap();
        assert_transitions_resolve(&asl, case);
    }
}

/// Every Next/StartAt names a state of its own scope; every scope has an end.
fn assert_transitions_resolve(scope: &serde_json::Value, case: usize) {
    let states = scope["States"].as_object().unwrap();
    assert!(
        states.contains_key(scope["StartAt"].as_str().unwrap()),
        "case {case}"
    );
    for (name, state) in states {
        if let Some(next) = state["Next"].as_str() {
            assert!(states.contains_key(next), "case {case}: {name} -> {next}");
        }
        for branch in state["Branches"].as_array().into_iter().flatten() {
            assert_transitions_resolve(branch, case);
        }
    }
}

#[test]
fn series_parallel_graphs_are_laid_out_exactly() {
    // Build random series-parallel graphs by composition and check that nobody waits extra.
    fn build(
        rng: &mut Rng,
        steps: &mut Vec<(String, Vec<String>)>,
        depth: u32,
        after: &[String],
    ) -> Vec<String> {
        // returns the sinks of the built part
        match if depth == 0 { 0 } else { rng.below(3) } {
            0 => {
                let name = format!("S{}", steps.len());
                steps.push((name.clone(), after.to_vec()));
                vec![name]
            }
            1 => {
                let first = build(rng, steps, depth - 1, after);
                build(rng, steps, depth - 1, &first)
            }
            _ => {
                let mut sinks = build(rng, steps, depth - 1, after);
                sinks.extend(build(rng, steps, depth - 1, after));
                sinks
            }
        }
    }
    let mut rng = Rng(42);
    for case in 0..200 {
        let mut steps = Vec::new();
        build(&mut rng, &mut steps, 4, &[]);
        let def = parse_owned(&steps);
        let layout = Layout::of(&def);
        let extra = layout.extra_waits(&def);
        assert!(
            extra.iter().all(BTreeSet::is_empty),
            "case {case}: {steps:?} -> {layout:?}"
        );
    }
}

// --- refused definitions ----------------------------------------------------------------------

#[test]
fn a_cycle_is_refused_and_named() {
    let (name, message) = refused(&graph(&[("A", &["C"]), ("B", &["A"]), ("C", &["B"])]));
    assert_eq!(name, "DependencyCycle");
    assert!(message.starts_with("pipelines/test.toml: "), "{message}");
    assert!(
        message.contains("A -> B -> C -> A")
            || message.contains("B -> C -> A -> B")
            || message.contains("C -> A -> B -> C"),
        "{message}"
    );
    let (name, message) = refused(&graph(&[("A", &["A"])]));
    assert_eq!(
        (name.as_str(), message.contains("A -> A")),
        ("DependencyCycle", true),
        "{message}"
    );
}

#[test]
fn unknown_and_duplicate_steps_are_refused() {
    let (name, message) = refused(&graph(&[("A", &[]), ("B", &["Nope"])]));
    assert_eq!(name, "UnknownStep");
    assert!(message.contains("step B runs after Nope"), "{message}");
    let (name, message) = refused(&graph(&[("A", &[]), ("A", &[])]));
    assert_eq!(name, "DuplicateStep");
    assert!(
        message.contains("step A is defined more than once"),
        "{message}"
    );
}

#[test]
fn a_missing_script_is_refused_with_its_path() {
    let (name, message) = refused_with(&graph(&[("A", &[])]), &[], &["a.sql"]);
    assert_eq!(name, "ScriptNotFound");
    assert!(
        message.contains("step A: script a.sql does not exist"),
        "{message}"
    );
    // through the file system, the path beside the definition is named
    let dir = std::env::temp_dir().join(format!("pipeline-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pipeline.toml"), graph(&[("A", &[])])).unwrap();
    let err = Definition::load(&dir.join("pipeline.toml")).unwrap_err();
    assert!(
        err.to_string()
            .contains(&dir.join("a.sql").display().to_string()),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_script_the_submitter_would_refuse_is_refused_before_deploying() {
    let too_many: String = (0..41).map(|i| format!("select {i};\n")).collect();
    let big = format!("select '{}';", "x".repeat(101 * 1024));
    let def = graph(&[("A", &[])]);
    for (script, expected) in [
        (too_many.as_str(), "TooManyStatements"),
        (big.as_str(), "ScriptTooLarge"),
        ("select {{ day }};", "UnknownPlaceholder"),
        ("-- nothing\n", "EmptyScript"),
        ("select 'unterminated;", "InvalidScript"),
    ] {
        let (name, message) = refused_with(&def, &[("a.sql", script)], &[]);
        assert_eq!(name, "ScriptRefused", "{message}");
        assert!(
            message.contains(&format!(
                "step A: the submitter would refuse script a.sql ({expected})"
            )),
            "{message}"
        );
    }
    parse_with(&def, &[("a.sql", "select {{run_date}};")], &[]).unwrap();
}

#[test]
fn a_step_whose_script_truncates_is_refused_unless_it_says_atomic_false() {
    let def = graph(&[("A", &[])]);
    let script = "insert into log values (1);\n-- reset the stage\nTRUNCATE TABLE stage;\ninsert into stage select 1;";
    let (name, message) = refused_with(&def, &[("a.sql", script)], &[]);
    assert_eq!(name, "NonAtomicStep", "{message}");
    assert!(
        message.starts_with(
            "pipelines/test.toml: step A: script a.sql, statement 2: TRUNCATE commits the step's transaction on Redshift (https://docs.aws.amazon.com/redshift/latest/dg/r_TRUNCATE.html)"
        ),
        "{message}"
    );
    assert!(
        message.ends_with(
            "use DELETE FROM, which rolls back with the step, or set atomic = false on the step to accept partial changes"
        ),
        "{message}"
    );
    // Any spelling; only the statement, never a string or a comment that mentions it.
    let (name, _) = refused_with(&def, &[("a.sql", "select 1;\ntruncate s.stage;")], &[]);
    assert_eq!(name, "NonAtomicStep");
    parse_with(
        &def,
        &[(
            "a.sql",
            "insert into log values ('truncate stage'); -- truncate stage\ndelete from stage;",
        )],
        &[],
    )
    .unwrap();
    assert!(parse(&def).steps[0].atomic);

    // atomic = false: the step accepts partial changes.
    let text = "name = \"T\"\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\natomic = false\n";
    let accepted = parse_with(text, &[("a.sql", script)], &[]).unwrap();
    assert!(!accepted.steps[0].atomic);
    // ... and says so only when its script commits before its end.
    let (name, message) = refused_with(text, &[("a.sql", "delete from stage;")], &[]);
    assert_eq!(name, "InvalidStep", "{message}");
    assert!(
        message.ends_with("step A: atomic = false, but no statement of script a.sql commits the step's transaction; remove atomic = false"),
        "{message}"
    );
}

#[test]
fn a_statement_redshift_refuses_in_a_transaction_block_is_refused_even_with_atomic_false() {
    for (script, statement, command, page, fix) in [
        (
            "vacuum;",
            1,
            "VACUUM",
            "r_VACUUM_command.html",
            "remove it (Redshift vacuums tables automatically in the background) or run it outside the pipeline",
        ),
        (
            "select 1;\n/* move the rows */ ALTER TABLE sales APPEND FROM stage;",
            2,
            "ALTER TABLE APPEND",
            "r_ALTER_TABLE_APPEND.html",
            "move the rows with INSERT INTO … SELECT and DELETE FROM, which roll back with the step",
        ),
        (
            "create external table spectrum.t (n int) stored as parquet location 's3://b/t/';",
            1,
            "CREATE EXTERNAL TABLE",
            "r_CREATE_EXTERNAL_TABLE.html",
            "run it outside the pipeline, once, before deploying",
        ),
        (
            "truncate t;\ncreate database tickit;",
            2,
            "CREATE DATABASE",
            "r_CREATE_DATABASE.html",
            "run it outside the pipeline, once, before deploying",
        ),
        (
            "alter table t alter column c type varchar(300);",
            1,
            "ALTER TABLE ALTER COLUMN",
            "r_ALTER_TABLE.html",
            "run it outside the pipeline, once, before deploying",
        ),
    ] {
        let text = "name = \"T\"\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\natomic = false\n";
        let (name, message) = refused_with(text, &[("a.sql", script)], &[]);
        assert_eq!(name, "NotInTransaction", "{message}");
        assert_eq!(
            message,
            format!(
                "pipelines/test.toml: step A: script a.sql, statement {statement}: Redshift cannot run {command} inside a transaction block (https://docs.aws.amazon.com/redshift/latest/dg/{page}), and a step runs as one (one BatchExecuteStatement): {fix}"
            )
        );
    }
}

#[test]
fn state_names_step_functions_or_the_submitter_would_reject_are_refused() {
    for bad in [
        "Has Space",
        "Über",
        "a/b",
        &"x".repeat(81),
        "Pipeline",
        "RunFailed",
        "",
    ] {
        let text = format!("name = \"T\"\n[[step]]\nname = \"{bad}\"\nscript = \"a.sql\"\n");
        let (name, message) = refused(&text);
        assert_eq!(name, "InvalidStateName", "{bad}: {message}");
        assert!(message.contains("step"), "{message}");
    }
}

#[test]
fn bad_fields_overrides_and_error_mappings_are_refused() {
    let cases = [
        ("name = \"T\"\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\nafterr = []\n", "InvalidDefinition", "afterr"),
        ("name = \"T\"\n", "InvalidDefinition", "no steps"),
        ("name = \"T\"\n[[step]]\nname = \"A\"\nscript = \"../a.sql\"\n", "InvalidStep", "without a path"),
        ("name = \"T\"\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\nheartbeat_seconds = 900\ntimeout_seconds = 900\n", "InvalidStep", "shorter than timeout_seconds"),
        ("name = \"T\"\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\nheartbeat_seconds = 60\n", "InvalidStep", "two reconcile intervals"),
        ("name = \"T\"\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\ntimeout_seconds = 99999\n", "InvalidStep", "execution's own timeout"),
        ("name = \"T\"\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\nerrors = { \"Redshift.StatementFailed\" = \"States.Custom\" }\n", "InvalidStep", "reserves"),
        ("name = \"T\"\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\nerrors = { \"Lambda.Unknown\" = \"X\" }\n", "InvalidStep", "no function sends"),
        ("name = \"T\"\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\n[[step]]\nname = \"B\"\nscript = \"b.sql\"\n[[parallel]]\nname = \"AB\"\nsteps = [\"A\"]\n", "InvalidDefinition", "does not match a Parallel state"),
        ("name = \"T\"\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\nafter = \"B\"\n", "InvalidDefinition", "after"),
    ];
    for (text, expected, fragment) in cases {
        let result = parse_with(text, &[], &[]).and_then(|d| {
            let plan = Plan::new(d);
            plan.asl().map(|_| ())
        });
        let err = result.expect_err(text);
        assert_eq!(err.name(), expected, "{err}");
        assert!(err.to_string().contains(fragment), "{err}");
        assert!(err.to_string().starts_with("pipelines/test.toml"), "{err}");
    }
}

#[test]
fn per_step_limits_replace_the_template_parameters() {
    let def = parse("name = \"T\"\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\nheartbeat_seconds = 900\ntimeout_seconds = 7200\n");
    let asl: serde_json::Value = serde_json::from_str(&Plan::new(def).asl().unwrap()).unwrap();
    let task = &asl["States"]["Pipeline"]["Branches"][0]["States"]["A"];
    assert_eq!(task["HeartbeatSeconds"], 900);
    assert_eq!(task["TimeoutSeconds"], 7200);
    assert!(task.get("HeartbeatSecondsPath").is_none() && task.get("TimeoutSecondsPath").is_none());
}

// --- too large for one execution ------------------------------------------------------------

fn chain(n: usize) -> Definition {
    let mut text = String::from("name = \"Big\"\n");
    for i in 0..n {
        text.push_str(&format!(
            "[[step]]\nname = \"Step{i:04}\"\nscript = \"s.sql\"\n"
        ));
        if i > 0 {
            text.push_str(&format!("after = [\"Step{:04}\"]\n", i - 1));
        }
    }
    parse(&text)
}

/// The largest chain the generator accepts, by bisection.
fn largest_chain() -> usize {
    let (mut ok, mut too_big) = (100, 1000);
    while too_big - ok > 1 {
        let mid = (ok + too_big) / 2;
        if Plan::new(chain(mid)).asl().is_ok() {
            ok = mid;
        } else {
            too_big = mid;
        }
    }
    ok
}

#[test]
fn a_pipeline_too_big_for_one_execution_is_refused_with_the_limit_it_breaks() {
    let max = largest_chain();
    let err = Plan::new(chain(max + 1)).asl().unwrap_err();
    assert_eq!(err.name(), "PipelineTooLarge");
    let by_events = (limits::HISTORY_EVENT_QUOTA - limits::EVENTS_FIXED) / limits::EVENTS_PER_STEP;
    assert!(
        max <= by_events,
        "{max} steps would exceed the history quota ({by_events})"
    );
    let message = err.to_string();
    assert!(
        message.contains("definition quota") || message.contains("history events"),
        "{message}"
    );
    // what the README states: the binding limit and the figure
    println!("largest chain accepted: {max} steps ({message})");
    assert!(max >= 300, "only {max} steps fit");
}

#[test]
fn a_failed_step_is_the_unsuccessful_state_so_a_redrive_resumes_there() {
    // RedriveExecution "continues the failed execution from the unsuccessful step" and reruns only
    // the failed branches of a Parallel; a Catch routing to a Fail state would make that Fail state
    // the unsuccessful one. So nothing between a SQL step and the execution's end catches.
    let (_, asl) = sales();
    for (name, state) in all_states(&asl) {
        if state["Type"] == "Parallel" {
            assert!(
                state.get("Catch").is_none(),
                "{name}: a Catch here would end a redrive at once"
            );
        }
    }
    let states = asl["States"].as_object().unwrap();
    assert_eq!(states["Pipeline"]["Next"], "ReleaseRunLock");
    assert_eq!(states["ReleaseRunLock"]["Next"], "EtlSucceeded");
    for gone in ["RunOutcome", "StepTimedOut", "StepFunctionsError"] {
        assert!(!states.contains_key(gone), "{gone}");
    }
    // the release gives back this attempt's slot: the ARN (first attempt) or <ARN>#<redrive count>
    let release = &states["ReleaseRunLock"]["Parameters"];
    assert_eq!(
        release["ConditionExpression"],
        "contains(holders, :id) OR contains(holders, :attempt)"
    );
    assert_eq!(
        release["ExpressionAttributeValues"][":attempt"]["S.$"],
        "States.Format('{}#{}', $$.Execution.Id, $$.Execution.RedriveCount)"
    );
    // every SQL Task tells the submitter which attempt it is, and waits for the lock when redriven
    for (name, task) in all_states(&asl)
        .into_iter()
        .filter(|(_, s)| s["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken")
    {
        let payload = &task["Parameters"]["Payload"];
        assert_eq!(payload["executionId.$"], "$$.Execution.Id", "{name}");
        assert_eq!(
            payload["redriveCount.$"], "$$.Execution.RedriveCount",
            "{name}"
        );
        let lock_wait = task["Retry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["ErrorEquals"] == serde_json::json!(["RunLockTaken"]))
            .unwrap_or_else(|| panic!("{name} does not wait for RunLockTaken"));
        assert_eq!(lock_wait["MaxAttempts"], 6);
    }
}

const LOAD: &str = "name = \"P\"\n[[step]]\nname = \"Load\"\nscript = \"load.sql\"\n";

#[test]
fn a_check_is_a_task_after_its_steps_carrying_its_select_and_settings() {
    let def = parse(&format!(
        "{LOAD}[[check]]\nname = \"Unique\"\nafter = [\"Load\"]\nseverity = \"warn\"\nmax_rows = 3\n\
         unique = {{ table = \"sales.orders\", columns = [\"id\", \"line\"] }}\n\
         [[check]]\nname = \"Custom\"\nafter = [\"Load\"]\nerror = \"Orders.Negative\"\nscript = \"negative.sql\"\n"
    ));
    let plan = pipeline::Plan::new(def);
    let asl: serde_json::Value = serde_json::from_str(&plan.asl().unwrap()).unwrap();
    let states = all_states(&asl);
    let state = |name: &str| states.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let unique = state("Unique")["Parameters"]["Payload"].clone();
    assert!(unique.get("script").is_none());
    assert_eq!(unique["check"]["severity"], "warn");
    assert_eq!(unique["check"]["maxRows"], 3);
    assert!(unique["check"]["sql"]
        .as_str()
        .unwrap()
        .contains("from \"sales\".\"orders\""));
    let custom = state("Custom")["Parameters"]["Payload"].clone();
    assert_eq!(custom["script"], "negative.sql");
    assert_eq!(custom["check"]["severity"], "error");
    assert!(custom["check"].get("sql").is_none());
    assert_eq!(custom["errors"]["Check.Failed"], "Orders.Negative");
    // the checks read what the load writes: ordered, no data problem
    assert_eq!(
        plan.definition.steps[1]
            .data
            .reads
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>(),
        ["sales.orders"]
    );
}

#[test]
fn a_bad_check_is_refused_naming_the_check_and_the_reason() {
    let check = |body: &str| format!("{LOAD}[[check]]\nname = \"C\"\nafter = [\"Load\"]\n{body}\n");
    for (body, expected) in [
        (
            "not_null = { table = \"x; drop table y\", column = \"a\" }",
            "check C: not_null: table \"x; drop table y\" is not a name",
        ),
        ("sql = \"delete from t\"", "one SELECT"),
        ("sql = \"select 1; select 2\"", "2 statements"),
        (
            "sql = \"select 1\"\nerror = \"States.Boom\"",
            "error = \"States.Boom\"",
        ),
        (
            "sql = \"select 1\"\nscript = \"c.sql\"",
            "give only one of sql, script",
        ),
        ("script = \"../c.sql\"", "file name beside the definition"),
        ("severity = \"fatal\"\nsql = \"select 1\"", "severity"),
    ] {
        let (name, message) = refused(&check(body));
        assert_eq!(name, "InvalidCheck", "{body}: {message}");
        assert!(message.contains(expected), "{body}: {message}");
    }
    // A check's SQL names only declared variables and built-ins, as a script does.
    let (name, message) = refused(&check("sql = \"select {{nope}}\""));
    assert_eq!(name, "UndeclaredVariable", "{message}");
    assert!(message.contains("check C: 1: nope"), "{message}");
    let (name, message) = refused_with(
        &check("script = \"c.sql\""),
        &[("c.sql", "update t set a = 1")],
        &[],
    );
    assert_eq!(name, "InvalidCheck", "{message}");
    let (name, _) = refused(&format!(
        "{LOAD}[[check]]\nname = \"Load\"\nsql = \"select 1\"\n"
    ));
    assert_eq!(name, "DuplicateStep");
    let (name, _) = refused(&format!(
        "{LOAD}[[check]]\nname = \"C\"\nafter = [\"Nope\"]\nsql = \"select 1\"\n"
    ));
    assert_eq!(name, "UnknownStep");
}
