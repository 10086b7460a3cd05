//! The rooms API function: rooms CRUD, meeting get-or-create and consent (DESIGN.md section 6).

pub mod auth;
pub mod handler;
pub mod validate;

#[cfg(test)]
mod handler_tests;
