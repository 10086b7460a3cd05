//! Signs a webhook fixture so demos and `cargo lambda invoke` send requests the handlers accept.
//!
//! ```text
//! cargo run -p daily-webhook --bin sign-webhook -- \
//!     --scheme daily|daily-seed|whereby (--secret S | --secret-env VAR) \
//!     [--room NAME] [--id EVENT_ID] [--timestamp UNIX_S] \
//!     [--output curl|headers|apigw] [--url URL] FILE
//! ```
//!
//! `--output curl` (default) prints a curl command for the local stack; `headers` prints
//! `name: value` lines; `apigw` prints an API Gateway HTTP API v2 event for
//! `cargo lambda invoke --data-file`. `--room` replaces the fixtures' `fixture-room` with a real
//! meeting's room name and `--id` sets a fresh event id (events are deduplicated by id); either
//! re-serialises the JSON compactly before signing. Without them the file's bytes are signed as
//! they are, except for `daily-seed`, whose signed time is the body's `ts`: it is set to the
//! signing time (milliseconds), so the output is accepted for five minutes.

use std::process::ExitCode;

use clap::{ArgGroup, CommandFactory, Parser, ValueEnum};
use shared::webhook::fixtures::{apigw_v2_event, retarget, signed_request, Scheme};

/// Signs a webhook fixture so the handlers accept it.
#[derive(Debug, Parser)]
#[command(name = "sign-webhook", group = ArgGroup::new("key").required(true))]
struct Args {
    /// daily, daily-seed or whereby.
    #[arg(long)]
    scheme: Scheme,
    /// The webhook secret (Daily secrets are base64, as Daily issues them).
    #[arg(long, group = "key")]
    secret: Option<String>,
    /// The variable that holds the webhook secret.
    #[arg(long, value_name = "VAR", group = "key")]
    secret_env: Option<String>,
    /// Replaces the fixtures' `fixture-room` with this room name.
    #[arg(long, value_name = "NAME")]
    room: Option<String>,
    /// Sets the event id (events are deduplicated by id).
    #[arg(long, value_name = "EVENT_ID")]
    id: Option<String>,
    /// The signed time, in Unix seconds (default: now); for daily-seed it becomes the body's `ts`.
    #[arg(long, value_name = "UNIX_S", allow_negative_numbers = true)]
    timestamp: Option<i64>,
    /// What to print.
    #[arg(long, value_enum, default_value_t = Output::Curl)]
    output: Output,
    /// Where the curl command posts (default: the local stack).
    #[arg(long)]
    url: Option<String>,
    /// The fixture to sign.
    #[arg(value_name = "FILE")]
    file: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Curl,
    Headers,
    Apigw,
}

impl Args {
    /// The secret from `--secret`, else from the variable named by `--secret-env`.
    fn secret(&self) -> Result<String, String> {
        match (&self.secret, &self.secret_env) {
            (Some(secret), _) => Ok(secret.clone()),
            (None, Some(var)) => std::env::var(var).map_err(|_| format!("{var} is not set")),
            (None, None) => Err("--secret or --secret-env is required".to_owned()),
        }
    }
}

/// Single-quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn run(args: Args) -> Result<String, String> {
    // Before the file, so an unset --secret-env variable is named first.
    let secret = args.secret()?;
    let raw = std::fs::read(&args.file).map_err(|e| format!("{}: {e}", args.file))?;
    let body = if args.room.is_some() || args.id.is_some() {
        retarget(&raw, args.room.as_deref(), args.id.as_deref())?
    } else {
        raw
    };
    let timestamp = args
        .timestamp
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    // The seed scheme signs its time as the body's `ts`, so the body is stamped too.
    let (headers, body) = signed_request(args.scheme, &secret, timestamp, &body)
        .map_err(|e| format!("{e} (Daily secrets are base64, as Daily issues them)"))?;
    let path = args.scheme.path();
    Ok(match args.output {
        Output::Headers => headers.iter().map(|(k, v)| format!("{k}: {v}\n")).collect(),
        Output::Apigw => {
            let event = apigw_v2_event(path, &headers, &body);
            serde_json::to_string_pretty(&event).map_err(|e| e.to_string())? + "\n"
        }
        Output::Curl => {
            let url = args
                .url
                .unwrap_or_else(|| format!("http://127.0.0.1:3000{path}"));
            let text = String::from_utf8(body)
                .map_err(|_| "the fixture is not UTF-8 text; use --output apigw".to_owned())?;
            let mut cmd = format!("curl -sS -i -X POST {}", shell_quote(&url));
            for (k, v) in &headers {
                cmd.push_str(&format!(" \\\n  -H {}", shell_quote(&format!("{k}: {v}"))));
            }
            cmd.push_str(&format!(" \\\n  --data-binary {}\n", shell_quote(&text)));
            cmd
        }
    })
}

fn main() -> ExitCode {
    // Bad arguments: clap prints what is wrong and the usage, and exits with 2.
    let args = Args::parse();
    match run(args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sign-webhook: {e}");
            eprintln!("{}", Args::command().render_usage());
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        Args::try_parse_from(std::iter::once("sign-webhook").chain(list.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_argument_definitions_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn required_arguments_are_named_when_missing() {
        assert!(args(&["x.json"]).unwrap_err().contains("--scheme"));
        assert!(args(&["--scheme", "whereby", "x.json"])
            .unwrap_err()
            .contains("--secret"));
        assert!(args(&["--scheme", "zoom"])
            .unwrap_err()
            .contains("daily-seed"));
        assert!(args(&["--scheme", "whereby", "--secret", "s"])
            .unwrap_err()
            .contains("FILE"));
    }

    #[test]
    fn every_option_is_read() {
        let a = args(&[
            "--scheme",
            "daily-seed",
            "--secret-env",
            "VAR",
            "--room",
            "r",
            "--id",
            "e",
            "--timestamp",
            "-5",
            "--output",
            "apigw",
            "--url",
            "http://x",
            "f.json",
        ])
        .unwrap();
        assert_eq!(a.scheme, Scheme::DailySeed);
        assert_eq!(
            (a.secret_env.as_deref(), a.room.as_deref(), a.id.as_deref()),
            (Some("VAR"), Some("r"), Some("e"))
        );
        assert_eq!((a.timestamp, a.output), (Some(-5), Output::Apigw));
        assert_eq!(
            (a.url.as_deref(), a.file.as_str()),
            (Some("http://x"), "f.json")
        );
        assert_eq!(
            args(&["--scheme", "daily", "--secret", "s", "f"])
                .unwrap()
                .output,
            Output::Curl
        );
        assert!(args(&["--scheme", "daily", "--secret", "s", "--output", "xml", "f"]).is_err());
    }

    #[test]
    fn shell_quoting_survives_single_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
