//! `onecard trace …`: tools for APDU traces of real cards.
//!
//! `onecard trace verify --keys KEYS.json TRACE` prints one JSON object per load or purchase
//! (one line each, see `onecard_trace::TxReport`) and exits 0 if no MAC1, MAC2 or TAC is bad,
//! 1 if one is, 2 if the keys or the trace cannot be read. Errors and a one-line summary go to
//! stderr, so stdout stays pure JSON lines.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use onecard_trace::{exit_code, Keys, Trace, TraceError, EXIT_UNREADABLE};

/// Trace subcommands.
#[derive(Subcommand)]
pub enum TraceCommand {
    /// Recompute and check MAC1, MAC2 and TAC of every load and purchase in a trace.
    ///
    /// Trace: one APDU per line, '>' command or '<' response (with its status word), hex with
    /// optional spaces, '#' comments. Exit status: 0 nothing bad, 1 a bad MAC or TAC,
    /// 2 unreadable keys or trace.
    Verify {
        /// Card keys: {"load": hex16, "purchase": hex16, "tac": hex16, "algorithm"?: "3des"|"sm4"};
        /// any other field is an error.
        #[arg(long, value_name = "KEYS.json")]
        keys: PathBuf,
        /// The APDU trace.
        #[arg(value_name = "TRACE")]
        trace: PathBuf,
    },
}

/// Runs a trace subcommand and exits with its status: these commands report through the exit
/// code, which `anyhow`'s error path (always 1) would blur.
pub fn run(cmd: TraceCommand) -> anyhow::Result<()> {
    let code = match cmd {
        TraceCommand::Verify { keys, trace } => verify(&keys, &trace),
    };
    std::process::exit(code)
}

fn verify(keys_path: &Path, trace_path: &Path) -> i32 {
    let keys = match Keys::read(keys_path) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("onecard trace verify: {e}");
            return EXIT_UNREADABLE;
        }
    };
    let trace = match Trace::read(trace_path) {
        Ok(t) => t,
        Err(e @ TraceError::Io { .. }) => {
            eprintln!("onecard trace verify: {e}");
            return EXIT_UNREADABLE;
        }
        Err(e) => {
            eprintln!("onecard trace verify: {}: {e}", trace_path.display());
            return EXIT_UNREADABLE;
        }
    };
    let reports = onecard_trace::verify(&trace, &keys);
    drop(keys);
    let mut out = BufWriter::new(std::io::stdout().lock());
    let written = reports.iter().try_for_each(|r| {
        serde_json::to_writer(&mut out, r)?;
        writeln!(out)?;
        Ok::<(), anyhow::Error>(())
    });
    if let Err(e) = written.and_then(|()| out.flush().map_err(Into::into)) {
        eprintln!("onecard trace verify: writing the report: {e}");
        return EXIT_UNREADABLE;
    }
    let bad = reports.iter().filter(|r| r.has_bad()).count();
    eprintln!(
        "onecard trace verify: {} transaction(s), {bad} with a bad MAC or TAC",
        reports.len()
    );
    exit_code(&reports)
}
