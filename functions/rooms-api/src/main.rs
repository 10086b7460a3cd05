use std::sync::Arc;

use lambda_http::Error;
use shared::config::Part;
use shared::platform::{PlatformRegistry, RegistryOptions};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    // Parsed once: a bad value stops the cold start with a message naming the variable.
    let config = Arc::new(shared::config::Config::from_env_parts(&[
        Part::Whereby,
        Part::Daily,
        Part::Flags,
        Part::Auth,
        Part::Meetings,
    ])?);
    let aws = shared::aws::AwsClients::new(&shared::aws::load_sdk_config().await);
    let platforms = PlatformRegistry::from_config(&config, RegistryOptions::default());
    let deps = rooms_api::handler::Deps::from_config(config, &aws, platforms)?;
    let router = rooms_api::handler::router(Arc::new(deps));
    lambda_http::run(shared::http::standalone(router)).await
}
