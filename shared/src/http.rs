//! HTTP helpers shared by the API Gateway functions: JSON responses and `{"detail": ...}` errors
//! in the shapes of the original API.

use lambda_http::{Body, Response};
use serde::Serialize;

/// A JSON response with the given status.
pub fn json_response<T: Serialize>(status: u16, body: &T) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Binary(bytes))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// `{"detail": "<message>"}` with the given status.
pub fn detail(status: u16, message: &str) -> Response<Body> {
    json_response(status, &serde_json::json!({ "detail": message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_is_json_with_status() {
        let r = detail(404, "Room not found");
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["content-type"], "application/json");
        let body: serde_json::Value = serde_json::from_slice(r.body().as_ref()).unwrap();
        assert_eq!(body, serde_json::json!({"detail": "Room not found"}));
    }
}
