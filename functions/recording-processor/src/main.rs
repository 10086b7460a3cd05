use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let _config = shared::config::Config::from_env()?;
    run(service_fn(recording_processor::handler::handle)).await
}
