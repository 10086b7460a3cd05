//! `coldstart --bin-dir target/lambda/x86_64 --emulator http://127.0.0.1:PORT [--runs 20]
//!  [--cases bench/coldstart-cases.json] [--out results.json] [--log coldstart.log] [--only FN]`
//!
//! Runs every case of the case file `--runs` times under the local Runtime API and writes the
//! figures as JSON (for `scripts/bench_report.py`); a short summary goes to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use reflector_bench::cases::CaseFile;
use reflector_bench::coldstart::{run_case, Settings};

struct Args {
    cases: PathBuf,
    bin_dir: PathBuf,
    emulator: String,
    runs: usize,
    out: Option<PathBuf>,
    log: PathBuf,
    only: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        cases: PathBuf::from("bench/coldstart-cases.json"),
        bin_dir: PathBuf::from("target/lambda/x86_64"),
        emulator: std::env::var("AWS_ENDPOINT_URL").unwrap_or_default(),
        runs: 20,
        out: None,
        log: std::env::temp_dir().join("reflector-coldstart.log"),
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--cases" => args.cases = value()?.into(),
            "--bin-dir" => args.bin_dir = value()?.into(),
            "--emulator" => args.emulator = value()?,
            "--runs" => {
                args.runs = value()?
                    .parse()
                    .map_err(|_| "--runs needs a whole number".to_owned())?
            }
            "--out" => args.out = Some(value()?.into()),
            "--log" => args.log = value()?.into(),
            "--only" => args.only = Some(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.emulator.is_empty() {
        return Err(
            "no AWS emulator: pass --emulator or set AWS_ENDPOINT_URL (scripts/bench starts one)"
                .into(),
        );
    }
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(args)
}

fn fmt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("coldstart: {e}");
            return ExitCode::from(2);
        }
    };
    let file = match CaseFile::load(&args.cases) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("coldstart: {e}");
            return ExitCode::FAILURE;
        }
    };
    let table = file
        .env
        .get("MEETINGS_TABLE")
        .cloned()
        .unwrap_or_else(|| "reflector-meetings".into());
    if let Err(e) =
        reflector_bench::seed::seed_meetings(&file.seed_meetings, &args.emulator, &table).await
    {
        eprintln!("coldstart: seeding meetings in {table}: {e}");
        return ExitCode::FAILURE;
    }
    let root = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let settings = Settings {
        root: &root,
        bin_dir: &args.bin_dir,
        emulator: &args.emulator,
        runs: args.runs,
        log: &args.log,
    };
    let mut results = Vec::new();
    for case in &file.cases {
        if args.only.as_ref().is_some_and(|f| f != &case.function) {
            continue;
        }
        match run_case(&settings, &file, case).await {
            Ok(r) => {
                eprintln!(
                    "{:<20} {:<7} init {:>6} ms  first response median {:>6} ms p90 {:>6} ms  {:?}  aws {:?}  platform {:?}",
                    r.function,
                    r.case,
                    fmt(r.init_median_ms),
                    fmt(r.first_response_median_ms),
                    fmt(r.first_response_p90_ms),
                    r.outcomes,
                    r.aws_calls_first_run,
                    r.platform_calls_first_run,
                );
                results.push(r);
            }
            Err(e) => {
                eprintln!("coldstart: {}/{}: {e}", case.function, case.case);
                return ExitCode::FAILURE;
            }
        }
    }
    let json = match serde_json::to_string_pretty(&results) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("coldstart: {e}");
            return ExitCode::FAILURE;
        }
    };
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, json) {
                eprintln!("coldstart: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        None => println!("{json}"),
    }
    ExitCode::SUCCESS
}
