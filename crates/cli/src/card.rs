//! `onecard card …`: personalise a card file, show it, serve it to PC/SC through vpcd.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use onecard_card::{
    personalize, state, CardKeys, Family, FileStore, OsRandom, Personalization, VirtualCard,
    DEFAULT_MAX_BALANCE,
};
use onecard_crypto::Algorithm;
use onecard_proto::files::{LogRecord, MetroRecord, TripRecord};
use onecard_proto::hex;
use onecard_proto::{Date, Fen};
use onecard_sam::keyfile::Keys;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// Card subcommands.
#[derive(Subcommand)]
pub enum CardCommand {
    /// Issue a new card file with an empty purse.
    Personalize(Box<PersonalizeArgs>),
    /// Top up a card file through the host security module (a load: INITIALIZE FOR LOAD, MAC1
    /// checked, MAC2, CREDIT FOR LOAD, TAC checked), as a top-up machine would.
    Load {
        /// The card file.
        #[arg(long)]
        card: PathBuf,
        /// Amount in fen.
        #[arg(long)]
        amount_fen: u64,
        /// Issuer master keys the host holds (default: the published sample keys).
        #[arg(long)]
        master_keys: Option<PathBuf>,
    },
    /// Print a card file as JSON.
    Show {
        /// The card file.
        card: PathBuf,
    },
    /// Serve a card file to the vsmartcard-vpcd reader driver until stopped; every committed
    /// transaction is saved to the file atomically as it happens, so stopping (Ctrl-C) at any
    /// moment is safe.
    Vpcd {
        /// The card file.
        #[arg(long)]
        card: PathBuf,
        /// vpcd's port on 127.0.0.1.
        #[arg(long, default_value_t = onecard_vpcd::DEFAULT_PORT)]
        port: u16,
    },
}

/// `card personalize` arguments.
#[derive(Args)]
pub struct PersonalizeArgs {
    /// Card family.
    #[arg(long, value_parser = ["t-union", "mohurd"])]
    family: String,
    /// Issuer identifier, 16 hex digits (0x15 bytes 0..8).
    #[arg(long)]
    issuer: String,
    /// Application serial, 20 decimal digits (0x15 bytes 10..20).
    #[arg(long)]
    serial: String,
    /// Card-level keys: {"load", "purchase", "tac"[, "maintenance"]} in hex.
    #[arg(
        long,
        conflicts_with = "master_keys",
        required_unless_present = "master_keys"
    )]
    keys: Option<PathBuf>,
    /// Issuer master keys in the same form; card keys are derived (issuer level, then card).
    #[arg(long)]
    master_keys: Option<PathBuf>,
    /// Block cipher of the card's keys.
    #[arg(long, default_value = "3des", value_parser = ["3des", "sm4"])]
    algorithm: String,
    /// Rider category the gates apply (0x15 byte 28).
    #[arg(long, default_value = "adult", value_parser = ["adult", "student", "senior", "free"])]
    category: String,
    /// Maximum balance in fen (default 100000 = 1,000.00 yuan).
    #[arg(long)]
    max_balance_fen: Option<u64>,
    /// First valid day, YYYYMMDD (default: today, UTC).
    #[arg(long)]
    start: Option<String>,
    /// Last valid day, YYYYMMDD (default: ten years after the start).
    #[arg(long)]
    expiry: Option<String>,
    /// Where to write the card file (never overwritten).
    #[arg(long)]
    out: PathBuf,
}

/// Runs a card subcommand.
pub fn run(cmd: CardCommand) -> Result<()> {
    match cmd {
        CardCommand::Personalize(a) => personalize_cmd(*a),
        CardCommand::Load {
            card,
            amount_fen,
            master_keys,
        } => load_cmd(&card, amount_fen, master_keys.as_deref()),
        CardCommand::Show { card } => {
            println!("{}", serde_json::to_string_pretty(&show(&card)?)?);
            Ok(())
        }
        CardCommand::Vpcd { card, port } => vpcd(&card, port),
    }
}

