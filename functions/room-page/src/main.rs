use lambda_http::{run, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    // The page needs no configuration and no AWS clients: the router is all there is.
    run(shared::http::standalone(room_page::router())).await
}
