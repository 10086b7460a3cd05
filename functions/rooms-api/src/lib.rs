//! The rooms API function: rooms CRUD and lookup, meetings (get-or-create, lookup, join,
//! deactivate, manual Daily recording start) and consent (DESIGN.md section 6).

pub mod auth;
pub mod daily;
pub mod handler;
pub mod validate;

/// The secrets this function reads at cold start (`shared::secrets`): the platforms' API keys
/// and the key Whereby records into S3 with. A test checks template.yaml against this list.
pub const SECRETS: &[shared::secrets::Secret] = &[
    shared::secrets::Secret::DailyApiKey,
    shared::secrets::Secret::WherebyApiKey,
    shared::secrets::Secret::WherebyAccessKeySecret,
];

#[cfg(test)]
mod handler_tests;
