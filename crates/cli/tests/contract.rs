//! The command-line contract other tools depend on: subcommands, flags, JSON field names and
//! exit codes, exercised on the real binary. Also: no key material in any output.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn onecard(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_onecard"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn last_line_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("onecard-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const LOAD: &str = "0123456789ABCDEF0123456789ABCDEF";
const PURCHASE: &str = "FEDCBA9876543210FEDCBA9876543210";
const TAC: &str = "00112233445566778899AABBCCDDEEFF";

fn no_keys_in(out: &Output) {
    let all = [
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    ]
    .concat()
    .to_uppercase();
    for k in [LOAD, PURCHASE, TAC] {
        assert!(!all.contains(k), "key material printed");
    }
}

#[test]
fn card_personalize_load_show_and_gate_taps() {
    let dir = temp_dir("ride");
    // The sample master keys, so the default gate and top-up keys serve this card.
    let master = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/keys/sample-master-3des.json"
    );
    let out = onecard(
        &[
            "card",
            "personalize",
            "--family",
            "t-union",
            "--issuer",
            "01011000FFFFFFFF",
            "--serial",
            "03100000000000000042",
            "--master-keys",
            master,
            "--out",
            "c.card",
        ],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Never overwritten.
    let again = onecard(
        &[
            "card",
            "personalize",
            "--family",
            "t-union",
            "--issuer",
            "01011000FFFFFFFF",
            "--serial",
            "03100000000000000042",
            "--master-keys",
            master,
            "--out",
            "c.card",
        ],
        &dir,
    );
    assert!(!again.status.success());
    let loaded = ok_json(&onecard(
        &["card", "load", "--card", "c.card", "--amount-fen", "5000"],
        &dir,
    ));
    assert_eq!(
        (
            loaded["balance_after_fen"].as_u64(),
            loaded["tac_verified"].as_bool()
        ),
        (Some(5000), Some(true))
    );
    let entry = ok_json(&onecard(
        &[
            "gate",
            "tap",
            "--card",
            "c.card",
            "--city",
            "beijing",
            "--station",
            "西直门",
            "--at",
            "2026-11-25T08:00:00+08:00",
            "--journal",
            "j-in",
        ],
        &dir,
    ));
    assert_eq!(entry["decision"], "entry");
    let exit = onecard(
        &[
            "gate",
            "tap",
            "--card",
            "c.card",
            "--city",
            "beijing",
            "--station",
            "国贸",
            "--at",
            "2026-11-25T08:30:00+08:00",
            "--journal",
            "j-out",
        ],
        &dir,
    );
    no_keys_in(&exit);
    let exit = ok_json(&exit);
    assert_eq!(exit["decision"], "exit");
    assert_eq!(
        (
            exit["fare_fen"].as_u64(),
            exit["balance_before_fen"].as_u64(),
            exit["balance_after_fen"].as_u64()
        ),
        (Some(400), Some(5000), Some(4600))
    );
    let r = &exit["record"];
    for field in [
        "family",
        "issuer",
        "serial",
        "counter",
        "type",
        "amount_fen",
        "balance_before_fen",
        "balance_after_fen",
        "terminal",
        "terminal_serial",
        "date",
        "time",
        "tac",
        "key_version",
        "algorithm",
        "mac2_verified",
    ] {
        assert!(!r[field].is_null(), "record field {field} missing: {r}");
    }
    assert_eq!(
        (
            r["family"].as_str(),
            r["issuer"].as_str(),
            r["serial"].as_str()
        ),
        (
            Some("t-union"),
            Some("01011000FFFFFFFF"),
            Some("03100000000000000042")
        )
    );
    assert_eq!(
        (r["type"].as_str(), r["date"].as_str(), r["time"].as_str()),
        (Some("09"), Some("20261125"), Some("083000"))
    );
    assert_eq!(r["tac"].as_str().unwrap().len(), 8);
    assert_eq!(r["terminal"].as_str().unwrap().len(), 12);
    assert_eq!(r["terminal_serial"].as_str().unwrap().len(), 8);
    let show = onecard(&["card", "show", "c.card"], &dir);
    no_keys_in(&show);
    let show = ok_json(&show);
    assert_eq!(
        (show["family"].as_str(), show["balance_fen"].as_u64()),
        (Some("t-union"), Some(4600))
    );
    assert_eq!(
        (
            show["online_counter"].as_u64(),
            show["offline_counter"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(show["log"].as_array().unwrap().len(), 3);
    // A damaged card file is refused with a clear error and a failing exit code.
    let mut bytes = std::fs::read(dir.join("c.card")).unwrap();
    bytes[30] ^= 1;
    std::fs::write(dir.join("bad.card"), bytes).unwrap();
    let bad = onecard(&["card", "show", "bad.card"], &dir);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("damaged"));
}

#[test]
fn personalize_with_card_level_keys_shows_no_keys() {
    let dir = temp_dir("keys");
    std::fs::write(
        dir.join("keys.json"),
        format!(r#"{{"load":"{LOAD}","purchase":"{PURCHASE}","tac":"{TAC}"}}"#),
    )
    .unwrap();
    let out = onecard(
        &[
            "card",
            "personalize",
            "--family",
            "mohurd",
            "--issuer",
            "43004300FFFFFFFF",
            "--serial",
            "03100000000000000077",
            "--keys",
            "keys.json",
            "--algorithm",
            "sm4",
            "--out",
            "m.card",
        ],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    no_keys_in(&out);
    let show = onecard(&["card", "show", "m.card"], &dir);
    no_keys_in(&show);
    let show = ok_json(&show);
    assert_eq!(
        (show["family"].as_str(), show["algorithm"].as_str()),
        (Some("mohurd"), Some("sm4"))
    );
    // The card file holds keys: private to its owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(dir.join("m.card"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
}

#[test]
fn trace_verify_exit_codes() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../trace/tests/data");
    let dir = temp_dir("trace");
    let good = onecard(
        &[
            "trace",
            "verify",
            "--keys",
            "huada-keys.json",
            "huada-ep-load.trace",
        ],
        &data,
    );
    assert_eq!(
        good.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let line: Value = serde_json::from_str(
        String::from_utf8_lossy(&good.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    for f in ["kind", "amount_fen", "counter", "mac1", "mac2", "tac"] {
        assert!(!line[f].is_null(), "{f}");
    }
    assert_eq!(
        (
            line["mac1"].as_str(),
            line["mac2"].as_str(),
            line["tac"].as_str()
        ),
        (Some("ok"), Some("ok"), Some("ok"))
    );
    // One byte of the CREDIT's MAC2 flipped: exit 1.
    let text = std::fs::read_to_string(data.join("huada-ep-load.trace")).unwrap();
    let tampered = text.replacen("0641DCD8", "0641DCD9", 1);
    assert_ne!(text, tampered);
    std::fs::write(dir.join("t.trace"), tampered).unwrap();
    let bad = onecard(
        &[
            "trace",
            "verify",
            "--keys",
            data.join("huada-keys.json").to_str().unwrap(),
            "t.trace",
        ],
        &dir,
    );
    assert_eq!(bad.status.code(), Some(1));
    std::fs::write(dir.join("u.trace"), "> 80 5C 00 02 04\n< zz\n").unwrap();
    let unreadable = onecard(
        &[
            "trace",
            "verify",
            "--keys",
            data.join("huada-keys.json").to_str().unwrap(),
            "u.trace",
        ],
        &dir,
    );
    assert_eq!(unreadable.status.code(), Some(2));
}

#[test]
fn fare_commands_and_benches_print_their_contracts() {
    let dir = temp_dir("fare");
    let q = ok_json(&onecard(
        &[
            "fare",
            "quote",
            "--city",
            "beijing",
            "--from",
            "西直门",
            "--to",
            "国贸",
        ],
        &dir,
    ));
    assert_eq!(
        (q["distance_m"].as_u64(), q["fare_fen"].as_u64()),
        (Some(11_923), Some(400))
    );
    assert!(q["path"].as_array().unwrap().len() > 2 && q["breakdown"].is_array());
    let m = onecard(&["fare", "matrix", "--city", "beijing"], &dir);
    assert!(m.status.success());
    let text = String::from_utf8(m.stdout).unwrap();
    assert_eq!(text.lines().next(), Some("from,to,distance_m,fare_fen"));
    assert_eq!(text.lines().count(), 1 + 416 * 415);
    let tap = last_line_json(&onecard(&["bench", "tap", "--taps", "2000"], &dir));
    assert!(
        tap["taps_per_s"].as_f64().unwrap() > 0.0
            && tap["floor_taps_per_s"].as_f64().unwrap() > 0.0
    );
    let gate = last_line_json(&onecard(&["bench", "gate", "--rides", "20"], &dir));
    for f in [
        "taps_per_s",
        "entry_p50_us",
        "entry_p99_us",
        "exit_p50_us",
        "exit_p99_us",
        "apdus_per_tap",
    ] {
        assert!(gate[f].is_number(), "{f}");
    }
}
