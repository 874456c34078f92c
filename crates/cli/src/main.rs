//! `onecard`: the command-line front of the platform. Each subcommand group lives in its own
//! module; this file only parses and dispatches.

mod fare;
mod trace;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "onecard", version, about = "A city's transit e-purse in a phone: card, terminals, fares")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fares: quote a trip, print a city's fare matrix, check a city file.
    #[command(subcommand)]
    Fare(fare::FareCommand),
    /// APDU traces: verify MAC1, MAC2 and TAC of real-card loads and purchases.
    #[command(subcommand)]
    Trace(trace::TraceCommand),
    /// Benchmarks; each prints one JSON object on its last line.
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Subcommand)]
enum Bench {
    /// Fare engine: quotes per second, Beijing build time, peak RSS.
    Fare,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Fare(c) => fare::run(c),
        Command::Trace(c) => trace::run(c),
        Command::Bench(b) => match b {
            Bench::Fare => fare::bench_fare(),
        },
    }
}
