pub mod handler;

/// The secrets this function reads at cold start (`shared::secrets`). A test checks
/// template.yaml against this list.
pub const SECRETS: &[shared::secrets::Secret] = &[shared::secrets::Secret::WherebyWebhookSecret];
