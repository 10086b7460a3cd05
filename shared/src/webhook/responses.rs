//! The answers both webhook handlers give, in one place (DESIGN.md section 4): 200
//! `{"status":"ok"}` for every accepted event, `{"detail": ...}` otherwise.

use lambda_http::{Body, Response};

use super::signature::SignatureError;
use super::ParseError;
use crate::http::{detail, json_response};

/// 200 `{"status":"ok"}`: accepted (also duplicates, unknown types and unknown meetings, so a
/// platform's circuit breaker never counts them as failures).
pub fn ok() -> Response<Body> {
    json_response(200, &serde_json::json!({ "status": "ok" }))
}

/// 413 for a body over [`super::MAX_BODY_BYTES`].
pub fn too_large() -> Response<Body> {
    detail(413, "Request body too large")
}

/// 401 `Missing signature` when no signature header was sent, else `Invalid signature` (also
/// when the secret is not configured: the sender learns nothing about our configuration).
pub fn signature_rejected(error: &SignatureError) -> Response<Body> {
    match error {
        SignatureError::Missing => detail(401, "Missing signature"),
        SignatureError::Invalid { .. } | SignatureError::NotConfigured => {
            detail(401, "Invalid signature")
        }
    }
}

/// 422 for a signed body we cannot understand.
pub fn unprocessable(error: &ParseError) -> Response<Body> {
    detail(422, &error.to_string())
}

/// 503 when our own dependencies failed after the event was claimed (and the claim released):
/// a 5xx is what makes Daily and Whereby retry.
pub fn retry_later() -> Response<Body> {
    detail(503, "Temporarily unable to process the event; retry later")
}

/// 503 with `Retry-After` when another delivery of the event holds a live lease: whether it
/// will write the effects is not known yet, so the platform must ask again rather than be told
/// the event was handled.
pub fn in_progress(retry_after_secs: u64) -> Response<Body> {
    let mut response = detail(503, "The event is being handled; retry later");
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from(retry_after_secs),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(r.body().as_ref()).unwrap()
    }

    #[test]
    fn signature_errors_answer_401_with_the_original_details() {
        let r = signature_rejected(&SignatureError::Missing);
        assert_eq!(
            (r.status().as_u16(), body(&r)),
            (401, serde_json::json!({"detail": "Missing signature"}))
        );
        for e in [
            SignatureError::NotConfigured,
            SignatureError::Invalid { reason: "x" },
        ] {
            let r = signature_rejected(&e);
            assert_eq!(
                (r.status().as_u16(), body(&r)),
                (401, serde_json::json!({"detail": "Invalid signature"}))
            );
        }
    }

    #[test]
    fn ok_is_status_ok() {
        let r = ok();
        assert_eq!(
            (r.status().as_u16(), body(&r)),
            (200, serde_json::json!({"status": "ok"}))
        );
    }
}
