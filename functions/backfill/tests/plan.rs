//! The plan of a backfill: dates, order, names, and every refusal by its name.

use backfill::{default_id, handle, plan, table, BackfillError, Config, OnFailure, Order};
use serde_json::{json, Value};

const CONFIG: Config = Config { max_days: 31 };

fn refused(input: Value) -> BackfillError {
    plan(&CONFIG, &input).expect_err("refused")
}

#[test]
fn lists_every_date_oldest_first_by_default() {
    let p = plan(&CONFIG, &json!({"from": "2021-02-27", "to": "2021-03-02"})).unwrap();
    let dates: Vec<_> = p.dates.iter().map(|d| d.date.as_str()).collect();
    assert_eq!(
        dates,
        ["2021-02-27", "2021-02-28", "2021-03-01", "2021-03-02"]
    );
    assert_eq!(p.days, 4);
    assert_eq!(
        (p.order, p.on_failure, p.dry_run),
        (Order::OldestFirst, OnFailure::Stop, false)
    );
    assert_eq!(p.backfill_id, default_id("2021-02-27", "2021-03-02"));
    assert_eq!(p.dates[0].name, format!("bf-{}-2021-02-27", p.backfill_id));
}

#[test]
fn leap_days_and_newest_first() {
    let p = plan(
        &CONFIG,
        &json!({"from": "2024-02-28", "to": "2024-03-01", "order": "newestFirst", "onFailure": "continue", "dryRun": true}),
    )
    .unwrap();
    let dates: Vec<_> = p.dates.iter().map(|d| d.date.as_str()).collect();
    assert_eq!(dates, ["2024-03-01", "2024-02-29", "2024-02-28"]);
    assert_eq!(
        (p.order, p.on_failure, p.dry_run),
        (Order::NewestFirst, OnFailure::Continue, true)
    );
}

#[test]
fn one_day_range() {
    let p = plan(&CONFIG, &json!({"from": "2021-06-01", "to": "2021-06-01"})).unwrap();
    assert_eq!(p.days, 1);
}

#[test]
fn the_id_depends_on_the_range_only_unless_given() {
    let a = plan(&CONFIG, &json!({"from": "2021-06-01", "to": "2021-06-05"})).unwrap();
    let b = plan(&CONFIG, &json!({"from": "2021-06-01", "to": "2021-06-05", "onFailure": "continue", "order": "newestFirst"})).unwrap();
    let c = plan(&CONFIG, &json!({"from": "2021-06-01", "to": "2021-06-06"})).unwrap();
    assert_eq!(a.backfill_id, b.backfill_id);
    assert_ne!(a.backfill_id, c.backfill_id);
    let d = plan(
        &CONFIG,
        &json!({"from": "2021-06-01", "to": "2021-06-05", "backfillId": "june-reload_2"}),
    )
    .unwrap();
    assert_eq!(d.dates[0].name, "bf-june-reload_2-2021-06-01");
}

