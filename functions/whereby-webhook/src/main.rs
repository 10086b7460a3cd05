use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    // Parsed once: a bad value stops the cold start with a message naming the variable.
    let _config = shared::config::Config::from_env()?;
    // Wired to `handler::handle` once the DynamoDB stores exist (Deps::from_config).
    run(service_fn(|_request: Request| async {
        Ok::<_, Error>(shared::http::not_implemented())
    }))
    .await
}