fn parse_date(s: &str) -> Result<Date> {
    let n: u32 = s
        .parse()
        .with_context(|| format!("{s:?} is not a YYYYMMDD date"))?;
    Date::new((n / 10000) as u16, (n / 100 % 100) as u8, (n % 100) as u8)
        .map_err(|e| anyhow::anyhow!("{s}: {e}"))
}

fn today_utc() -> Result<Date> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("clock before 1970")?;
    Date::from_days_since_epoch((now.as_secs() / 86400) as i64).context("date out of range")
}

fn personalize_cmd(a: PersonalizeArgs) -> Result<()> {
    let family = Family::from_name(&a.family).context("family must be t-union or mohurd")?;
    let algorithm = Algorithm::from_name(&a.algorithm).context("algorithm must be 3des or sm4")?;
    let issuer: [u8; 8] = hex::decode_array(&a.issuer).context("--issuer must be 16 hex digits")?;
    if a.serial.len() != 20 || !a.serial.bytes().all(|b| b.is_ascii_digit()) {
        bail!("--serial must be 20 decimal digits (the application serial is BCD)");
    }
    let serial: [u8; 10] = hex::decode_array(&a.serial)?;
    let start = match &a.start {
        Some(s) => parse_date(s)?,
        None => today_utc()?,
    };
    let expiry = match &a.expiry {
        Some(s) => parse_date(s)?,
        None => Date::new(start.year + 10, start.month, start.day.min(28))
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let max_balance = a
        .max_balance_fen
        .map(Fen::new)
        .unwrap_or(DEFAULT_MAX_BALANCE);
    let state = personalize(&Personalization {
        family,
        issuer,
        serial,
        start,
        expiry,
        max_balance,
        rider_category: match a.category.as_str() {
            "student" => onecard_proto::files::rider::STUDENT,
            "senior" => onecard_proto::files::rider::SENIOR,
            "free" => onecard_proto::files::rider::FREE,
            _ => onecard_proto::files::rider::ADULT,
        },
    })?;
    let mut factor = [0u8; 8];
    factor.copy_from_slice(&serial[2..]);
    let set = match (&a.keys, &a.master_keys) {
        (Some(p), _) => Keys::read(p)?.into_key_set(algorithm)?,
        (None, Some(p)) => Keys::read(p)?
            .into_key_set(algorithm)?
            .derive(issuer, factor),
        (None, None) => bail!("give --keys or --master-keys"),
    };
    let keys = CardKeys::from_set(set, onecard_sam::KEY_VERSION);
    FileStore::create(&a.out, &keys, &state)
        .with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "personalised {} card {} into {}",
        family.name(),
        a.serial,
        a.out.display()
    );
    Ok(())
}

fn load(path: &Path) -> Result<(CardKeys, onecard_card::CardState)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    state::decode(&bytes).with_context(|| format!("{} is not a usable card file", path.display()))
}

fn log_json(r: &LogRecord) -> Value {
    json!({
        "counter": r.counter,
        "type": format!("{:02X}", r.tx_type),
        "amount_fen": r.amount.get(),
        "terminal": hex::encode(&r.terminal),
        "date": format!("{:08}", r.date.yyyymmdd()),
        "time": format!("{:06}", r.time.hhmmss()),
    })
}

