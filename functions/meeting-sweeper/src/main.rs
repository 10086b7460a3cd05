use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let _config = shared::config::Config::from_env()?;
    // Wired to `handler::handle` once the DynamoDB stores land.
    run(service_fn(|_event: LambdaEvent<Value>| async {
        Err::<(), Error>("meeting-sweeper: stores not wired yet".into())
    }))
    .await
}
