pub mod deactivate;
pub mod handler;
pub mod requeue;
