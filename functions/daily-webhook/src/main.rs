use std::sync::Arc;

use daily_webhook::handler::{router, Deps};
use lambda_http::Error;
use shared::aws::{load_sdk_config, AwsClients};
use shared::config::Part;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    // Parsed once: a bad value stops the cold start with a message naming the variable.
    let config = shared::config::Config::from_env_parts(&[Part::Daily, Part::Webhooks])?;
    let clients = AwsClients::new(&load_sdk_config().await);
    let deps = Deps::from_config(&config, &clients)?;
    lambda_http::run(shared::http::standalone(router(Arc::new(deps)))).await
}
