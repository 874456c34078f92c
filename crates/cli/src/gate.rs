//! `onecard gate …`: one tap on a card file, or a gate serving a PC/SC reader.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use onecard_card::{FileStore, OsRandom, VirtualCard};
use onecard_crypto::Algorithm;
use onecard_gate::setup::{gate_config, gate_config_for, terminal_number};
use onecard_gate::sync::GateUpdates;
use onecard_gate::{Gate, GateMode, TapResult};
use onecard_journal::Journal;
use onecard_proto::InProcess;
use onecard_sam::keyfile::Keys;
use onecard_sam::{FileSerials, Psam, SoftwareKeyStore};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Gate subcommands.
#[derive(Subcommand)]
pub enum GateCommand {
    /// One tap (entry or exit, decided from the card's state) on a card file, in-process.
    Tap(TapArgs),
    /// A gate serving a PC/SC reader (a real one, or vpcd) until stopped: each card that
    /// arrives is tapped and its result printed as one JSON line.
    Run(RunArgs),
    /// Upload the journal to the host and fetch blacklist and fare-file updates.
    Sync(SyncArgs),
}

/// `gate sync` arguments.
#[derive(Args)]
pub struct SyncArgs {
    /// Host base URL, e.g. http://127.0.0.1:8080 (TLS through a local proxy).
    #[arg(long)]
    host: String,
    #[command(flatten)]
    gate: GateArgs,
}

/// Where the gate stands.
#[derive(Args)]
pub struct GateArgs {
    /// City id of a built-in fare file (beijing, shanghai, …).
    #[arg(long)]
    city: String,
    /// Station name as in the network data (e.g. 西直门).
    #[arg(long)]
    station: String,
    /// Journal directory (also holds the PSAM serial reservation and pending debits).
    #[arg(long, default_value = "onecard-journal")]
    journal: PathBuf,
    /// Issuer master keys the PSAM works with (default: the published sample keys, both
    /// algorithms).
    #[arg(long)]
    master_keys: Option<PathBuf>,
    /// Gate number at the station (last byte of the terminal number).
    #[arg(long, default_value_t = 1)]
    gate: u8,
}

/// `gate tap` arguments.
#[derive(Args)]
pub struct TapArgs {
    /// The card file.
    #[arg(long)]
    card: PathBuf,
    /// Tap time, RFC 3339 (e.g. 2026-11-25T08:00:00+08:00); default now.
    #[arg(long)]
    at: Option<String>,
    #[command(flatten)]
    gate: GateArgs,
}

/// `gate run` arguments.
#[derive(Args)]
pub struct RunArgs {
    /// Reader name or a substring of it (default: the first reader with a card).
    #[arg(long)]
    reader: Option<String>,
    /// Stop after this many taps (default: run until stopped).
    #[arg(long)]
    taps: Option<u64>,
    /// Host base URL: between riders, upload the journal and fetch updates.
    #[arg(long)]
    host: Option<String>,
    /// Seconds between syncs with the host.
    #[arg(long, default_value_t = 60)]
    sync_every_s: u64,
    #[command(flatten)]
    gate: GateArgs,
}

/// Runs a gate subcommand.
pub fn run(cmd: GateCommand) -> Result<()> {
    match cmd {
        GateCommand::Tap(a) => tap(a),
        GateCommand::Run(a) => run_reader(a),
        GateCommand::Sync(a) => sync(a),
    }
}

/// The key store of a gate or top-up: the given master keys, or the published sample keys.
pub fn key_store(master: Option<&Path>) -> Result<SoftwareKeyStore> {
    Ok(match master {
        Some(p) => {
            let keys = Keys::read(p)?;
            let alg = keys.algorithm.unwrap_or(Algorithm::Tdes);
            SoftwareKeyStore::new().with_any_issuer(keys.into_key_set(alg)?)
        }
        None => SoftwareKeyStore::new()
            .with_any_issuer(onecard_sim::sample::sample_master_keys(Algorithm::Tdes))
            .with_any_issuer(onecard_sim::sample::sample_master_keys(Algorithm::Sm4)),
    })
}

type CliGate = Gate<Arc<SoftwareKeyStore>, FileSerials>;

fn open_gate(a: &GateArgs) -> Result<CliGate> {
    std::fs::create_dir_all(&a.journal)
        .with_context(|| format!("creating {}", a.journal.display()))?;
    // A fare file downloaded from the host wins over the built-in one.
    let cfg = match GateUpdates::new(&a.journal, &a.city, None).fares() {
        Some((_, toml)) => {
            let city = onecard_fares::builtin::city_from_toml(&toml)?;
            gate_config_for(&a.city, city, &a.station, GateMode::Auto)?
        }
        None => gate_config(&a.city, &a.station, GateMode::Auto)?,
    };
    let journal = Journal::open(&a.journal)
        .with_context(|| format!("opening journal {}", a.journal.display()))?;
    let keys = Arc::new(key_store(a.master_keys.as_deref())?);
    let serials = FileSerials::open(&a.journal.join("psam-serials"))?;
    let psam = Psam::new(
        terminal_number(cfg.city_code, cfg.station, a.gate),
        keys,
        serials,
    );
    // Always a list, possibly empty, so updates from the host reach the running gate.
    let blacklist = onecard_gate::setup::load_blacklist(&a.journal.join("blacklist.bin"))?
        .unwrap_or_else(|| {
            Arc::new(onecard_blacklist::Blacklist::new(
                onecard_blacklist::List::empty(0),
            ))
        });
    Ok(Gate::new(cfg, psam, journal, Some(blacklist))?)
}

