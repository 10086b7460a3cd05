//! `reflector-local`: see the `local` library.

use std::process::ExitCode;

use clap::Parser;

use local::config::LocalConfig;
use shared::aws::{load_sdk_config, AwsClients};
use shared::config::Config;

/// Runs every function of the backend in one process: the HTTP API on LOCAL_LISTEN_ADDR
/// (default 127.0.0.1:3000), the recordings queue poller and the sweeper every
/// LOCAL_SWEEP_SECONDS (default 60), against the AWS emulator at AWS_ENDPOINT_URL. Configured
/// by environment variables only (see the README's configuration table).
#[derive(Parser)]
#[command(name = "reflector-local")]
struct Args {}

#[tokio::main]
async fn main() -> ExitCode {
    Args::parse();
    shared::telemetry::init();
    let (config, local_config) =
        match Config::from_env().and_then(|c| Ok((c, LocalConfig::from_env()?))) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("reflector-local: configuration error: {e}");
                return ExitCode::from(2);
            }
        };
    if config.aws_endpoint_url.is_none() {
        eprintln!(
            "reflector-local: AWS_ENDPOINT_URL is not set; start it with scripts/dev, which runs \
             the local emulator, or point AWS_ENDPOINT_URL at one"
        );
        return ExitCode::from(2);
    }
    let aws = AwsClients::new(&load_sdk_config().await);
    let running = match local::start(
        config,
        aws,
        local::Options {
            listen_addr: local_config.listen_addr,
            sweep_interval: local_config.sweep_interval,
            ..local::Options::default()
        },
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("reflector-local: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("reflector-local on http://{}", running.addr);
    shutdown_signal().await;
    running.stop().await;
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
