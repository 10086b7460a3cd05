//! HTTP handler. Until this function's issue lands it answers 501 for every request rather than
//! pretending to work.

use lambda_http::{Body, Error, Request, Response};

pub async fn handle(_request: Request) -> Result<Response<Body>, Error> {
    Ok(shared::http::not_implemented())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_not_implemented() {
        let response = handle(Request::default()).await.unwrap();
        assert_eq!(response.status(), 501);
        assert_eq!(response.body().as_ref(), br#"{"detail":"not implemented"}"#);
    }
}
