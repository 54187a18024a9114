//! `pipeline`: the generator's command line (`make asl`, `make test`, the local stack).
//!
//!     pipeline asl    [--definition FILE] [--out FILE]      the state machine (stdout without --out)
//!     pipeline readme [--definition FILE] [--readme FILE]   rewrite the README's diagrams and step table
//!     pipeline check  [--definition FILE] [--asl FILE] [--readme FILE]
//!                                                           the definition and its data check; with
//!                                                           the default definition (or --asl), fail,
//!                                                           naming the first difference, when stale
//!     pipeline steps  [--definition FILE]                   the steps, layout, reads and writes as JSON
//!     pipeline lineage [--definition FILE] [--format json|mermaid]
//!                                                           the table-level graph
//!
//! A refused definition prints its error name and message (file, step, reason) and exits 2; the
//! data check ([`pipeline::lineage`]) prints every refusal, one per line. `asl`, `readme` and
//! `check` refuse what the data check refuses and print, on stderr, the problems an `allow`
//! acknowledges and the statements the analysis could not read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pipeline::{docs, lineage, Plan, DEFAULT_ASL, DEFAULT_DEFINITION};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let mut definition = PathBuf::from(DEFAULT_DEFINITION);
    let (mut out, mut asl, mut readme) = (None, PathBuf::from(DEFAULT_ASL), None);
    let (mut definition_given, mut asl_given, mut format) = (false, false, String::from("json"));
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            return usage(&format!("{flag} needs a value"));
        };
        match flag.as_str() {
            "--definition" => {
                definition = value.into();
                definition_given = true;
            }
            "--out" => out = Some(PathBuf::from(value)),
            "--asl" => {
                asl = value.into();
                asl_given = true;
            }
            "--readme" => readme = Some(PathBuf::from(value)),
            "--format" if value == "json" || value == "mermaid" => format = value,
            "--format" => return usage(&format!("--format {value}: expected json or mermaid")),
            _ => return usage(&format!("unknown option {flag}")),
        }
    }
    let plan = match Plan::load(&definition) {
        Ok(plan) => plan,
        Err(e) => return refused(e.name(), &e.to_string()),
    };
    if matches!(command.as_str(), "asl" | "readme" | "check") {
        for warning in &plan.definition.warnings {
            eprintln!("{warning}");
        }
        let checked = lineage::check(&plan.definition);
        for note in checked.notes(&plan.definition) {
            eprintln!("{note}");
        }
        let refusals = checked.refusals(&plan.definition);
        if !refusals.is_empty() {
            for (name, message) in &refusals {
                eprintln!("{name}: {message}");
            }
            return ExitCode::from(2);
        }
    }
    let result = match command.as_str() {
        "asl" => plan
            .asl()
            .map_err(|e| (e.name(), e.to_string()))
            .and_then(|text| match &out {
                Some(path) => write(path, &text),
                None => {
                    print!("{text}");
                    Ok(())
                }
            }),
        "readme" => {
            let path = readme.unwrap_or_else(|| PathBuf::from("README.md"));
            read(&path).and_then(|text| {
                docs::update_readme(&text, &plan.definition, &scripts_dir(&definition))
                    .map_err(|e| ("StaleReadme", e))
                    .and_then(|new| write(&path, &new))
            })
        }
        // Another definition than the default is checked on its own: the committed state
        // machine is the default definition's.
        "check" if definition_given && !asl_given && readme.is_none() => {
            plan.asl().map(drop).map_err(|e| (e.name(), e.to_string()))
        }
        "check" => check(&plan, &definition, &asl, readme.as_deref()),
        "lineage" => {
            if format == "mermaid" {
                print!("{}", lineage::mermaid(&plan.definition));
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&lineage::graph_json(&plan.definition))
                        .expect("json")
                );
            }
            Ok(())
        }
        "steps" => {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan.summary()).expect("json")
            );
            Ok(())
        }
        _ => return usage("expected a command: asl, readme, check, steps or lineage"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((name, message)) => refused(name, &message),
    }
}

fn check(
    plan: &Plan,
    definition: &Path,
    asl: &Path,
    readme: Option<&Path>,
) -> Result<(), (&'static str, String)> {
    let expected = plan.asl().map_err(|e| (e.name(), e.to_string()))?;
    let committed = read(asl)?;
    if let Some(diff) = docs::first_difference(&expected, &committed) {
        return Err((
            "StaleStateMachine",
            format!(
                "{} is not what {} generates ({diff}); run `make asl`",
                asl.display(),
                definition.display()
            ),
        ));
    }
    if let Some(readme) = readme {
        let text = read(readme)?;
        let updated = docs::update_readme(&text, &plan.definition, &scripts_dir(definition))
            .map_err(|e| ("StaleReadme", e))?;
        if let Some(diff) = docs::first_difference(&updated, &text) {
            return Err((
                "StaleReadme",
                format!(
                    "{}'s diagram or step table is not what {} generates ({diff}); run `make asl`",
                    readme.display(),
                    definition.display()
                ),
            ));
        }
    }
    Ok(())
}

fn scripts_dir(definition: &Path) -> String {
    definition
        .parent()
        .map(|p| p.display().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".into())
}

fn read(path: &Path) -> Result<String, (&'static str, String)> {
    std::fs::read_to_string(path).map_err(|e| ("Unreadable", format!("{}: {e}", path.display())))
}

fn write(path: &Path, text: &str) -> Result<(), (&'static str, String)> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| ("Unwritable", format!("{}: {e}", path.display())))
}

fn refused(name: &str, message: &str) -> ExitCode {
    eprintln!("{name}: {message}");
    ExitCode::from(2)
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("pipeline: {problem}\nusage: pipeline asl|readme|check|steps|lineage [--definition FILE] [--out FILE] [--asl FILE] [--readme FILE] [--format json|mermaid]");
    ExitCode::from(64)
}
