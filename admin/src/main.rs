//! `reflector-admin`: see the `admin` library.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use admin::cli::Cli;
use admin::{load_config, run, Ctx};

#[tokio::main]
async fn main() -> ExitCode {
    // Usage errors exit with 2, help and version with 0 (clap's own codes).
    let cli = Cli::parse();
    let config = match load_config() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let ctx = Ctx::new(config, &cli).await;
    match run(&ctx, &cli.command).await {
        Ok(output) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = writeln!(out, "{}", output.render(cli.json));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &admin::AdminError) -> ExitCode {
    eprintln!("reflector-admin: {e}");
    ExitCode::from(e.exit_code())
}
