use etl_callback::complete::Completer;
use etl_callback::diagnostic;
use lambda_runtime::{run, service_fn, tracing, Diagnostic, LambdaEvent};
use reconciler::{Config, Reconciler};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    etl_callback::logging::init();
    let config = Config::from_env()?;
    let aws = etl_callback::aws::load_config().await;
    let reconciler = &Reconciler {
        completer: Completer::new(&aws, config.table.clone()),
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
