use etl_callback::diagnostic;
use etl_callback::store::TokenTable;
use lambda_runtime::{run, service_fn, tracing, Diagnostic, LambdaEvent};
use reconciler::{Config, Reconciler};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    etl_callback::logging::init();
    let config = Config::from_env()?;
    let aws = etl_callback::aws::load_config().await;
    let reconciler = &Reconciler {
        table: TokenTable::new(etl_callback::aws::dynamodb(&aws), config.table.clone()),
        sfn: etl_callback::aws::sfn(&aws),
        redshift_data: etl_callback::aws::redshift_data(&aws),
        lineage: etl_callback::lineage::from_env(&aws)?
            .counting_rows(etl_callback::complete::rows_written),
        config,
    };
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            reconciler
                .handle(event.payload)
                .await
                .map(|summary| serde_json::to_value(summary).expect("Summary always serializes"))
                .map_err(|err| -> Diagnostic {
                    tracing::error!(error_type = err.name(), error = %err, "reconcile failed");
                    diagnostic(err.name(), &err)
                })
        },
    ))
    .await
}
