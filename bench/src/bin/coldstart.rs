//! `coldstart --bin-dir target/lambda/x86_64 --emulator http://127.0.0.1:PORT [--runs 20]
//!  [--cases bench/coldstart-cases.json] [--out results.json] [--log coldstart.log] [--only FN]
//!  [--baseline-bin-dir DIR --baseline-label REV]`
//!
//! Runs every case of the case file `--runs` times under the local Runtime API and writes the
//! figures as JSON (for `scripts/bench_report.py`); a short summary goes to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use reflector_bench::cases::CaseFile;
use reflector_bench::coldstart::{run_case, run_case_against, Baseline, Settings};

/// Cold start per function under a local Lambda Runtime API.
#[derive(Parser)]
#[command(name = "coldstart")]
struct Args {
    /// Case file.
    #[arg(long, default_value = "bench/coldstart-cases.json")]
    cases: PathBuf,
    /// Directory of the functions' bootstrap binaries (cargo lambda build output).
    #[arg(long, default_value = "target/lambda/x86_64")]
    bin_dir: PathBuf,
    /// AWS emulator endpoint [default: $AWS_ENDPOINT_URL] (scripts/bench starts one).
    #[arg(long)]
    emulator: Option<String>,
    /// Runs of each case, at least 1.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Where to write the figures as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The functions' log output [default: reflector-coldstart.log in the temp directory].
    #[arg(long)]
    log: Option<PathBuf>,
    /// Only the cases of this function.
    #[arg(long)]
    only: Option<String>,
    /// Bootstrap directory of an earlier build of the same functions: each case runs with it
    /// and with `--bin-dir` alternately, and the figures of both are written.
    #[arg(long)]
    baseline_bin_dir: Option<PathBuf>,
    /// What the baseline build is, for the report (a git revision).
    #[arg(long, default_value = "baseline", requires = "baseline_bin_dir")]
    baseline_label: String,
}

fn fmt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let runs = usize::try_from(args.runs).unwrap_or(usize::MAX);
    let Some(emulator) = args
        .emulator
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|e| !e.is_empty())
    else {
        eprintln!(
            "coldstart: no AWS emulator: pass --emulator or set AWS_ENDPOINT_URL (scripts/bench starts one)"
        );
        return ExitCode::from(2);
    };
    let log = args
        .log
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("reflector-coldstart.log"));
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
    let rooms_table = file
        .env
        .get("ROOMS_TABLE")
        .cloned()
        .unwrap_or_else(|| "reflector-rooms".into());
    if let Err(e) =
        reflector_bench::seed::seed_meetings(&file.seed_meetings, &emulator, &table, &rooms_table)
            .await
    {
        eprintln!("coldstart: seeding meetings in {table}: {e}");
        return ExitCode::FAILURE;
    }
    let root = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let settings = Settings {
        root: &root,
        bin_dir: &args.bin_dir,
        emulator: &emulator,
        runs,
        log: &log,
    };
    let mut results = Vec::new();
    for case in &file.cases {
        if args.only.as_ref().is_some_and(|f| f != &case.function) {
            continue;
        }
        let result = match &args.baseline_bin_dir {
            Some(bin_dir) => {
                let baseline = Baseline {
                    bin_dir,
                    label: &args.baseline_label,
                };
                run_case_against(&settings, &baseline, &file, case).await
            }
            None => run_case(&settings, &file, case).await,
        };
        match result {
            Ok(r) => {
                eprintln!(
                    "{:<20} {:<7} init {:>6} ms  first response median {:>6} ms p90 {:>6} ms (waiting on AWS {:>6} ms)  {:?}  aws {:?}  platform {:?}",
                    r.function,
                    r.case,
                    fmt(r.init_median_ms),
                    fmt(r.first_response_median_ms),
                    fmt(r.first_response_p90_ms),
                    fmt(r.aws_wait_median_ms),
                    r.outcomes,
                    r.aws_calls_first_run,
                    r.platform_calls_first_run,
                );
                if let Some(b) = &r.baseline {
                    eprintln!(
                        "{:<20} {:<7} baseline {}: init {:>6} ms  first response median {:>6} ms p90 {:>6} ms (waiting on AWS {:>6} ms)  {:?}",
                        r.function,
                        r.case,
                        args.baseline_label,
                        fmt(b.init_median_ms),
                        fmt(b.first_response_median_ms),
                        fmt(b.first_response_p90_ms),
                        fmt(b.aws_wait_median_ms),
                        b.outcomes,
                    );
                }
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
