use etl_callback::diagnostic;
use etl_callback::store::TokenTable;
use lambda_runtime::{run, service_fn, tracing, Diagnostic, LambdaEvent};
use submitter::{Config, Submitter};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    etl_callback::logging::init();
    let config = Config::from_env()?;
    let aws = etl_callback::aws::load_config().await;
    let lineage = etl_callback::lineage::from_settings(
        config.lineage.as_ref().map(|l| l.url.as_str()),
        config
            .lineage
            .as_ref()
            .and_then(|l| l.api_key_secret.as_deref()),
        &aws,
    )?;
    let submitter = &Submitter {
        s3: etl_callback::aws::s3(&aws),
        redshift_data: etl_callback::aws::redshift_data(&aws),
        table: TokenTable::new(
            etl_callback::aws::dynamodb(&aws),
            config.token_table.clone(),
        ),
        sfn: etl_callback::aws::sfn(&aws),
        lineage,
        config,
    };
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            submitter
                .invoke(event.payload)
                .await
                .map_err(|err| -> Diagnostic {
                    tracing::error!(error_type = err.name(), error = %err, "submit failed");
                    diagnostic(err.name(), &err)
                })
        },
    ))
    .await
}
