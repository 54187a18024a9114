//! The data check: the project's own pipelines read and write exactly the tables their SQL names
//! and pass; declared reads/writes win; `allow` acknowledges without hiding; random DAGs with a
//! planted missing dependency or write conflict are refused, naming it, and correct ones pass;
//! the command line prints `ErrorName: file: steps: table: fix`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use pipeline::definition::Definition;
use pipeline::lineage::{self, ProblemKind};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(path: &str) -> Definition {
    Definition::load(&root().join(path)).unwrap_or_else(|e| panic!("{}: {e}", e.name()))
}

fn parse(text: &str, scripts: &[(&str, &str)]) -> Result<Definition, pipeline::DefinitionError> {
    let scripts: BTreeMap<String, String> = scripts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Definition::parse(text, Path::new("pipelines/test.toml"), |name| {
        scripts.get(name).map(|s| s.clone().into_bytes())
    })
}

/// Step -> (reads, writes, temporary) as the check sees them.
type Tables = Vec<(
    &'static str,
    Vec<&'static str>,
    Vec<&'static str>,
    Vec<&'static str>,
)>;

/// Step, reads, writes, temporary tables.
type Row = (String, Vec<String>, Vec<String>, Vec<String>);

fn assert_tables(def: &Definition, expected: Tables) {
    let got: Vec<Row> = def
        .steps
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.data.reads.iter().map(ToString::to_string).collect(),
                s.data.writes.iter().map(ToString::to_string).collect(),
                s.data.temporary.iter().cloned().collect(),
            )
        })
        .collect();
    let expected: Vec<Row> = expected
        .into_iter()
        .map(|(n, r, w, t)| {
            let own = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
            (n.to_owned(), own(r), own(w), own(t))
        })
        .collect();
    assert_eq!(got, expected);
    for s in &def.steps {
        assert!(
            s.data.warnings.is_empty(),
            "{}: {:?}",
            s.name,
            s.data.warnings
        );
    }
}

// --- the project's pipelines ------------------------------------------------------------------

#[test]
fn the_sales_etl_reads_and_writes_what_its_sql_says_and_passes() {
    let def = load("scripts/pipeline.toml");
    let dims = vec![
        "public.customer",
        "public.customer_address",
        "public.date_dim",
        "public.item",
    ];
    let mut all = dims.clone();
    all.push("public.store_sales");
    assert_tables(
        &def,
        vec![
            // Sample rows are inserted only where absent (a left join on the table itself).
            ("SetupSalesDataPipeline", dims.clone(), all, vec![]),
            (
                "LoadCustomerAddress",
                vec!["public.customer_address"],
                vec!["public.customer_address"],
                vec!["stg_customer_address"],
            ),
            (
                "LoadItem",
                vec!["public.item"],
                vec!["public.item"],
                vec!["stg_item"],
            ),
            (
                "LoadStoreSales",
                dims,
                vec!["public.store_sales"],
                vec!["stg_store_sales"],
            ),
            (
                "ValidateSalesData",
                vec!["public.date_dim", "public.store_sales"],
                vec![],
                vec![],
            ),
            (
                "UniqueSalesTickets",
                vec!["public.date_dim", "public.store_sales"],
                vec![],
                vec![],
            ),
            (
                "SalesReferenceCurrentItems",
                vec!["public.date_dim", "public.item", "public.store_sales"],
                vec![],
                vec![],
            ),
        ],
    );
    let checked = lineage::check(&def);
    assert!(checked.problems.is_empty(), "{:?}", checked.problems);
    assert!(checked.needless.is_empty());
}

