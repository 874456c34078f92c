//! `onecard`: the command-line front of the platform. Each subcommand group lives in its own
//! module; this file only parses and dispatches.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "onecard", version, about = "A city's transit e-purse in a phone: card, terminals, fares")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmarks; each prints one JSON object on its last line.
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Subcommand)]
enum Bench {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(b) => match b {},
    }
}
