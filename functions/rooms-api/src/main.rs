use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    // Parsed once: a bad value stops the cold start with a message naming the variable.
    let _config = shared::config::Config::from_env()?;
    run(service_fn(rooms_api::handler::handle)).await
}