#[test]
fn the_diamond_pipeline_reads_and_writes_what_its_sql_says_and_passes() {
    let def = load("tests/e2e/pipelines/diamond/pipeline.toml");
    let p = |t: &'static str| t;
    assert_tables(
        &def,
        vec![
            (
                "Stage",
                vec![],
                vec![
                    "public.dmd_checks",
                    "public.dmd_customers",
                    "public.dmd_enriched",
                    "public.dmd_orders",
                    "public.dmd_raw_customers",
                    "public.dmd_raw_orders",
                    "public.dmd_report",
                    "public.dmd_revenue_by_region",
                    "public.dmd_top_customers",
                ],
                vec![],
            ),
            (
                "Orders",
                vec![p("public.dmd_raw_orders")],
                vec!["public.dmd_orders"],
                vec![],
            ),
            (
                "Customers",
                vec!["public.dmd_raw_customers"],
                vec!["public.dmd_customers"],
                vec![],
            ),
            (
                "Enrich",
                vec!["public.dmd_customers", "public.dmd_orders"],
                vec!["public.dmd_enriched"],
                vec![],
            ),
            (
                "RevenueByRegion",
                vec!["public.dmd_enriched"],
                vec!["public.dmd_revenue_by_region"],
                vec![],
            ),
            (
                "CheckTotals",
                vec!["public.dmd_enriched"],
                vec!["public.dmd_checks"],
                vec![],
            ),
            (
                "TopCustomers",
                vec!["public.dmd_enriched"],
                vec!["public.dmd_top_customers"],
                vec![],
            ),
            (
                "Publish",
                vec![
                    "public.dmd_checks",
                    "public.dmd_revenue_by_region",
                    "public.dmd_top_customers",
                ],
                vec!["public.dmd_report"],
                vec![],
            ),
            (
                "TotalsMatch",
                vec!["public.dmd_enriched", "public.dmd_orders"],
                vec![],
                vec![],
            ),
        ],
    );
    assert!(lineage::check(&def).problems.is_empty());
}

