pub mod daily;
pub mod deactivate;
pub mod handler;
pub mod requeue;
