//! The gate benchmark: entry and exit taps at Beijing gates, in-process, each including the
//! durable journal appends (pending before DEBIT, completed after, each fsynced).

use crate::sample::{sample_card, sample_master_keys};
use onecard_card::{Family, SeededRandom, VirtualCard, VolatileStore};
use onecard_crypto::Algorithm;
use onecard_gate::setup::{gate_config, terminal_number};
use onecard_gate::{Decision, Gate, GateConfig, GateMode};
use onecard_journal::Journal;
use onecard_proto::{Fen, InProcess};
use onecard_sam::{Hsm, MemorySerials, Psam, SoftwareKeyStore};
use onecard_terminal::CardSession;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Figures of one `bench gate` run.
#[derive(Debug, Clone)]
pub struct GateFigures {
    /// Taps per second over the whole run (entries and exits).
    pub taps_per_s: f64,
    /// Entry latency percentiles, µs.
    pub entry_p50_us: f64,
    /// Entry p99, µs.
    pub entry_p99_us: f64,
    /// Exit p50, µs.
    pub exit_p50_us: f64,
    /// Exit p99, µs.
    pub exit_p99_us: f64,
    /// APDUs per tap (exit).
    pub apdus_per_tap: u32,
    /// Rides measured.
    pub rides: u32,
}

/// Why the gate benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum GateBenchError {
    /// Set-up failed.
    #[error("set-up: {0}")]
    Setup(String),
    /// A tap was refused.
    #[error("tap refused: {0}")]
    Refused(String),
}

fn setup(e: impl std::fmt::Display) -> GateBenchError {
    GateBenchError::Setup(e.to_string())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs `rides` entry+exit rides (西直门 → 国贸) with journals under `dir`.
pub fn measure(rides: u32, dir: &Path) -> Result<GateFigures, GateBenchError> {
    let keys =
        Arc::new(SoftwareKeyStore::new().with_any_issuer(sample_master_keys(Algorithm::Tdes)));
    let base = gate_config("beijing", "西直门", GateMode::Auto).map_err(setup)?;
    let at = |name: &str| -> Result<GateConfig, GateBenchError> {
        let id = base.city.station_by_name(name).map_err(setup)?;
        let net = base.city.network().ok_or_else(|| setup("no network"))?;
        let st = &net.stations[usize::from(id)];
        Ok(GateConfig {
            station: id,
            station_name: st.name.clone(),
            line: st.lines.first().copied().unwrap_or(0),
            ..base.clone()
        })
    };
    let mk = |cfg: GateConfig,
              sub: &str,
              n: u8|
     -> Result<Gate<Arc<SoftwareKeyStore>, MemorySerials>, GateBenchError> {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).map_err(setup)?;
        let psam = Psam::new(
            terminal_number(cfg.city_code, cfg.station, n),
            keys.clone(),
            MemorySerials(1),
        );
        let journal = Journal::open(&d).map_err(setup)?;
        Gate::new(cfg, psam, journal, None).map_err(setup)
    };
    let mut entry = mk(at("西直门")?, "entry", 1)?;
    let mut exit = mk(at("国贸")?, "exit", 2)?;
    let serial = [0x03, 0x10, 0, 0, 0, 0, 0, 0, 0x99, 0x99];
    let (k, st) = sample_card(
        Family::TUnion,
        Algorithm::Tdes,
        serial,
        Fen::new(onecard_proto::money::MAX_CARD_FEN),
    )
    .map_err(setup)?;
    let card = VirtualCard::new(k, st, VolatileStore, Box::new(SeededRandom::new(1)));
    let mut s = CardSession::open(InProcess(card)).map_err(setup)?;
    let when =
        onecard_proto::DateTime::from_unix(1_795_560_000, 28_800).ok_or_else(|| setup("date"))?;
    s.load(
        &Hsm::new(keys.clone()),
        Fen::new(500 * u64::from(rides) + 1000),
        [0, 0, 1, 0, 0, 0x50],
        when,
    )
    .map_err(setup)?;
    let mut link = s.into_link();
    let (mut ent, mut ext) = (
        Vec::with_capacity(rides as usize),
        Vec::with_capacity(rides as usize),
    );
    let mut apdus = 0;
    let mut t = 1_795_560_000i64;
    let start = Instant::now();
    for _ in 0..rides {
        t += 600;
        let t0 = Instant::now();
        let r = entry.tap(&mut link, t).map_err(setup)?;
        ent.push(t0.elapsed().as_secs_f64() * 1e6);
        if r.decision != Decision::Entry {
            return Err(GateBenchError::Refused(format!("{:?}", r.refusal)));
        }
        t += 1800;
        let t0 = Instant::now();
        let r = exit.tap(&mut link, t).map_err(setup)?;
        ext.push(t0.elapsed().as_secs_f64() * 1e6);
        if r.decision != Decision::Exit {
            return Err(GateBenchError::Refused(format!("{:?}", r.refusal)));
        }
        apdus = r.apdus;
    }
    let total = start.elapsed().as_secs_f64();
    ent.sort_by(f64::total_cmp);
    ext.sort_by(f64::total_cmp);
    Ok(GateFigures {
        taps_per_s: f64::from(rides * 2) / total,
        entry_p50_us: percentile(&ent, 0.50),
        entry_p99_us: percentile(&ent, 0.99),
        exit_p50_us: percentile(&ext, 0.50),
        exit_p99_us: percentile(&ext, 0.99),
        apdus_per_tap: apdus,
        rides,
    })
}