#[test]
fn the_copy_unload_pipeline_reads_and_writes_what_its_sql_says_and_passes() {
    let def = load("tests/e2e/pipelines/copy_unload/pipeline.toml");
    assert_tables(
        &def,
        vec![
            (
                "Load",
                vec![],
                vec!["public.cu_products", "public.cu_raw_sales"],
                vec![],
            ),
            (
                "Transform",
                vec!["public.cu_products", "public.cu_raw_sales"],
                vec!["public.cu_daily_revenue"],
                vec![],
            ),
            (
                "Merge",
                vec!["public.cu_daily_revenue"],
                vec!["public.cu_product_totals"],
                vec![],
            ),
            // The query inside UNLOAD ('…') is read.
            ("Export", vec!["public.cu_product_totals"], vec![], vec![]),
        ],
    );
    assert!(lineage::check(&def).problems.is_empty());
    let graph = lineage::graph_json(&def);
    let sources: Vec<&str> = graph["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["source"] == true)
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(sources.is_empty(), "every table is created by a step");
}

// --- declared tables and allow ----------------------------------------------------------------

const TWO: &str = "name = \"T\"\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\n[[step]]\nname = \"B\"\nscript = \"b.sql\"\n";

fn refusals(def: &Definition) -> Vec<(String, String)> {
    lineage::check(def)
        .refusals(def)
        .into_iter()
        .map(|(n, m)| (n.to_owned(), m))
        .collect()
}

#[test]
fn a_missing_dependency_names_both_steps_the_table_and_the_fix() {
    let def = parse(
        TWO,
        &[
            ("a.sql", "insert into sales.orders select * from raw.orders"),
            (
                "b.sql",
                "insert into report select count(*) from Sales.Orders",
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        refusals(&def),
        [(
            "MissingDependency".to_owned(),
            "pipelines/test.toml: steps B, A: table sales.orders: B reads sales.orders, which A writes, and neither runs after the other, so B may read it before, during or after A's write: add \"A\" to B's after (or, when intended, allow = [\"MissingDependency:sales.orders\"] on B)".to_owned()
        )]
    );
    // raw.orders is a source (no step writes it): reading it orders nothing.
    let graph = lineage::graph_json(&def);
    let raw = graph["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "raw.orders")
        .unwrap();
    assert_eq!(raw["source"], true);
    // Ordered either way, it passes.
    let after = TWO.replace(
        "script = \"b.sql\"\n",
        "script = \"b.sql\"\nafter = [\"A\"]\n",
    );
    let ordered = parse(
        &after,
        &[
            ("a.sql", "insert into sales.orders select 1"),
            ("b.sql", "select * from sales.orders"),
        ],
    )
    .unwrap();
    assert!(lineage::check(&ordered).problems.is_empty());
}

#[test]
fn a_write_conflict_names_both_writers_and_the_table() {
    let def = parse(
        TWO,
        &[
            ("a.sql", "delete from public.totals"),
            ("b.sql", "insert into totals values (1)"),
        ],
    )
    .unwrap();
    let got = refusals(&def);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "WriteConflict");
    assert!(
        got[0]
            .1
            .starts_with("pipelines/test.toml: steps A, B: table public.totals: A and B both write public.totals and may run at the same time"),
        "{}",
        got[0].1
    );
}

#[test]
fn temporary_tables_of_two_parallel_steps_never_conflict() {
    let def = parse(
        TWO,
        &[
            ("a.sql", "create temp table stage (a int); insert into stage values (1); insert into a_out select * from stage"),
            ("b.sql", "create temp table stage (a int); insert into stage values (2); insert into b_out select * from #other join stage on true"),
        ],
    )
    .unwrap();
    assert!(lineage::check(&def).problems.is_empty());
}

#[test]
fn an_allow_acknowledges_a_problem_which_is_still_printed() {
    let text = TWO.replace(
        "script = \"b.sql\"\n",
        "script = \"b.sql\"\nallow = [\"WriteConflict:public.totals\", \"MissingDependency:totals\"]\n",
    );
    let def = parse(
        &text,
        &[
            ("a.sql", "insert into totals values (1)"),
            ("b.sql", "insert into totals select * from totals"),
        ],
    )
    .unwrap();
    let checked = lineage::check(&def);
    assert!(refusals(&def).is_empty(), "{:?}", refusals(&def));
    let notes = checked.notes(&def);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with("MissingDependency (acknowledged by B's allow): pipelines/test.toml: steps B, A: table public.totals:"));
    assert!(notes[1].starts_with("WriteConflict (acknowledged by B's allow): pipelines/test.toml: steps A, B: table public.totals:"));
    // A MissingDependency is acknowledged by the reader, not the writer.
    let on_writer = TWO.replace(
        "script = \"a.sql\"\n",
        "script = \"a.sql\"\nallow = [\"MissingDependency:totals\"]\n",
    );
    let def = parse(
        &on_writer,
        &[
            ("a.sql", "insert into totals values (1)"),
            ("b.sql", "select * from totals"),
        ],
    )
    .unwrap();
    let names: Vec<String> = refusals(&def).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["MissingDependency", "NeedlessAllow"]);
}

#[test]
fn an_allow_that_acknowledges_nothing_is_refused() {
    let text = TWO.replace(
        "script = \"b.sql\"\n",
        "script = \"b.sql\"\nafter = [\"A\"]\nallow = [\"WriteConflict:totals\"]\n",
    );
    let def = parse(
        &text,
        &[
            ("a.sql", "insert into totals values (1)"),
            ("b.sql", "insert into totals values (2)"),
        ],
    )
    .unwrap();
    assert_eq!(
        refusals(&def),
        [(
            "NeedlessAllow".to_owned(),
            "pipelines/test.toml: step B: allow \"WriteConflict:public.totals\" acknowledges nothing (no step writes it while a step that may overlap writes it too): remove it".to_owned()
        )]
    );
}

#[test]
fn declared_reads_and_writes_win_over_the_script() {
    let text = TWO.replace(
        "script = \"b.sql\"\n",
        "script = \"b.sql\"\nreads = [\"Sales.Orders\"]\nwrites = [\"report\"]\n",
    );
    let def = parse(
        &text,
        &[
            ("a.sql", "insert into sales.orders values (1)"),
            ("b.sql", "call build_report()"),
        ],
    )
    .unwrap();
    let b = &def.steps[1].data;
    assert!(b.declared_reads && b.declared_writes);
    assert_eq!(b.warnings.len(), 1, "the analysis still ran");
    assert!(!b.warnings_matter(), "but both sides are declared");
    assert_eq!(
        b.reads.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["sales.orders"]
    );
    let checked = lineage::check(&def);
    assert!(checked.notes(&def).is_empty());
    assert_eq!(checked.problems.len(), 1);
    assert_eq!(checked.problems[0].kind, ProblemKind::MissingDependency);
    // Only one side declared: the unreadable CALL is still reported.
    let half = TWO.replace(
        "script = \"b.sql\"\n",
        "script = \"b.sql\"\nwrites = [\"report\"]\n",
    );
    let def = parse(
        &half,
        &[
            ("a.sql", "select 1"),
            ("b.sql", "select 1;\ncall build_report()"),
        ],
    )
    .unwrap();
    let notes = lineage::check(&def).notes(&def);
    assert_eq!(
        notes,
        ["UnreadableStatement: pipelines/test.toml: step B: script b.sql, statement 2 (call build_report ( )): CALL runs a stored procedure, whose tables the analysis cannot see: declare them with reads = [...] and writes = [...] on the step"]
    );
}

#[test]
fn bad_declarations_are_refused_as_invalid_steps() {
    for (key, message) in [
        (
            "reads = [\"a.b.c.d\"]",
            "reads: \"a.b.c.d\" is not a table name",
        ),
        (
            "writes = [\"#stage\"]",
            "writes: \"#stage\" is a temporary table",
        ),
        (
            "allow = [\"WriteConflict\"]",
            "allow entry \"WriteConflict\": expected",
        ),
        ("allow = [\"Race:t\"]", "allow entry \"Race:t\": expected"),
        (
            "allow = [\"WriteConflict:t\", \"WriteConflict:public.t\"]",
            "allow lists \"WriteConflict:public.t\" twice",
        ),
        ("reads = \"t\"", "reads"),
    ] {
        let text = format!("name = \"T\"\n[[step]]\nname = \"A\"\nscript = \"a.sql\"\n{key}\n");
        let err = parse(&text, &[("a.sql", "select 1")]).unwrap_err();
        assert!(
            matches!(err.name(), "InvalidStep" | "InvalidDefinition"),
            "{key}: {}",
            err.name()
        );
        assert!(err.to_string().contains(message), "{key}: {err}");
    }
}

// --- random DAGs --------------------------------------------------------------------------------

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

/// A random pipeline: step i writes its own table `s.t<i>` and reads the tables of some of its
/// ancestors (and sources), in statements of every kind, so the DAG is correct.
struct Random {
    after: Vec<Vec<usize>>,
    reads: Vec<BTreeSet<usize>>,
    /// Extra tables each step writes (planted conflicts).
    writes: Vec<BTreeSet<usize>>,
}

impl Random {
    fn new(rng: &mut Rng) -> Self {
        let n = 2 + rng.below(10) as usize;
        let mut after = Vec::new();
        for i in 0..n {
            after.push((0..i).filter(|_| rng.below(3) == 0).collect::<Vec<_>>());
        }
        let mut r = Random {
            reads: vec![BTreeSet::new(); n],
            writes: vec![BTreeSet::new(); n],
            after,
        };
        let anc = r.ancestors();
        for (i, a) in anc.iter().enumerate() {
            for &j in a {
                if rng.below(2) == 0 {
                    r.reads[i].insert(j);
                }
            }
        }
        r
    }

    /// Transitive closure by depth-first search (independent of the crate's `ancestors`).
    fn ancestors(&self) -> Vec<BTreeSet<usize>> {
        (0..self.after.len())
            .map(|i| {
                let mut seen = BTreeSet::new();
                let mut stack = self.after[i].clone();
                while let Some(j) = stack.pop() {
                    if seen.insert(j) {
                        stack.extend(&self.after[j]);
                    }
                }
                seen
            })
            .collect()
    }

    fn unordered_pairs(&self) -> Vec<(usize, usize)> {
        let anc = self.ancestors();
        let n = self.after.len();
        let mut out = Vec::new();
        for a in 0..n {
            for b in 0..n {
                if a != b && !anc[a].contains(&b) && !anc[b].contains(&a) {
                    out.push((a, b));
                }
            }
        }
        out
    }

    fn script(&self, i: usize, rng: &mut Rng) -> String {
        let mut sql = format!(
            "create temp table stage (k int);\ninsert into stage select k from source_{i} where d = {{{{run_date}}}};\n"
        );
        for &j in &self.reads[i] {
            sql.push_str(&match rng.below(4) {
                0 => format!("insert into stage select k from S.T{j} x join stage y using (k);\n"),
                1 => format!("delete from stage using s.\"t{j}\" t where t.k = stage.k;\n"),
                2 => format!("with c as (select * from s.t{j}) select count(*) from c;\n"),
                _ => format!("unload ('select * from s.t{j} where d = ''x''') to 's3://b/{i}/' iam_role default;\n"),
            });
        }
        sql.push_str(&format!("insert into s.t{i} select * from stage;\n"));
        for &j in &self.writes[i] {
            sql.push_str(&match rng.below(3) {
                0 => format!("delete from s.t{j} where k < 0;\n"),
                1 => format!("update s.t{j} set k = 1 from stage where false;\n"),
                _ => format!("merge into s.t{j} using stage on s.t{j}.k = stage.k when matched then delete;\n"),
            });
        }
        sql
    }

    fn definition(&self, rng: &mut Rng) -> Definition {
        let mut text = String::from("name = \"Random\"\n");
        let mut scripts = Vec::new();
        for (i, after) in self.after.iter().enumerate() {
            let after: Vec<String> = after.iter().map(|j| format!("\"S{j}\"")).collect();
            text.push_str(&format!(
                "[[step]]\nname = \"S{i}\"\nscript = \"s{i}.sql\"\nafter = [{}]\n",
                after.join(", ")
            ));
            scripts.push((format!("s{i}.sql"), self.script(i, rng)));
        }
        let refs: Vec<(&str, &str)> = scripts
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        parse(&text, &refs).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }
}

fn found(def: &Definition) -> BTreeSet<(ProblemKind, String, usize, usize)> {
    lineage::check(def)
        .problems
        .iter()
        .map(|p| (p.kind, p.table.to_string(), p.first, p.second))
        .collect()
}

#[test]
fn random_dags_pass_and_every_planted_missing_dependency_and_write_conflict_is_found() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut planted_missing, mut planted_conflicts) = (0, 0);
    for case in 0..300 {
        let mut random = Random::new(&mut rng);
        let def = random.definition(&mut rng);
        for (i, s) in def.steps.iter().enumerate() {
            let mut reads: BTreeSet<String> =
                random.reads[i].iter().map(|j| format!("s.t{j}")).collect();
            reads.insert(format!("public.source_{i}"));
            let got: BTreeSet<String> = s.data.reads.iter().map(ToString::to_string).collect();
            assert_eq!(got, reads, "case {case}: {}", s.name);
            assert!(
                s.data.warnings.is_empty(),
                "case {case}: {:?}",
                s.data.warnings
            );
        }
        assert_eq!(
            found(&def),
            BTreeSet::new(),
            "case {case}: a correct DAG passes"
        );

        let pairs = random.unordered_pairs();
        if pairs.is_empty() {
            continue;
        }
        let (a, b) = pairs[rng.below(pairs.len() as u64) as usize];
        if rng.below(2) == 0 {
            // B reads A's table: exactly that MissingDependency.
            random.reads[b].insert(a);
            let def = random.definition(&mut rng);
            assert_eq!(
                found(&def),
                BTreeSet::from([(ProblemKind::MissingDependency, format!("s.t{a}"), a, b)]),
                "case {case}"
            );
            planted_missing += 1;
        } else {
            // B also writes A's table: that WriteConflict, and a MissingDependency for every
            // reader of it that B may overlap.
            random.writes[b].insert(a);
            let def = random.definition(&mut rng);
            let anc = random.ancestors();
            let mut expected = BTreeSet::from([(
                ProblemKind::WriteConflict,
                format!("s.t{a}"),
                a.min(b),
                a.max(b),
            )]);
            for r in 0..random.after.len() {
                let reads = random.reads[r].contains(&a);
                if reads && r != b && !anc[r].contains(&b) && !anc[b].contains(&r) {
                    expected.insert((ProblemKind::MissingDependency, format!("s.t{a}"), b, r));
                }
            }
            assert_eq!(found(&def), expected, "case {case}");
            planted_conflicts += 1;
        }
    }
    assert!(
        planted_missing > 50 && planted_conflicts > 50,
        "{planted_missing} {planted_conflicts}"
    );
}

