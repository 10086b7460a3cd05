//! HTTP helpers shared by the API Gateway functions: JSON responses and `{"detail": ...}` errors
//! in the shapes of the original API, and the route tables their axum routers are built from.
//!
//! Each HTTP function declares its routes once, as a table of [`Route`]s. [`router`] turns the
//! table into the `axum::Router` that `lambda_http` serves in Lambda and that `reflector-local`
//! merges into its server; a test of the local crate checks the tables against template.yaml's
//! HttpApi events, so the template and the routers cannot drift.

use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodFilter, MethodRouter};
use http::Method;
use lambda_http::{Body, Response};
use serde::Serialize;

/// One route of an HTTP function: API Gateway's method and path (`{name}` parameters, as in
/// template.yaml and axum 0.8) and the handler, given the method filter to serve it under
/// (`|m| on(m, create_room)`), so the method is written once.
pub struct Route<S> {
    pub method: Method,
    pub path: &'static str,
    pub handler: fn(MethodFilter) -> MethodRouter<S>,
}

/// The router of a route table over `state`: the routes only, with no fallback, so routers of
/// several functions merge into one server (see [`standalone`] for a function on its own).
///
/// There is no body limit here: each function checks its own limit after the credentials (the
/// order the original API answers in), and API Gateway (or the local server) bounds the rest.
pub fn router<S>(routes: &[Route<S>], state: S) -> axum::Router
where
    S: Clone + Send + Sync + 'static,
{
    routes
        .iter()
        .fold(axum::Router::new(), |router, route| {
            let filter = MethodFilter::try_from(route.method.clone()).unwrap_or_else(|_| {
                panic!("route {} {}: no such method", route.method, route.path)
            });
            router.route(route.path, (route.handler)(filter))
        })
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// A function's router as it runs alone in Lambda: anything it does not serve, another method
/// on a known path included, is 404 `{"detail": "Not Found"}` (API Gateway only sends a
/// function its own routes, so this answers only a misrouted request).
pub fn standalone(router: axum::Router) -> axum::Router {
    router
        .method_not_allowed_fallback(not_found)
        .fallback(not_found)
}

async fn not_found() -> Response<Body> {
    detail(404, "Not Found")
}

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
