//! A check's wrapped SELECT ([`etl_callback::check::wrap`]) on PostgreSQL through the emulator,
//! read back with `GetStatementResult` page by page (`--result-page-rows`), as the functions
//! that close a check's task read it.

mod common;

use aws_sdk_redshiftdata::error::ProvideErrorMetadata;
use aws_sdk_redshiftdata::types::{Field, StatusString};
use common::*;
use etl_callback::check::{wrap, VIOLATIONS_COLUMN};

#[tokio::test]
async fn a_wrapped_check_counts_every_row_and_pages_the_first_max_rows() {
    let emu = emulator_with(|c| c.result_page_rows = Some(4)).await;
    let client = client(&emu);
    let check =
        "select n, 'row ' || n as label from generate_series(1, 25) as g(n) where n % 1 = 0";
    let id = batch(&client, &[wrap(check, 10)]).await;
    let described = wait_done(&client, &id).await;
    assert_eq!(described.status(), Some(&StatusString::Finished));

    let sub = format!("{id}:1");
    let (mut records, mut pages, mut next) = (Vec::new(), 0, None::<String>);
    loop {
        let page = client
            .get_statement_result()
            .id(&sub)
            .set_next_token(next.take())
            .send()
            .await
            .expect("GetStatementResult");
        pages += 1;
        let names: Vec<&str> = page
            .column_metadata()
            .iter()
            .filter_map(|c| c.name())
            .collect();
        assert_eq!(names, [VIOLATIONS_COLUMN, "n", "label"]);
        assert_eq!(page.total_num_rows(), 10);
        assert!(page.records().len() <= 4);
        records.extend(page.records().iter().cloned());
        match page.next_token() {
            Some(t) => next = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3, "10 records in pages of 4");
    assert_eq!(records.len(), 10, "only max_rows leave the warehouse");
    assert!(
        records.iter().all(|r| r[0] == Field::LongValue(25)),
        "every record carries the count of all 25 violations"
    );

    // A token that is not one this result handed out is refused.
    let err = client
        .get_statement_result()
        .id(&sub)
        .next_token("record-99")
        .send()
        .await
        .expect_err("bad token");
    assert_eq!(err.into_service_error().code(), Some("ValidationException"));

    // No violations: no record, no token.
    let id = batch(&client, &[wrap("select 1 as n where false", 10)]).await;
    wait_done(&client, &id).await;
    let empty = client
        .get_statement_result()
        .id(format!("{id}:1"))
        .send()
        .await
        .expect("GetStatementResult");
    assert!(empty.records().is_empty() && empty.next_token().is_none());
    emu.shutdown().await;
}
