use backfill::Config;
use etl_callback::diagnostic;
use lambda_runtime::{run, service_fn, tracing, Diagnostic, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    etl_callback::logging::init();
    let config = &Config::from_env()?;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            backfill::handle(config, &event.payload).map_err(|err| -> Diagnostic {
                tracing::warn!(error_type = err.name(), error = %err, "backfill refused");
                diagnostic(err.name(), &err)
            })
        },
    ))
    .await
}
