//! Scheduled handler. Until this function's issue lands it fails every invocation, so the
//! schedule's failures show in the function's error metric.

use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

pub async fn handle(_event: LambdaEvent<Value>) -> Result<(), Error> {
    Err("meeting-sweeper: not implemented".into())
}
