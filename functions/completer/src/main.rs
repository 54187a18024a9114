use completer::{config_from_env, handle};
use etl_callback::complete::Completer;
use etl_callback::diagnostic;
use lambda_runtime::{run, service_fn, tracing, Diagnostic, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    etl_callback::logging::init();
    let settings = config_from_env()?;
    let aws = etl_callback::aws::load_config().await;
    let completer = &Completer::new(&aws, settings).with_lineage(
        etl_callback::lineage::from_env(&aws)?.counting_rows(etl_callback::complete::rows_written),
    );
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handle(completer, event.payload)
            .await
            .map(|handled| serde_json::to_value(handled).expect("Handled always serializes"))
            .map_err(|err| -> Diagnostic {
                tracing::error!(error_type = err.name(), error = %err, "status event not handled");
                diagnostic(err.name(), &err)
            })
        },
    ))
    .await
}