#[test]
fn names_fit_step_functions_limits_with_an_attempt_suffix() {
    let id = "x".repeat(backfill::MAX_ID_LEN);
    let p = plan(
        &CONFIG,
        &json!({"from": "2021-06-01", "to": "2021-06-01", "backfillId": id}),
    )
    .unwrap();
    assert!(format!("{}-99", p.dates[0].name).len() <= 80);
    let p = plan(&CONFIG, &json!({"from": "2021-06-01", "to": "2021-06-01"})).unwrap();
    assert!(p.dates[0]
        .name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
}

#[test]
fn impossible_dates_are_named() {
    for (input, field) in [
        (json!({"from": "2021-02-30", "to": "2021-03-02"}), "from"),
        (json!({"from": "2021-02-01", "to": "2021-02-29"}), "to"),
        (json!({"from": "2021-6-1", "to": "2021-06-02"}), "from"),
        (
            json!({"from": "2021-06-01", "to": "2021-06-02T00:00:00Z"}),
            "to",
        ),
        (json!({"from": "1899-12-31", "to": "1900-01-02"}), "from"),
    ] {
        let err = refused(input);
        assert_eq!(err.name(), "Backfill.InvalidDate");
        assert!(
            matches!(err, BackfillError::InvalidDate { field: f, .. } if f == field),
            "{err}"
        );
    }
}

#[test]
fn reversed_and_too_long_ranges_are_named() {
    let err = refused(json!({"from": "2021-06-02", "to": "2021-06-01"}));
    assert_eq!(err.name(), "Backfill.RangeReversed");
    assert_eq!(err.to_string(), "from 2021-06-02 is after to 2021-06-01");
    let err = refused(json!({"from": "2021-06-01", "to": "2021-07-02"}));
    assert_eq!(err.name(), "Backfill.RangeTooLong");
    assert_eq!(
        err.to_string(),
        "2021-06-01 to 2021-07-02 is 32 days; a backfill covers at most 31 (BackfillMaxDays)"
    );
    let err = refused(json!({"from": "1900-01-01", "to": "9999-12-31"}));
    assert_eq!(err.name(), "Backfill.RangeTooLong");
    assert_eq!(
        plan(&CONFIG, &json!({"from": "2021-06-01", "to": "2021-07-01"}))
            .unwrap()
            .days,
        31
    );
    assert_eq!(
        plan(
            &Config { max_days: 31 },
            &json!({"from": "2021-05-01", "to": "2021-05-31"})
        )
        .unwrap()
        .days,
        31
    );
}

#[test]
fn bad_input_is_named() {
    for input in [
        json!([1]),
        json!("2021-06-01"),
        json!({"to": "2021-06-01"}),
        json!({"from": "2021-06-01"}),
        json!({"from": 20210601, "to": "2021-06-01"}),
        json!({"from": "2021-06-01", "to": "2021-06-01", "order": "random"}),
        json!({"from": "2021-06-01", "to": "2021-06-01", "onFailure": "retry"}),
        json!({"from": "2021-06-01", "to": "2021-06-01", "dryRun": "yes"}),
        json!({"from": "2021-06-01", "to": "2021-06-01", "onfailure": "continue"}),
        json!({"from": "2021-06-01", "to": "2021-06-01", "backfillId": "a b"}),
        json!({"from": "2021-06-01", "to": "2021-06-01", "backfillId": ""}),
        json!({"from": "2021-06-01", "to": "2021-06-01", "backfillId": "x".repeat(41)}),
    ] {
        assert_eq!(
            refused(input.clone()).name(),
            "Backfill.InvalidInput",
            "{input}"
        );
    }
    assert_eq!(
        handle(&CONFIG, &json!({})).unwrap_err().name(),
        "Backfill.InvalidInput"
    );
    assert_eq!(
        handle(
            &CONFIG,
            &json!({"input": {"from": "2021-06-01", "to": "2021-06-01"}})
        )
        .unwrap()["days"],
        1
    );
}

#[test]
fn config_bounds_the_maximum() {
    let read = |v: Option<&str>| {
        let owned = v.map(str::to_owned);
        let mut vars = etl_callback::config::Vars::new(move |_: &str| owned.clone());
        let c = Config::read(&mut vars);
        (c, vars.finish())
    };
    assert_eq!(read(None).0.max_days, 31);
    assert_eq!(read(Some("90")).0.max_days, 90);
    assert!(read(Some("0")).1.is_err());
    assert!(read(Some("367")).1.is_err());
}

#[test]
fn the_table_sums_each_runs_rows_and_counts_outcomes() {
    let out = table(&json!({
        "backfillId": "b", "from": "2021-06-01", "to": "2021-06-03", "order": "oldestFirst",
        "onFailure": "continue", "days": 3, "dates": [], "dryRun": false,
        "results": [
            {"date": "2021-06-01", "status": "SUCCEEDED", "executionArn": "a1", "attempt": 1, "skipped": false,
             "stepNames": ["Setup", "Load"], "stepRows": [3, 4]},
            {"date": "2021-06-02", "status": "SUCCEEDED", "executionArn": "a2", "attempt": 1, "skipped": true,
             "stepNames": ["Setup", "Load"], "stepRows": [3, 5]},
            {"date": "2021-06-03", "status": "FAILED", "executionArn": "a3", "attempt": 2, "skipped": false,
             "error": "Validation.NoSalesLoaded"}
        ]
    }))
    .unwrap();
    assert_eq!(
        (
            out["succeeded"].clone(),
            out["skipped"].clone(),
            out["failed"].clone(),
            out["rows"].clone()
        ),
        (json!(2), json!(1), json!(1), json!(15))
    );
    assert_eq!(out["dates"][0]["rows"], 7);
    assert_eq!(
        out["dates"][1]["rowsByStep"],
        json!({"Setup": 3, "Load": 5})
    );
    assert!(out["dates"][0].get("stepRows").is_none());
    assert!(out["dates"][2].get("rows").is_none());
    assert_eq!(out["dates"][2]["error"], "Validation.NoSalesLoaded");
    assert_eq!(out["onFailure"], "continue");
    assert_eq!(
        handle(&CONFIG, &json!({"table": {"results": 1}}))
            .unwrap_err()
            .name(),
        "Backfill.InvalidInput"
    );
}

#[test]
fn vars_are_passed_on_to_every_run_unchanged() {
    let vars = json!({"schema": "reload", "limit": 5});
    let p = plan(
        &CONFIG,
        &json!({"from": "2021-06-01", "to": "2021-06-02", "vars": vars}),
    )
    .unwrap();
    assert_eq!(p.vars, vars);
    let out = handle(
        &CONFIG,
        &json!({"input": {"from": "2021-06-01", "to": "2021-06-01"}}),
    )
    .unwrap();
    assert_eq!(
        out["vars"],
        Value::Null,
        "none given: null, which a run reads as none"
    );
    for bad in [json!("schema=dev"), json!(["dev"]), json!(1)] {
        let e = refused(json!({"from": "2021-06-01", "to": "2021-06-01", "vars": bad}));
        assert_eq!(e.name(), "Backfill.InvalidInput");
        assert!(e.to_string().starts_with("vars must be an object"), "{e}");
    }
}
