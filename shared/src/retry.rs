//! One vocabulary for "may trying again later help?": every error that a caller must sort into
//! *retry later* (an SQS redelivery, a delayed message, a 503 to the client) or *give up and
//! record why* implements [`Transient`], and every answer with an HTTP status is judged by
//! [`is_transient_status`].
//!
//! This is about retrying *later*, as a whole. The platform clients' immediate in-call retry
//! loop (`platform::http`) has its own, narrower rule, since it must also know whether a
//! request was acted on.

/// An error that knows whether the same call, made again later, may succeed.
pub trait Transient {
    /// True when the failure may pass (a timeout, throttling, an outage); false when retrying
    /// the same call cannot change the answer (a bad request, a missing object, a refusal).
    fn is_transient(&self) -> bool;
}

/// Whether an HTTP answer with this status may differ later: 408 (request timeout), 429 (too
/// many requests) and any 5xx. Every other status, notably the rest of 4xx, is permanent.
pub fn is_transient_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Platform;
    use crate::platform::PlatformError;
    use crate::store::StoreError;

    fn api(status: u16) -> PlatformError {
        PlatformError::Api {
            platform: Platform::Daily,
            status,
            error: "e".into(),
            info: None,
        }
    }

    #[test]
    fn platform_errors_are_transient_on_transient_statuses_and_transport_failures() {
        for s in [408, 429, 500, 503] {
            assert!(api(s).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 422] {
            assert!(!api(s).is_transient(), "{s}");
        }
        assert!(PlatformError::Transport {
            platform: Platform::Daily,
            operation: "start recording",
            timed_out: true,
            message: "timed out".into(),
        }
        .is_transient());
        assert!(!PlatformError::Decode {
            platform: Platform::Daily,
            operation: "start recording",
            message: "missing field".into(),
        }
        .is_transient());
    }

    #[test]
    fn store_errors_are_transient_only_when_dynamodb_failed_or_throttled() {
        assert!(StoreError::Throttled("slow down".into()).is_transient());
        assert!(StoreError::Other("connection reset".into()).is_transient());
        let not_found = StoreError::NotFound {
            entity: "meeting",
            id: "m".into(),
        };
        let conflict = StoreError::Conflict {
            entity: "room",
            id: "r".into(),
            condition: "room name is taken".into(),
        };
        let corrupt = StoreError::Corrupt {
            entity: "room",
            id: "r".into(),
            reason: "bad".into(),
        };
        for e in [not_found, conflict, corrupt] {
            assert!(!e.is_transient(), "{e}");
        }
    }

    #[test]
    fn timeouts_throttling_and_server_errors_are_transient() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(is_transient_status(s), "{s}");
        }
    }

    #[test]
    fn other_client_errors_and_successes_are_permanent() {
        for s in [200, 204, 301, 400, 401, 403, 404, 409, 410, 422, 499] {
            assert!(!is_transient_status(s), "{s}");
        }
    }
}