/// The card file as JSON (no keys).
pub fn show(path: &Path) -> Result<Value> {
    let (keys, s) = load(path)?;
    let info = s.info()?;
    let log: Vec<Value> = s
        .log
        .iter()
        .map(|b| {
            LogRecord::parse(b)
                .map(|r| log_json(&r))
                .unwrap_or_else(|e| json!({ "raw": hex::encode(b), "error": e.to_string() }))
        })
        .collect();
    let trips: Vec<Value> = s
        .trips
        .iter()
        .map(|b| match TripRecord::parse(b) {
            Ok(t) => json!({
                "type": format!("{:02X}", t.trip_type), "line": t.line, "station": t.station,
                "amount_fen": t.amount.get(), "balance_after_fen": t.balance_after.get(),
                "when": t.when.to_string(), "terminal": hex::encode(&t.terminal),
            }),
            Err(_) => json!({ "raw": hex::encode(b) }),
        })
        .collect();
    let metro = match (s.family, MetroRecord::parse(&s.process[0])) {
        (Family::TUnion, Ok(m)) => json!({
            "status": format!("{:?}", m.status).to_lowercase(),
            "entry_line": m.entry_line,
            "entry_station": m.entry_station.station,
            "entry_time": m.entry_time.map(|t| t.to_string()),
            "exit_station": m.exit_station.station,
            "exit_time": m.exit_time.map(|t| t.to_string()),
            "month": m.monthly.year_month,
            "month_spent_fen": m.monthly.spent.get(),
            "month_rides": m.monthly.rides,
        }),
        (Family::TUnion, Err(e)) => json!({ "error": e.to_string() }),
        (Family::Mohurd, _) => Value::Null,
    };
    Ok(json!({
        "family": s.family.name(),
        "serial": hex::encode(&info.serial),
        "issuer": hex::encode(&info.issuer),
        "algorithm": keys.algorithm.name(),
        "key_version": keys.version,
        "balance_fen": s.balance,
        "max_balance_fen": s.max_balance,
        "category": match info.rider_category() {
            onecard_proto::files::rider::STUDENT => "student",
            onecard_proto::files::rider::SENIOR => "senior",
            onecard_proto::files::rider::FREE => "free",
            _ => "adult",
        },
        "online_counter": s.online_counter,
        "offline_counter": s.offline_counter,
        "blocked": format!("{:?}", s.block).to_lowercase(),
        "start": format!("{:08}", info.start.yyyymmdd()),
        "expiry": format!("{:08}", info.expiry.yyyymmdd()),
        "log": log,
        "trips": trips,
        "metro": metro,
    }))
}

fn load_cmd(path: &Path, amount_fen: u64, master: Option<&Path>) -> Result<()> {
    let keys = std::sync::Arc::new(crate::gate::key_store(master)?);
    let hsm = onecard_sam::Hsm::new(keys);
    let (store, k, state) =
        FileStore::open(path).with_context(|| format!("opening {}", path.display()))?;
    let card = VirtualCard::new(k, state, store, Box::new(OsRandom));
    let mut s = onecard_terminal::CardSession::open(onecard_proto::InProcess(card))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("clock")?
        .as_secs() as i64;
    let when = onecard_proto::DateTime::from_unix(now, 8 * 3600).context("date out of range")?;
    // Top-up terminal number of the CLI.
    let terminal = [0x00, 0x00, 0x01, 0x00, 0x00, 0x50];
    match s.load(&hsm, Fen::new(amount_fen), terminal, when)? {
        onecard_terminal::LoadOutcome::Done(r) => {
            println!(
                "{}",
                json!({
                    "amount_fen": r.amount.get(),
                    "balance_before_fen": r.balance_before.get(),
                    "balance_after_fen": r.balance_after.get(),
                    "online_counter": r.counter,
                    "tac": hex::encode(&r.tac),
                    "tac_verified": r.tac_verified,
                })
            );
            Ok(())
        }
        onecard_terminal::LoadOutcome::Pending(_) => {
            bail!("the load's answer was lost; run `card show` to see whether it happened")
        }
    }
}

struct LogEvents;

impl onecard_vpcd::Hooks for LogEvents {
    fn on_event(&mut self, event: &onecard_vpcd::Event<'_>) {
        eprintln!("vpcd: {event:?}");
    }
}

fn vpcd(path: &Path, port: u16) -> Result<()> {
    let (store, keys, state) =
        FileStore::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut card = VirtualCard::new(keys, state, store, Box::new(OsRandom));
    let config = onecard_vpcd::ServeConfig::new(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    let stop = AtomicBool::new(false);
    eprintln!("serving {} to vpcd at {}", path.display(), config.addr);
    let stats = onecard_vpcd::serve(&mut card, &config, &mut LogEvents, &stop)?;
    eprintln!("vpcd: served {stats:?}");
    Ok(())
}
