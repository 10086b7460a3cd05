//! The one platform call the processor makes: a download URL for a Daily recording.

use async_trait::async_trait;
use shared::retry::Transient;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct LinkError {
    pub message: String,
    /// Whether asking again later may succeed; see [`Transient`].
    pub transient: bool,
}

impl Transient for LinkError {
    fn is_transient(&self) -> bool {
        self.transient
    }
}

/// Turns a platform recording id into a URL to download it from, or into the keys of its
/// audio tracks.
#[async_trait]
pub trait RecordingLinks: Send + Sync {
    async fn access_link(&self, recording_id: &str) -> Result<String, LinkError>;

    /// The object keys of a multitrack recording's audio tracks, as Daily lists them (empty
    /// while it lists none).
    async fn audio_tracks(&self, recording_id: &str) -> Result<Vec<String>, LinkError>;
}

/// Used when no Daily API key is configured: every lookup fails permanently, saying why.
pub struct NoRecordingLinks;

#[async_trait]
impl RecordingLinks for NoRecordingLinks {
    async fn access_link(&self, recording_id: &str) -> Result<String, LinkError> {
        Err(LinkError {
            message: format!(
                "cannot get a download link for Daily recording {recording_id}: DAILY_API_KEY is not set"
            ),
            transient: false,
        })
    }

    async fn audio_tracks(&self, recording_id: &str) -> Result<Vec<String>, LinkError> {
        Err(LinkError {
            message: format!(
                "cannot read the tracks of Daily recording {recording_id}: DAILY_API_KEY is not set"
            ),
            transient: false,
        })
    }
}

/// Daily's `GET /recordings/:id/access-link` and `GET /recordings/:id`.
pub struct DailyLinks(pub std::sync::Arc<shared::platform::daily::DailyClient>);

#[async_trait]
impl RecordingLinks for DailyLinks {
    async fn access_link(&self, recording_id: &str) -> Result<String, LinkError> {
        match self.0.get_recording_access_link(recording_id, None).await {
            // Daily documents that the link may be an error string in some cases.
            Ok(link)
                if link.download_link.starts_with("https://")
                    || link.download_link.starts_with("http://") =>
            {
                Ok(link.download_link)
            }
            Ok(link) => Err(LinkError {
                message: format!(
                    "Daily gave no download link for recording {recording_id}: {:?}",
                    link.download_link
                ),
                transient: false,
            }),
            Err(e) => Err(link_error(
                format!("Daily access link for recording {recording_id}"),
                e,
            )),
        }
    }

    async fn audio_tracks(&self, recording_id: &str) -> Result<Vec<String>, LinkError> {
        match self.0.get_recording(recording_id).await {
            Ok(recording) => Ok(recording.audio_track_keys()),
            Err(e) => Err(link_error(format!("Daily recording {recording_id}"), e)),
        }
    }
}

fn link_error(what: String, e: shared::platform::PlatformError) -> LinkError {
    // Unlike the shared rule, an answer of an unexpected shape counts as transient here: asking
    // again is a harmless GET, and a redelivery is cheaper than losing the recording to one odd
    // answer.
    let transient = matches!(e, shared::platform::PlatformError::Decode { .. }) || e.is_transient();
    LinkError {
        message: format!("{what}: {e}"),
        transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::platform::daily::DailyClient;
    use shared::platform::http::HttpSettings;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn key() -> secrecy::SecretString {
        secrecy::SecretString::from("daily-key".to_owned())
    }

    async fn links(server: &MockServer) -> DailyLinks {
        let client = DailyClient::new(
            reqwest::Client::new(),
            &format!("{}/v1", server.uri()),
            key(),
            HttpSettings::fast_for_tests(),
        )
        .unwrap();
        DailyLinks(std::sync::Arc::new(client))
    }

    #[tokio::test]
    async fn access_link_is_asked_of_daily_with_the_api_key() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/recordings/rec-1/access-link"))
            .and(header("authorization", "Bearer daily-key"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"download_link": "https://bucket.s3.amazonaws.com/a.mp4?sig=1", "expires": 1700000000}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let link = links(&server).await.access_link("rec-1").await.unwrap();
        assert_eq!(link, "https://bucket.s3.amazonaws.com/a.mp4?sig=1");
    }

    #[tokio::test]
    async fn unknown_recording_is_permanent_and_server_errors_transient() {
        let server = MockServer::start().await;
        Mock::given(path("/v1/recordings/gone/access-link"))
            .respond_with(ResponseTemplate::new(404).set_body_json(
                serde_json::json!({"error": "not-found", "info": "recording not found"}),
            ))
            .mount(&server)
            .await;
        Mock::given(path("/v1/recordings/busy/access-link"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        let l = links(&server).await;
        let gone = l.access_link("gone").await.unwrap_err();
        assert!(
            !gone.transient && gone.message.contains("recording not found"),
            "{gone}"
        );
        assert!(l.access_link("busy").await.unwrap_err().transient);
    }

    #[tokio::test]
    async fn error_string_instead_of_a_link_is_permanent() {
        let server = MockServer::start().await;
        Mock::given(path("/v1/recordings/odd/access-link"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"download_link": "recording not yet available", "expires": 0}),
            ))
            .mount(&server)
            .await;
        let err = links(&server).await.access_link("odd").await.unwrap_err();
        assert!(
            !err.transient && err.message.contains("not yet available"),
            "{err}"
        );
    }
}
