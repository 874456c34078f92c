//! The served virtual card read by PC/SC clients onecard did not write: a pyscard script
//! (`pyscard_read.py`) and pcsc-tools' `scriptor`. What they print must match what the card
//! holds after a load and two purchases made by onecard's terminal code.
#![allow(clippy::unwrap_used)]

mod common;

use common::{pcsc_or_skip, wait_until_removed, Served, SLOT0_READER};
use onecard_card::{
    personalize, CardKeys, Family, Personalization, SeededRandom, VirtualCard, VolatileStore,
};
use onecard_crypto::{Algorithm, Key16, KeySet};
use onecard_proto::files::tx_type;
use onecard_proto::{Date, DateTime, Fen, InProcess, Time};
use onecard_sam::{Hsm, MemorySerials, Psam, SoftwareKeyStore};
use onecard_terminal::{CardSession, LoadOutcome, PurchaseOutcome};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ISSUER: [u8; 8] = [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF];
const SERIAL: [u8; 10] = [0x03, 0x10, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x42, 0x17];
const GATE: [u8; 6] = [0x30, 0x00, 0x00, 0x00, 0x09, 0x99];
const LOADER: [u8; 6] = [0x00, 0x00, 0x01, 0x00, 0x00, 0x31];

fn master() -> KeySet {
    let key = |tag: u8| Key16::from_bytes([tag.wrapping_mul(0x47) ^ 0x3C; 16]);
    KeySet {
        algorithm: Algorithm::Tdes,
        load: key(1),
        purchase: key(2),
        tac: key(3),
        maintenance: Some(key(4)),
    }
}

fn at(h: u8, m: u8) -> DateTime {
    DateTime {
        date: Date::new(2026, 11, 26).unwrap(),
        time: Time::new(h, m, 0).unwrap(),
    }
}

