//! Video platform layer (DESIGN.md section 3).

pub mod signature;

pub use signature::SignatureError;
