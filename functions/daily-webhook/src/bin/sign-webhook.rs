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
//! they are.

use std::process::ExitCode;

use shared::webhook::fixtures::{apigw_v2_event, retarget, signed_headers, Scheme};

const USAGE: &str =
    "usage: sign-webhook --scheme daily|daily-seed|whereby (--secret S | --secret-env VAR) \
[--room NAME] [--id EVENT_ID] [--timestamp UNIX_S] [--output curl|headers|apigw] [--url URL] FILE";

#[derive(Debug)]
struct Args {
    scheme: Scheme,
    secret: String,
    room: Option<String>,
    id: Option<String>,
    timestamp: Option<i64>,
    output: String,
    url: Option<String>,
    file: String,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut scheme, mut secret, mut room, mut id, mut timestamp, mut url, mut file) =
        (None, None, None, None, None, None, None);
    let mut output = "curl".to_owned();
    while let Some(arg) = argv.next() {
        let mut value = |name: &str| argv.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--scheme" => scheme = Some(value("--scheme")?.parse::<Scheme>()?),
            "--secret" => secret = Some(value("--secret")?),
            "--secret-env" => {
                let var = value("--secret-env")?;
                secret = Some(std::env::var(&var).map_err(|_| format!("{var} is not set"))?);
            }
            "--room" => room = Some(value("--room")?),
            "--id" => id = Some(value("--id")?),
            "--timestamp" => {
                let v = value("--timestamp")?;
                timestamp = Some(
                    v.parse()
                        .map_err(|_| format!("--timestamp {v:?} is not a number"))?,
                );
            }
            "--output" => {
                output = value("--output")?;
                if !["curl", "headers", "apigw"].contains(&output.as_str()) {
                    return Err(format!(
                        "--output {output:?}: expected curl, headers or apigw"
                    ));
                }
            }
            "--url" => url = Some(value("--url")?),
            "-h" | "--help" => return Err(String::new()),
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            other => file = Some(other.to_owned()),
        }
    }
    Ok(Args {
        scheme: scheme.ok_or("--scheme is required")?,
        secret: secret.ok_or("--secret or --secret-env is required")?,
        room,
        id,
        timestamp,
        output,
        url,
        file: file.ok_or("a fixture FILE is required")?,
    })
}

/// Single-quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn run(args: Args) -> Result<String, String> {
    let raw = std::fs::read(&args.file).map_err(|e| format!("{}: {e}", args.file))?;
    let body = if args.room.is_some() || args.id.is_some() {
        retarget(&raw, args.room.as_deref(), args.id.as_deref())?
    } else {
        raw
    };
    let timestamp = args
        .timestamp
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    let headers = signed_headers(args.scheme, &args.secret, timestamp, &body)
        .map_err(|e| format!("{e} (Daily secrets are base64, as Daily issues them)"))?;
    let path = args.scheme.path();
    Ok(match args.output.as_str() {
        "headers" => headers.iter().map(|(k, v)| format!("{k}: {v}\n")).collect(),
        "apigw" => {
            let event = apigw_v2_event(path, &headers, &body);
            serde_json::to_string_pretty(&event).map_err(|e| e.to_string())? + "\n"
        }
        _ => {
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
    match parse_args(std::env::args().skip(1)).and_then(run) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            if !e.is_empty() {
                eprintln!("sign-webhook: {e}");
            }
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
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
    fn shell_quoting_survives_single_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
