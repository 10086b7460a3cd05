use std::sync::Arc;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

use meeting_sweeper::handler::{handle, Deps};
use shared::aws::{load_sdk_config, AwsClients};
use shared::config::{Config, Part};
use shared::platform::RegistryOptions;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Arc::new(Config::from_env_parts(&[
        Part::Whereby,
        Part::Daily,
        Part::Sweeper,
    ])?);
    let clients = AwsClients::new(&load_sdk_config().await);
    let deps = Deps::from_aws(config, &clients, RegistryOptions::default())?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<Value>| {
        handle(deps, event)
    }))
    .await
}
