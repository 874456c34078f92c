//! `onecard`: the command-line front of the platform. Each subcommand group lives in its own
//! module; this file only parses and dispatches.

mod bench;
mod card;
mod demo;
mod fare;
mod gate;
mod trace;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "onecard",
    version,
    about = "A city's transit e-purse in a phone: card, terminals, fares"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Issue a sample card, load it, and ride one Beijing journey through the real protocol,
    /// printing every APDU.
    Demo,
    /// Card files: personalise, show, serve to PC/SC through vpcd.
    #[command(subcommand)]
    Card(card::CardCommand),
    /// Gates: one tap on a card file, or a gate serving a PC/SC reader.
    #[command(subcommand)]
    Gate(gate::GateCommand),
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
    /// Full compound exit taps per second in-process, against their crypto floor.
    Tap {
        /// Block cipher of the card.
        #[arg(long, default_value = "3des", value_parser = ["3des", "sm4"])]
        algorithm: String,
        /// Taps to measure (in 5 rounds; the best round counts).
        #[arg(long, default_value_t = 200_000)]
        taps: u32,
    },
    /// Gate: entry and exit taps with the durable journal, latency percentiles.
    Gate {
        /// Rides (an entry and an exit each) to measure.
        #[arg(long, default_value_t = 2000)]
        rides: u32,
    },
    /// Gate blacklist: memory, load time and lookup latency at 10 million cards.
    Blacklist {
        /// Cards on the list.
        #[arg(long, default_value_t = 10_000_000)]
        entries: usize,
        /// Lookups to time.
        #[arg(long, default_value_t = 1_000_000)]
        lookups: usize,
        /// Serials issued in sequence, as real cities do (default: uniformly random, the worst
        /// case for memory).
        #[arg(long)]
        clustered: bool,
    },
    /// Fare engine: quotes per second, Beijing build time, peak RSS.
    Fare,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => demo::run(),
        Command::Card(c) => card::run(c),
        Command::Fare(c) => fare::run(c),
        Command::Gate(c) => gate::run(c),
        Command::Trace(c) => trace::run(c),
        Command::Bench(b) => match b {
            Bench::Tap { algorithm, taps } => bench::tap(&algorithm, taps),
            Bench::Fare => fare::bench_fare(),
            Bench::Gate { rides } => bench::gate(rides),
            Bench::Blacklist {
                entries,
                lookups,
                clustered,
            } => bench::blacklist(entries, lookups, clustered),
        },
    }
}
