//! The submitter's task input (`TaskInput::from_json` then `validate`, what `submitter::handle`
//! does first): any JSON Step Functions could send. A task that passes has every field within
//! its rule and names a statement the Data API accepts; a rejection is
//! `InvalidInput` or `InvalidRunDate`, and its message never contains the task token.
#![no_main]

use etl_callback::run_date::RunDate;
use etl_callback::task::{
    is_execution_name, statement_name, InputError, TaskInput, MAX_STATEMENT_NAME_CHARS,
    MAX_TOKEN_CHARS,
};
use libfuzzer_sys::fuzz_target;

/// Every string in `value` (keys and values) other than the top-level `taskToken`.
fn other_strings<'a>(value: &'a serde_json::Value, top: bool, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| other_strings(v, false, out)),
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                out.push(key);
                if !(top && key == "taskToken") {
                    other_strings(v, false, out);
                }
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let token = value
        .get("taskToken")
        .and_then(|t| t.as_str())
        .map(str::to_owned);
    let mut others = Vec::new();
    other_strings(&value, true, &mut others);
    // The token can be checked for in a message only when nothing else in the input contains it.
    let secret =
        token.filter(|t| t.chars().count() >= 8 && !others.iter().any(|s| s.contains(t.as_str())));
    let result = TaskInput::from_json(value).and_then(TaskInput::validate);
    match result {
        Ok(task) => {
            let token = task.token.expose();
            assert!(!token.trim().is_empty() && token.chars().count() <= MAX_TOKEN_CHARS);
            assert!(is_execution_name(&task.execution_name));
            assert!(!format!("{task:?}").contains(token) || secret.is_none());
            // The run date is a calendar date whose text is its only form.
            assert_eq!(
                RunDate::parse(&task.run_date.to_string()),
                Ok(task.run_date)
            );
            let name = statement_name("redshift-etl-callback", &task.execution_name, &task.step);
            assert!(name.chars().count() <= MAX_STATEMENT_NAME_CHARS);
            assert!(name.starts_with("redshift-etl-callback/"));
            // a script, or a check carrying its SELECT instead (never both)
            match (&task.script, task.check.as_ref().and_then(|c| c.sql.as_deref())) {
                (Some(script), None) => assert!(script.ends_with(".sql") && !script.contains('/')),
                (None, Some(sql)) => assert!(!sql.trim().is_empty()),
                other => panic!("script and check.sql: {other:?}"),
            }
        }
        Err(error) => {
            let name = error.name();
            assert!(matches!(name, "InvalidInput" | "InvalidRunDate"), "{name}");
            if matches!(
                error,
                InputError::RunDate(_) | InputError::RunDateFrom { .. }
            ) {
                assert_eq!(name, "InvalidRunDate");
            }
            let message = error.to_string();
            assert!(!message.is_empty());
            if let Some(secret) = secret {
                assert!(
                    !message.contains(&secret),
                    "the message shows the task token"
                );
                assert!(!format!("{error:?}").contains(&secret));
            }
        }
    }
});
