use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    // Parsed once: a bad value stops the cold start with a message naming the variable.
    let _config = shared::config::Config::from_env()?;
    // Wired to the DynamoDB stores once the data layer lands; until then the function refuses
    // every request rather than pretending to work.
    run(service_fn(|_request: lambda_http::Request| async {
        Ok::<_, Error>(shared::http::not_implemented())
    }))
    .await
}
