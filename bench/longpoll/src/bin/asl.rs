//! `longpoll-asl [--definition scripts/pipeline.toml] [--out bench/longpoll.asl.json]`: the long-polling
//! baseline's state machine from the pipeline definition (`make asl`). Benchmark only.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut definition, mut out) = (PathBuf::from(pipeline::DEFAULT_DEFINITION), None);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--definition", Some(v)) => definition = v.into(),
            ("--out", Some(v)) => out = Some(PathBuf::from(v)),
            _ => {
                eprintln!("usage: longpoll-asl [--definition FILE] [--out FILE]");
                return ExitCode::from(64);
            }
        }
    }
    let text = match pipeline::Plan::load(&definition)
        .and_then(|plan| longpoll_baseline::asl::longpoll_state_machine(&plan))
    {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{}: {e}", e.name());
            return ExitCode::from(2);
        }
    };
    match out {
        Some(path) => match std::fs::write(&path, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                ExitCode::FAILURE
            }
        },
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
    }
}