/// A T-Union card after a 20-yuan load, a 3.50 purchase and a 1.20 purchase, all made
/// in-process by the terminal code.
fn used_card() -> VirtualCard<VolatileStore> {
    let state = personalize(&Personalization {
        family: Family::TUnion,
        issuer: ISSUER,
        serial: SERIAL,
        start: Date::new(2025, 1, 1).unwrap(),
        expiry: Date::new(2035, 12, 31).unwrap(),
        max_balance: Fen::yuan(1000),
        rider_category: onecard_proto::files::rider::ADULT,
    })
    .unwrap();
    let factor: [u8; 8] = SERIAL[2..].try_into().unwrap();
    let keys = CardKeys::from_set(master().derive(ISSUER, factor), 1);
    let card = VirtualCard::new(keys, state, VolatileStore, Box::new(SeededRandom::new(5)));
    let ks = Arc::new(SoftwareKeyStore::new().with_issuer(ISSUER, master()));
    let hsm = Hsm::new(Arc::clone(&ks));
    let mut psam = Psam::new(GATE, ks, MemorySerials(100));
    let mut s = CardSession::open(InProcess(card)).unwrap();
    assert!(matches!(
        s.load(&hsm, Fen::yuan(20), LOADER, at(7, 5)).unwrap(),
        LoadOutcome::Done(_)
    ));
    for (amount, when) in [(350, at(8, 10)), (120, at(18, 45))] {
        assert!(matches!(
            s.purchase(&mut psam, Fen::new(amount), when, None).unwrap(),
            PurchaseOutcome::Done(_)
        ));
    }
    s.into_link().0
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Runs `cmd` with a deadline, returning its stdout; panics with its stderr on failure.
fn run(mut cmd: Command, stdin: Option<&str>, what: &str) -> String {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        pipe.write_all(input.as_bytes()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn required() -> bool {
    std::env::var("ONECARD_PCSC_TESTS").is_ok_and(|v| v == "1")
}

/// Debian's interpreter, which python3-pyscard installs into (a python3 earlier on PATH,
/// e.g. pyenv's, does not see it); `ONECARD_PYTHON` overrides.
fn pyscard_python() -> Option<PathBuf> {
    let candidates = std::env::var_os("ONECARD_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/bin/python3"), PathBuf::from("python3")]);
    candidates.into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import smartcard"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[test]
fn pyscard_reads_what_the_terminal_wrote() {
    let Some(_slot) = pcsc_or_skip("pyscard_reads_what_the_terminal_wrote") else {
        return;
    };
    let Some(python) = pyscard_python() else {
        assert!(
            !required(),
            "ONECARD_PCSC_TESTS=1 but no python3 with pyscard (apt-get install python3-pyscard)"
        );
        common::note("pyscard_reads_what_the_terminal_wrote: skipped: pyscard not installed");
        return;
    };
    let served = Served::start(used_card());
    // Give pcscd time to see the card before the script looks for it.
    onecard_pcsc::wait_for_card(Some(SLOT0_READER), Duration::from_secs(15)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyscard_read.py");
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(SLOT0_READER);
    let out = run(cmd, None, "pyscard_read.py");
    let (card, _) = served.stop();
    wait_until_removed();

    let lines: Vec<&str> = out.lines().collect();
    let value = |key: &str| -> String {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {key:?} line in:\n{out}"))
            .to_string()
    };
    assert_eq!(value("reader"), SLOT0_READER);
    assert_eq!(value("atr"), hex(&VirtualCard::<VolatileStore>::atr()));
    assert_eq!(value("ppse_sw"), "9000");
    assert_eq!(value("ppse_aid"), "A000000632010105");
    assert_eq!(value("adf_sw"), "9000");
    assert_eq!(value("sfi15_sw"), "9000");
    assert_eq!(value("issuer"), hex(&ISSUER));
    assert_eq!(value("serial"), hex(&SERIAL));
    assert_eq!(value("validity"), "20250101 20351231");
    assert_eq!(value("balance_sw"), "9000");
    assert_eq!(value("balance"), "1530");
    assert_eq!(card.state().balance, 1530);
    let log: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("log "))
        .collect();
    let gate = hex(&GATE);
    let loader = hex(&LOADER);
    let purchase = format!("{:02X}", tx_type::EP_PURCHASE);
    let load = format!("{:02X}", tx_type::EP_LOAD);
    assert_eq!(
        log,
        [
            format!("1 2 120 {purchase} {gate} 20261126184500"),
            format!("2 1 350 {purchase} {gate} 20261126081000"),
            format!("3 1 2000 {load} {loader} 20261126070500"),
        ],
        "{out}"
    );
    assert_eq!(lines.last().copied(), Some("done"));
}

#[test]
fn scriptor_reads_the_balance() {
    let Some(_slot) = pcsc_or_skip("scriptor_reads_the_balance") else {
        return;
    };
    if Command::new("scriptor")
        .arg("-h")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        assert!(
            !required(),
            "ONECARD_PCSC_TESTS=1 but scriptor is missing (apt-get install pcsc-tools)"
        );
        common::note("scriptor_reads_the_balance: skipped: pcsc-tools not installed");
        return;
    }
    let served = Served::start(used_card());
    onecard_pcsc::wait_for_card(Some(SLOT0_READER), Duration::from_secs(15)).unwrap();
    let mut cmd = Command::new("scriptor");
    cmd.args(["-r", SLOT0_READER]);
    let out = run(
        cmd,
        Some("00 A4 04 00 08 A0 00 00 06 32 01 01 05 00\n80 5C 00 02 04\n"),
        "scriptor",
    );
    drop(served);
    wait_until_removed();
    // scriptor echoes each command after "> " and prints the response after "< ", wrapped
    // at 16 bytes a line and closed by " : <meaning of the status word>".
    let mut responses: Vec<String> = Vec::new();
    let mut open = false;
    for line in out.lines() {
        let (text, starts) = match line.strip_prefix("< ") {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        if starts {
            responses.push(String::new());
            open = true;
        }
        if !open || line.starts_with("> ") {
            continue;
        }
        let (bytes, closes) = match text.split_once(" : ") {
            Some((b, _)) => (b, true),
            None => (text, false),
        };
        if let Some(r) = responses.last_mut() {
            r.extend(bytes.split_whitespace());
        }
        open = !closes;
    }
    assert_eq!(responses.len(), 2, "{out}");
    assert!(responses[0].starts_with("6F"), "FCI expected:\n{out}");
    assert!(responses[0].ends_with("9000"), "{out}");
    assert!(
        responses[0].contains(&hex(&SERIAL)),
        "FCI carries 0x15 with the serial:\n{out}"
    );
    assert_eq!(
        responses[1], "000005FA9000",
        "balance 15.30 yuan = 0x5FA fen:\n{out}"
    );
}