/// The JSON a tap prints.
pub fn result_json(r: &TapResult) -> Value {
    json!({
        "decision": r.decision,
        "reason": r.refusal,
        "fare_fen": r.fare_fen,
        "balance_before_fen": r.balance_before_fen,
        "balance_after_fen": r.balance_after_fen,
        "record": r.record,
        "resolved": r.resolved,
        "fare": r.fare,
        "apdus": r.apdus,
    })
}

fn sync(a: SyncArgs) -> Result<()> {
    let cfg = gate_config(&a.gate.city, &a.gate.station, GateMode::Auto)?;
    let terminal = terminal_number(cfg.city_code, cfg.station, a.gate.gate);
    std::fs::create_dir_all(&a.gate.journal)?;
    let mut journal = Journal::open(&a.gate.journal)
        .with_context(|| format!("opening journal {}", a.gate.journal.display()))?;
    let up = onecard_gate::sync::upload(&mut journal, &a.host, terminal)?;
    let mut sink = GateUpdates::new(&a.gate.journal, &a.gate.city, None);
    let mut down = onecard_journal::Downloader::new(onecard_journal::DownloadConfig::new(
        a.host.as_str(),
        terminal,
    ))?;
    let got = down.check(&mut sink);
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "upload": format!("{up:?}"),
            "download": match &got { Ok(r) => format!("{r:?}"), Err(e) => format!("error: {e}") },
        }))?
    );
    got?;
    Ok(())
}

fn now_utc() -> Result<i64> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("clock before 1970")?
        .as_secs() as i64)
}

fn tap(a: TapArgs) -> Result<()> {
    let at = match &a.at {
        Some(s) => onecard_fares::time::parse_rfc3339(s).with_context(|| format!("--at {s:?}"))?,
        None => now_utc()?,
    };
    let mut gate = open_gate(&a.gate)?;
    let (store, keys, state) =
        FileStore::open(&a.card).with_context(|| format!("opening {}", a.card.display()))?;
    let card = VirtualCard::new(keys, state, store, Box::new(OsRandom));
    let result = gate.tap(InProcess(card), at)?;
    println!("{}", serde_json::to_string_pretty(&result_json(&result))?);
    Ok(())
}

#[cfg(feature = "pcsc")]
fn run_reader(a: RunArgs) -> Result<()> {
    use onecard_pcsc::{wait_for_card, ConnectOptions, PcscTransport};
    use std::time::Duration;
    let mut gate = open_gate(&a.gate)?;
    eprintln!(
        "gate at {} ({}) waiting for cards",
        gate.config().station_name,
        gate.config().city_id
    );
    let mut taps = 0u64;
    let mut last_sync: Option<std::time::Instant> = None;
    while a.taps.is_none_or(|n| taps < n) {
        if let Some(host) = &a.host {
            if last_sync.is_none_or(|t| t.elapsed() >= Duration::from_secs(a.sync_every_s)) {
                last_sync = Some(std::time::Instant::now());
                sync_between_riders(&mut gate, host, &a.gate);
            }
        }
        // With a host, wake up for the next sync even when no card comes.
        let wait = match a.host {
            Some(_) => Duration::from_secs(a.sync_every_s.max(1)),
            None => Duration::from_secs(3600),
        };
        let options = ConnectOptions {
            reader: a.reader.clone(),
            wait,
            exclusive: true,
            chain_on_t1: false,
        };
        let link = match PcscTransport::connect_with(&options) {
            Ok(l) => l,
            Err(onecard_pcsc::PcscError::NoCard { .. }) => continue,
            Err(e) => {
                eprintln!("gate: {e}");
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        let reader = link.reader().to_string();
        let result = gate.tap(link, now_utc()?)?;
        println!("{}", serde_json::to_string(&result_json(&result))?);
        taps += 1;
        // Wait for the card to leave, so one presentation is one tap.
        for _ in 0..600 {
            if wait_for_card(Some(&reader), Duration::ZERO).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// One short sync attempt between riders; failures are reported and retried next time.
#[cfg(feature = "pcsc")]
fn sync_between_riders(gate: &mut CliGate, host: &str, a: &GateArgs) {
    let mut cfg = onecard_journal::UploadConfig::new(host, gate.terminal());
    cfg.retry.max_attempts = 1;
    cfg.http.connect_timeout = std::time::Duration::from_secs(2);
    match onecard_gate::sync::upload_with(gate.journal_mut(), cfg) {
        Ok(r) => eprintln!(
            "gate: uploaded {} records ({} remaining)",
            r.records, r.remaining
        ),
        Err(e) => eprintln!("gate: upload failed, will retry: {e}"),
    }
    let mut sink = GateUpdates::new(&a.journal, &a.city, gate.blacklist());
    let mut dcfg = onecard_journal::DownloadConfig::new(host, gate.terminal());
    dcfg.retry.max_attempts = 1;
    match onecard_journal::Downloader::new(dcfg).and_then(|mut d| d.check(&mut sink)) {
        Ok(r) => eprintln!(
            "gate: updates: blacklist {:?}, fares {:?}",
            r.blacklist, r.fares
        ),
        Err(e) => eprintln!("gate: update check failed, will retry: {e}"),
    }
}

#[cfg(not(feature = "pcsc"))]
fn run_reader(_a: RunArgs) -> Result<()> {
    anyhow::bail!("this onecard was built without PC/SC; rebuild with `--features pcsc` (needs libpcsclite-dev)")
}
