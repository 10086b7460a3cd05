//! The rooms API function: rooms CRUD and lookup, meetings (get-or-create, lookup, join,
//! deactivate, manual Daily recording start) and consent (DESIGN.md section 6).

pub mod auth;
pub mod daily;
pub mod handler;
pub mod validate;

#[cfg(test)]
mod handler_tests;
