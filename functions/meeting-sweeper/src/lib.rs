pub mod daily;
pub mod deactivate;
pub mod handler;
pub mod requeue;

/// The secrets this function reads at cold start (`shared::secrets`): both API keys, for
/// sessions and Daily's reconciliation. A test checks template.yaml against this list.
pub const SECRETS: &[shared::secrets::Secret] = &[
    shared::secrets::Secret::DailyApiKey,
    shared::secrets::Secret::WherebyApiKey,
];
