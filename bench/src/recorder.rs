//! A loopback HTTP server that keeps a log of the requests it saw: what the AWS proxy and the
//! fake video platform have in common.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The names of the requests seen so far, in arrival order; cheap to clone into handler state.
#[derive(Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<String>>>);

impl CallLog {
    pub fn push(&self, name: String) {
        if let Ok(mut calls) = self.0.lock() {
            calls.push(name);
        }
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// `app` served on a free loopback port until dropped.
pub struct LoopbackServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl LoopbackServer {
    pub async fn start(app: Router) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