// --- the command line -----------------------------------------------------------------------

fn pipeline(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_definition_checks_any_pipeline_on_its_own_and_refuses_a_planted_race() {
    for ok in [
        "tests/e2e/pipelines/diamond/pipeline.toml",
        "tests/e2e/pipelines/copy_unload/pipeline.toml",
        "scripts/pipeline.toml",
    ] {
        let (code, _, err) = pipeline(&["check", "--definition", ok]);
        assert_eq!((code, err.as_str()), (0, ""), "{ok}");
    }
    let dir = std::env::temp_dir().join(format!("lineage-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in std::fs::read_dir(root().join("tests/e2e/pipelines/diamond")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    let toml = dir.join("pipeline.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    // Enrich no longer waits for Customers; TopCustomers also rewrites dmd_checks.
    std::fs::write(
        &toml,
        text.replace(
            "after = [\"Orders\", \"Customers\"]",
            "after = [\"Orders\"]",
        ),
    )
    .unwrap();
    let top = dir.join("top_customers.sql");
    let sql = std::fs::read_to_string(&top).unwrap();
    std::fs::write(
        &top,
        format!("{sql}\ndelete from dmd_checks where false;\n"),
    )
    .unwrap();
    let def = toml.display().to_string();
    let (code, out, err) = pipeline(&["check", "--definition", &def]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    // By table: dmd_checks, then dmd_customers.
    assert!(
        lines[0].starts_with(&format!(
            "WriteConflict: {def}: steps CheckTotals, TopCustomers: table public.dmd_checks: "
        )),
        "{err}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "MissingDependency: {def}: steps Enrich, Customers: table public.dmd_customers: "
        )) && lines[1].contains("add \"Customers\" to Enrich's after"),
        "{err}"
    );
    // asl refuses the same; steps and lineage report it.
    let (code, _, _) = pipeline(&["asl", "--definition", &def]);
    assert_eq!(code, 2);
    let (code, out, _) = pipeline(&["steps", "--definition", &def]);
    assert_eq!(code, 0);
    let steps: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(steps["dataProblems"].as_array().unwrap().len(), 2);
    assert_eq!(
        steps["steps"][3]["reads"],
        serde_json::json!(["public.dmd_customers", "public.dmd_orders"])
    );
    let (code, out, _) = pipeline(&["lineage", "--definition", &def, "--format", "mermaid"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("```mermaid\nflowchart LR\n") && out.contains("[(\"public.dmd_checks\")]")
    );
    let (code, _, err) = pipeline(&["lineage", "--format", "dot"]);
    assert_eq!(code, 64, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_readme_carries_the_sales_etls_lineage() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let def = load("scripts/pipeline.toml");
    let start = readme
        .find(pipeline::docs::LINEAGE_BEGIN)
        .expect("lineage markers");
    assert!(readme[start..].contains(&lineage::mermaid(&def)));
}

#[test]
fn a_readme_without_lineage_markers_keeps_two_parts_and_half_a_pair_is_refused() {
    use pipeline::docs::{self, LINEAGE_BEGIN, LINEAGE_END};
    let def = load("scripts/pipeline.toml");
    let two = format!(
        "{}\n{}\n{}\n{}\n",
        docs::DIAGRAM_BEGIN,
        docs::DIAGRAM_END,
        docs::TABLE_BEGIN,
        docs::TABLE_END
    );
    let updated = docs::update_readme(&two, &def, "scripts").unwrap();
    assert!(!updated.contains("[(\"public.item\")]"));
    let three = format!("{two}{LINEAGE_BEGIN}\n{LINEAGE_END}\n");
    let updated = docs::update_readme(&three, &def, "scripts").unwrap();
    assert!(updated.contains(&lineage::mermaid(&def)));
    let half = format!("{two}{LINEAGE_BEGIN}\n");
    assert!(docs::update_readme(&half, &def, "scripts").is_err());
}

/// Every SQL Task's payload carries what the OpenLineage events of the step name: the pipeline
/// and exactly the reads and writes the check saw (declared ones included).
#[test]
fn every_task_payload_carries_the_step_s_tables_for_its_lineage_events() {
    for path in [
        "scripts/pipeline.toml",
        "tests/e2e/pipelines/diamond/pipeline.toml",
    ] {
        let plan = pipeline::Plan::new(load(path));
        let asl: serde_json::Value = serde_json::from_str(&plan.asl().unwrap()).unwrap();
        let mut payloads = Vec::new();
        collect_payloads(&asl, &mut payloads);
        assert_eq!(payloads.len(), plan.definition.steps.len(), "{path}");
        for step in &plan.definition.steps {
            let payload = payloads
                .iter()
                .find(|p| p["step"] == step.name.as_str())
                .unwrap_or_else(|| panic!("{path}: no Task for {}", step.name));
            let names = |set: &std::collections::BTreeSet<redshift_sql::lineage::TableName>| {
                set.iter()
                    .map(|t| t.as_str().to_owned())
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                payload["lineage"],
                serde_json::json!({
                    "pipeline": plan.definition.name,
                    "reads": names(&step.data.reads),
                    "writes": names(&step.data.writes),
                }),
                "{path}: {}",
                step.name
            );
        }
    }
}

fn collect_payloads<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    match value {
        serde_json::Value::Object(map) => {
            if map.get("Resource").and_then(|r| r.as_str())
                == Some("arn:aws:states:::lambda:invoke.waitForTaskToken")
            {
                out.push(&map["Parameters"]["Payload"]);
            }
            map.values().for_each(|v| collect_payloads(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_payloads(v, out)),
        _ => {}
    }
}
