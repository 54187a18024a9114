//! `pipeline`: the generator's command line (`make asl`, `make test`, the local stack).
//!
//!     pipeline asl    [--definition FILE] [--out FILE]      the state machine (stdout without --out)
//!     pipeline readme [--definition FILE] [--readme FILE]   rewrite the README's diagram and step table
//!     pipeline check  [--definition FILE] [--asl FILE] [--readme FILE]
//!                                                           fail, naming the first difference, when stale
//!     pipeline steps  [--definition FILE]                   the steps and layout as JSON
//!
//! A refused definition prints its error name and message (file, step, reason) and exits 2.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pipeline::{docs, Plan, DEFAULT_ASL, DEFAULT_DEFINITION};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let mut definition = PathBuf::from(DEFAULT_DEFINITION);
    let (mut out, mut asl, mut readme) = (None, PathBuf::from(DEFAULT_ASL), None);
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            return usage(&format!("{flag} needs a value"));
        };
        match flag.as_str() {
            "--definition" => definition = value.into(),
            "--out" => out = Some(PathBuf::from(value)),
            "--asl" => asl = value.into(),
            "--readme" => readme = Some(PathBuf::from(value)),
            _ => return usage(&format!("unknown option {flag}")),
        }
    }
    let plan = match Plan::load(&definition) {
        Ok(plan) => plan,
        Err(e) => return refused(e.name(), &e.to_string()),
    };
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
        "check" => check(&plan, &definition, &asl, readme.as_deref()),
        "steps" => {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan.summary()).expect("json")
            );
            Ok(())
        }
        _ => return usage("expected a command: asl, readme, check or steps"),
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
    eprintln!("pipeline: {problem}\nusage: pipeline asl|readme|check|steps [--definition FILE] [--out FILE] [--asl FILE] [--readme FILE]");
    ExitCode::from(64)
}
