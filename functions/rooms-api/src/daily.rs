//! What the rooms API needs from Daily beyond [`shared::platform::VideoPlatform`]: a meeting
//! token for a join, and a manual recording start. [`DailyClient`] implements it; the handler
//! tests use a fake.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use shared::platform::daily::token::TokenRequest;
use shared::platform::{DailyClient, PlatformError};
use shared::recording_start::RecordingStarter;

#[async_trait]
pub trait DailyApi: RecordingStarter {
    /// A meeting token admitting `request`'s caller (no request to Daily once the domain id
    /// is known).
    async fn meeting_token(
        &self,
        request: &TokenRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<String, PlatformError>;
}

#[async_trait]
impl DailyApi for DailyClient {
    async fn meeting_token(
        &self,
        request: &TokenRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<String, PlatformError> {
        DailyClient::meeting_token(self, request, now).await
    }
}
