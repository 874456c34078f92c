//! The verifier against real-card traces (Huada load, MoHURD CAPP purchase), the blog purchase
//! vector, tampered copies of each, tears resolved by GET TRANSACTION PROVE, and hostile input.

use onecard_crypto::{purchase_session_input, Algorithm, CardKey, Key16, SessionKey};
use onecard_proto::hex;
use onecard_trace::{
    exit_code, verify, Check, Family, Keys, Kind, Outcome, Trace, TxReport, EXIT_BAD, EXIT_OK,
};
use serde_json::Value;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");

fn data(name: &str) -> String {
    std::fs::read_to_string(format!("{DATA}{name}")).expect("test data file")
}

fn keys(name: &str) -> Keys {
    Keys::from_json(&data(name)).expect("test keys")
}

fn run(text: &str, keys: &Keys) -> Vec<TxReport> {
    verify(&Trace::parse(text.as_bytes()).expect("trace parses"), keys)
}

fn checks(r: &TxReport) -> (Check, Check, Check) {
    (r.mac1, r.mac2, r.tac)
}

use Check::{Absent, Bad, Ok as Good};

/// Replaces `from` by `to` in the one line that starts with `prefix`.
fn tamper(text: &str, prefix: &str, from: &str, to: &str) -> String {
    let mut hits = 0;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(prefix) {
                hits += 1;
                assert!(l.contains(from), "{from} not in {l}");
                l.replacen(from, to, 1)
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert_eq!(hits, 1, "prefix {prefix} must match one line");
    out.join("\n")
}

/// Drops every line that starts with one of `prefixes`.
fn drop_lines(text: &str, prefixes: &[&str]) -> String {
    text.lines()
        .filter(|l| !prefixes.iter().any(|p| l.starts_with(p)))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------------
// Huada EP load (real card, contact interface with 61xx / GET RESPONSE)

#[test]
fn huada_load_all_ok() {
    let reports = run(&data("huada-ep-load.trace"), &keys("huada-keys.json"));
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(checks(r), (Good, Good, Good), "{r:?}");
    assert_eq!(r.kind, Kind::Load);
    assert_eq!(r.family, Family::TUnion);
    assert_eq!(
        (r.tx_type.as_str(), r.amount_fen, r.counter),
        ("02", 0x1C37, 0)
    );
    assert_eq!(
        (r.balance_before_fen, r.balance_after_fen),
        (0, Some(0x1C37))
    );
    assert_eq!(r.terminal, "000001000050");
    assert_eq!(
        (r.date.as_deref(), r.time.as_deref()),
        (Some("20140825"), Some("103100"))
    );
    assert_eq!(
        (r.outcome, r.card_sw.as_deref()),
        (Outcome::Completed, Some("9000"))
    );
    assert_eq!((r.init_line, r.final_line), (16, Some(20)));
    assert_eq!(r.algorithm.as_deref(), Some("3des"));
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    assert_eq!(exit_code(&reports), EXIT_OK);
}

/// The same load built straight from the vector's fields, as a contactless trace (data returned
/// directly, no GET RESPONSE).
#[test]
fn huada_load_from_vector_json() {
    let vectors: Value = serde_json::from_str(&data("epurse-vectors.json")).expect("vectors JSON");
    let v = vectors
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|v| v["name"] == "changsha-huada-EP-load-trace")
        })
        .expect("vector present");
    let i = &v["inputs"];
    let s = |k: &str| i[k].as_str().expect("string field").to_owned();
    let trace = format!(
        "# built from vector changsha-huada-EP-load-trace\n> {}10\n< {}\n> {}04\n< {}\n",
        s("apdu_init"),
        s("rsp_init"),
        s("apdu_credit"),
        s("rsp_credit")
    );
    let keys = Keys::from_json(&format!(
        r#"{{"load": "{}", "purchase": "{}", "tac": "{}"}}"#,
        s("DLK"),
        s("DLK"),
        s("DTK")
    ))
    .expect("keys");
    let reports = run(&trace, &keys);
    assert_eq!(reports.len(), 1);
    assert_eq!(checks(&reports[0]), (Good, Good, Good));
    assert_eq!(reports[0].card_sw.as_deref(), Some("9000"));
}

#[test]
fn huada_load_tampered() {
    let base = data("huada-ep-load.trace");
    let k = keys("huada-keys.json");
    let cases = [
        (
            "< 00000000 0000 01 00",
            "06B1BEF5",
            "06B1BEF4",
            (Bad, Good, Good),
        ), // MAC1
        ("> 805200000B", "0641DCD8", "0641DDD8", (Good, Bad, Good)), // MAC2
        ("< ED0F8755", "ED0F8755", "ED0F8655", (Good, Good, Bad)),   // TAC
        ("> 805000020B", "00001C37", "00001C38", (Bad, Bad, Bad)),   // amount
        ("> 805200000B", "20140825", "20140826", (Good, Bad, Bad)),  // date
    ];
    for (prefix, from, to, want) in cases {
        let reports = run(&tamper(&base, prefix, from, to), &k);
        assert_eq!(reports.len(), 1);
        assert_eq!(checks(&reports[0]), want, "{from} -> {to}");
        assert_eq!(exit_code(&reports), EXIT_BAD, "{from} -> {to}");
    }
}

// ---------------------------------------------------------------------------------------------
// Blog EP purchase (constructed from the vector; TAC self-consistent only)

#[test]
fn blog_purchase_all_ok() {
    // The TAC in the trace file is onecard-crypto's own value; recompute it here from the
    // vector's DTK so a change to the file cannot go unnoticed.
    let dtk =
        Key16::from_bytes(hex::decode_array("00112233445566778899AABBCCDDEEFF").expect("hex"));
    let h = |s: &str| hex::decode(s).expect("hex");
    let tac = SessionKey::tac(Algorithm::Tdes, &dtk)
        .mac(&h("00001000 06 001122334455 00000001 20120229 135100"));
    assert_eq!(hex::encode(&tac), "B3A0D49C");
    let dpk =
        Key16::from_bytes(hex::decode_array("11223344556677888877665544332211").expect("hex"));
    let sk = CardKey::new(Algorithm::Tdes, &dpk).session_key(purchase_session_input(
        [0x11, 0x22, 0x33, 0x44],
        0,
        [0, 0, 0, 1],
    ));
    assert_eq!(hex::encode(&sk.mac(&h("00001000"))), "56988A13");

    let reports = run(&data("blog-ep-purchase.trace"), &keys("blog-keys.json"));
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(checks(r), (Good, Good, Good), "{r:?}");
    assert_eq!(
        (r.kind, r.family, r.tx_type.as_str()),
        (Kind::Purchase, Family::TUnion, "06")
    );
    assert_eq!(
        (r.amount_fen, r.balance_before_fen, r.balance_after_fen),
        (0x1000, 10000, Some(10000 - 0x1000))
    );
    assert_eq!(r.terminal_serial.as_deref(), Some("00000001"));
    assert_eq!(exit_code(&reports), EXIT_OK);
}

#[test]
fn blog_purchase_tampered() {
    let base = data("blog-ep-purchase.trace");
    let k = keys("blog-keys.json");
    let cases = [
        ("> 805401000F", "F15CAB75", "F15CAB74", (Bad, Good, Good)), // MAC1
        ("< B3A0D49C", "56988A13", "56988A12", (Good, Bad, Good)),   // MAC2
        ("< B3A0D49C", "B3A0D49C", "B3A0D59C", (Good, Good, Bad)),   // TAC
        ("> 805001020B", "00001000", "00001001", (Bad, Bad, Bad)),   // amount
        ("> 805401000F", "20120229", "20120228", (Bad, Good, Bad)),  // date
    ];
    for (prefix, from, to, want) in cases {
        let reports = run(&tamper(&base, prefix, from, to), &k);
        assert_eq!(reports.len(), 1);
        assert_eq!(checks(&reports[0]), want, "{from} -> {to}");
        assert_eq!(exit_code(&reports), EXIT_BAD);
    }
}

// ---------------------------------------------------------------------------------------------
// MoHURD CAPP purchase (real card, B.1.8 / B.2.4)

#[test]
fn mohurd_capp_purchase_all_ok() {
    let reports = run(
        &data("mohurd-capp-purchase.trace"),
        &keys("huada-keys.json"),
    );
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(checks(r), (Good, Good, Good), "{r:?}");
    assert_eq!(
        (r.kind, r.family, r.tx_type.as_str()),
        (Kind::CappPurchase, Family::Mohurd, "09")
    );
    assert_eq!(
        (r.amount_fen, r.counter, r.balance_after_fen),
        (0x1C37, 0, Some(0))
    );
    assert_eq!(r.terminal, "000000000001");
    assert_eq!(
        (r.date.as_deref(), r.time.as_deref()),
        (Some("20110919"), Some("204812"))
    );
    assert_eq!((r.init_line, r.final_line), (17, Some(24)));
}

#[test]
fn mohurd_capp_purchase_tampered() {
    let base = data("mohurd-capp-purchase.trace");
    let k = keys("huada-keys.json");
    let cases = [
        ("> 805401000F", "303D735D", "303D725D", (Bad, Good, Good)), // MAC1
        ("< 44A8E04A", "350AC480", "350AC481", (Good, Bad, Good)),   // MAC2
        ("< 44A8E04A", "44A8E04A", "45A8E04A", (Good, Good, Bad)),   // TAC
        ("> 805003020B", "00001C37", "00001C36", (Bad, Bad, Bad)),   // amount
        ("> 805401000F", "20110919", "20110918", (Bad, Good, Bad)),  // date
        (
            "< 85 88D32B76",
            "88D32B76 9000",
            "88D32B77 9000",
            (Bad, Good, Good),
        ), // security code
    ];
    for (prefix, from, to, want) in cases {
        let reports = run(&tamper(&base, prefix, from, to), &k);
        assert_eq!(reports.len(), 1);
        assert_eq!(checks(&reports[0]), want, "{from} -> {to}");
        assert_eq!(exit_code(&reports), EXIT_BAD);
    }
}

/// Without GET MESSAGE the trace reads as T-Union, and the card's MAC1 (which covers the
/// security code) no longer verifies, exactly as B.2.4 describes.
#[test]
fn mohurd_without_get_message_is_t_union() {
    let text = drop_lines(
        &data("mohurd-capp-purchase.trace"),
        &["> 80CA", "< 85 88D32B76"],
    );
    let reports = run(&text, &keys("huada-keys.json"));
    assert_eq!(reports[0].family, Family::TUnion);
    assert_eq!(checks(&reports[0]), (Bad, Good, Good));
}

#[test]
fn mohurd_failed_get_message_leaves_mac1_unchecked() {
    let text = tamper(
        &data("mohurd-capp-purchase.trace"),
        "< 85 88D32B76",
        "85 88D32B76 88D32B76 9000",
        "6A81",
    );
    let reports = run(&text, &keys("huada-keys.json"));
    assert_eq!(reports[0].family, Family::Mohurd);
    assert_eq!(checks(&reports[0]), (Check::Unchecked, Good, Good));
    assert_eq!(exit_code(&reports), EXIT_OK);
}

// ---------------------------------------------------------------------------------------------
// Status words, tears, GET TRANSACTION PROVE

#[test]
fn debit_refused_9302_with_good_mac1_is_reported_honestly() {
    let text = tamper(
        &data("blog-ep-purchase.trace"),
        "< B3A0D49C",
        "B3A0D49C 56988A13 9000",
        "9302",
    );
    let reports = run(&text, &keys("blog-keys.json"));
    let r = &reports[0];
    assert_eq!(checks(r), (Good, Absent, Absent));
    assert_eq!(
        (r.outcome, r.card_sw.as_deref()),
        (Outcome::Refused, Some("9302"))
    );
    assert!(r.notes.iter().any(|n| n.contains("9302")), "{:?}", r.notes);
    assert_eq!(exit_code(&reports), EXIT_OK);

    let bad = tamper(&text, "> 805401000F", "F15CAB75", "00000000");
    let reports = run(&bad, &keys("blog-keys.json"));
    assert_eq!(checks(&reports[0]), (Bad, Absent, Absent));
    assert_eq!(exit_code(&reports), EXIT_BAD);
}

#[test]
fn torn_purchase_resolved_by_prove() {
    let base = drop_lines(&data("blog-ep-purchase.trace"), &["< B3A0D49C"]);
    let k = keys("blog-keys.json");
    let reports = run(&base, &k);
    assert_eq!(checks(&reports[0]), (Good, Absent, Absent));
    assert_eq!(
        (reports[0].outcome, reports[0].card_sw.as_deref()),
        (Outcome::Torn, None)
    );

    // B.5.2: re-INIT shows counter 0001, then PROVE for counter 0001 gives MAC2 ‖ TAC.
    let recovered = format!(
        "{base}\n> 805001020B 01 00000000 001122334455 0F\n< 00001710 0001 000000 01 00 55667788 9000\n\
         > 805A000602 0001 08\n< 61 08\n> 00C0000008\n< 56988A13 B3A0D49C 9000\n"
    );
    let reports = run(&recovered, &k);
    assert_eq!(
        reports.len(),
        1,
        "the re-INIT without DEBIT is not a transaction"
    );
    let r = &reports[0];
    assert_eq!(checks(r), (Good, Good, Good));
    assert_eq!((r.outcome, r.prove_line), (Outcome::Proven, Some(14)));

    // PROVE answers MAC first; the DEBIT order (TAC first) must not pass.
    let swapped = recovered.replace("< 56988A13 B3A0D49C 9000", "< B3A0D49C 56988A13 9000");
    assert_eq!(checks(&run(&swapped, &k)[0]), (Good, Bad, Bad));

    // A PROVE for another counter resolves nothing.
    let other = recovered.replace("> 805A000602 0001 08", "> 805A000602 0002 08");
    assert_eq!(run(&other, &k)[0].outcome, Outcome::Torn);
}

#[test]
fn torn_load_resolved_by_prove() {
    let base = drop_lines(
        &data("huada-ep-load.trace"),
        &["< 6104", "> 00C0000004", "< ED0F8755"],
    );
    let k = keys("huada-keys.json");
    let text = base.replace(
        "> 805C000204\n< 00001C37 9000",
        "> 805C000204\n< 00001C37 9000\n> 805A000202 0001 08\n< 0641DCD8 ED0F8755 9000",
    );
    let reports = run(&text, &k);
    assert_eq!(reports.len(), 1);
    assert_eq!(checks(&reports[0]), (Good, Good, Good), "{:?}", reports[0]);
    assert_eq!(reports[0].outcome, Outcome::Proven);
    let bad = text.replace("< 0641DCD8 ED0F8755", "< 0641DCD8 ED0F8756");
    assert_eq!(checks(&run(&bad, &k)[0]), (Good, Good, Bad));
}

#[test]
fn get_response_never_sent_means_torn() {
    let text = drop_lines(
        &data("mohurd-capp-purchase.trace"),
        &["> 00C0000008", "< 44A8E04A"],
    );
    let reports = run(&text, &keys("huada-keys.json"));
    assert_eq!(checks(&reports[0]), (Good, Absent, Absent));
    assert_eq!(
        (reports[0].outcome, reports[0].card_sw.as_deref()),
        (Outcome::Torn, Some("6108"))
    );
}

#[test]
fn wrong_le_retry_is_followed() {
    // 6Cxx: the card did not execute the command; the terminal re-sends it with the right Le.
    let text = data("blog-ep-purchase.trace").replace(
        "> 805401000F 00000001 20120229 135100 F15CAB75 08",
        "> 805401000F 00000001 20120229 135100 F15CAB75 04\n< 6C08\n> 805401000F 00000001 20120229 135100 F15CAB75 08",
    );
    let reports = run(&text, &keys("blog-keys.json"));
    assert_eq!(reports.len(), 1);
    assert_eq!(checks(&reports[0]), (Good, Good, Good));
}

#[test]
fn load_without_credit_is_aborted() {
    let text = drop_lines(
        &data("huada-ep-load.trace"),
        &["> 805200000B", "< 6104", "> 00C0000004", "< ED0F8755"],
    );
    let r = &run(&text, &keys("huada-keys.json"))[0];
    assert_eq!(checks(r), (Good, Absent, Absent));
    assert_eq!((r.outcome, r.final_line), (Outcome::Aborted, None));
}

#[test]
fn two_transactions_in_one_trace() {
    let text = format!(
        "{}\n{}",
        data("huada-ep-load.trace"),
        data("mohurd-capp-purchase.trace")
    );
    let reports = run(&text, &keys("huada-keys.json"));
    assert_eq!(reports.len(), 2);
    assert_eq!(
        (reports[0].kind, reports[1].kind),
        (Kind::Load, Kind::CappPurchase)
    );
    assert!(
        reports.iter().all(|r| checks(r) == (Good, Good, Good)),
        "{reports:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Algorithms

#[test]
fn forced_algorithm_overrides_the_card() {
    let k = Keys::from_json(&data("huada-keys.json").replace('}', r#", "algorithm": "sm4"}"#))
        .expect("keys");
    let r = &run(&data("huada-ep-load.trace"), &k)[0];
    assert_eq!(checks(r), (Bad, Bad, Bad));
    assert_eq!(r.algorithm.as_deref(), Some("sm4"));
    assert!(
        r.notes.iter().any(|n| n.contains("forces sm4")),
        "{:?}",
        r.notes
    );
}

#[test]
fn unknown_algorithm_id_is_unchecked() {
    let text = tamper(
        &data("huada-ep-load.trace"),
        "< 00000000 0000 01 00",
        "01 00 CDEF",
        "01 07 CDEF",
    );
    let r = &run(&text, &keys("huada-keys.json"))[0];
    assert_eq!(
        checks(r),
        (Check::Unchecked, Check::Unchecked, Check::Unchecked)
    );
    assert_eq!(r.algorithm, None);
}

/// The onecard SM4 profile (algorithm id 04) is taken from the INIT response.
#[test]
fn sm4_purchase_follows_the_algorithm_id() {
    let dpk = Key16::from_bytes([0x21; 16]);
    let dtk = Key16::from_bytes([0x42; 16]);
    let (random, serial) = ([9, 8, 7, 6], [0, 0, 0x12, 0x34]);
    let sk =
        CardKey::new(Algorithm::Sm4, &dpk).session_key(purchase_session_input(random, 5, serial));
    let h = |s: &str| hex::decode(s).expect("hex");
    let mac1 = sk.mac(&h("000000C8 06 112233445566 20250101 081500"));
    let mac2 = sk.mac(&h("000000C8"));
    let tac = SessionKey::tac(Algorithm::Sm4, &dtk)
        .mac(&h("000000C8 06 112233445566 00001234 20250101 081500"));
    let e = hex::encode;
    let text = format!(
        "> 805001020B 01 000000C8 112233445566 0F\n< 000003E8 0005 000000 01 04 09080706 9000\n\
         > 805401000F 00001234 20250101 081500 {} 08\n< {} {} 9000\n",
        e(&mac1),
        e(&tac),
        e(&mac2)
    );
    let k = Keys::from_json(&format!(
        r#"{{"load": "{0}", "purchase": "{0}", "tac": "{1}"}}"#,
        "21".repeat(16),
        "42".repeat(16)
    ))
    .expect("keys");
    let r = &run(&text, &k)[0];
    assert_eq!(checks(r), (Good, Good, Good));
    assert_eq!(r.algorithm.as_deref(), Some("sm4"));
}

// ---------------------------------------------------------------------------------------------
// Output format and hostile input

#[test]
fn json_line_format() {
    let r = &run(&data("huada-ep-load.trace"), &keys("huada-keys.json"))[0];
    let line = serde_json::to_string(r).expect("serialises");
    assert!(!line.contains('\n'));
    assert!(
        line.starts_with(r#"{"kind":"load","family":"t-union","type":"02","amount_fen":7223,"#),
        "{line}"
    );
    for field in [
        r#""mac1":"ok""#,
        r#""mac2":"ok""#,
        r#""tac":"ok""#,
        r#""counter":0"#,
        r#""init_line":16"#,
    ] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
    let back: TxReport = serde_json::from_str(&line).expect("round trip");
    assert_eq!(&back, r);
}

#[test]
fn missing_and_orphan_lines_never_panic() {
    let k = keys("huada-keys.json");
    for name in [
        "huada-ep-load.trace",
        "mohurd-capp-purchase.trace",
        "blog-ep-purchase.trace",
    ] {
        let text = data(name);
        let lines: Vec<&str> = text.lines().collect();
        // Every single-line deletion and every prefix of the trace.
        for skip in 0..lines.len() {
            let t: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| *l)
                .collect();
            let _ = run(&t.join("\n"), &k);
            let _ = run(&lines[..skip].join("\n"), &k);
        }
    }
}

#[test]
fn mutated_bytes_never_panic() {
    // Deterministic byte mutations of real traces: whatever parses must verify without panic.
    let k = keys("huada-keys.json");
    let mut seed: u64 = 0x5EED_0123_4567_89AB;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let sources = [
        data("huada-ep-load.trace"),
        data("mohurd-capp-purchase.trace"),
        data("blog-ep-purchase.trace"),
    ];
    let mut parsed = 0;
    for round in 0..3000 {
        let mut bytes = sources[round % 3].clone().into_bytes();
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = b"0123456789ABCDEF<> #\n"[(next() % 21) as usize];
        }
        if let Ok(t) = Trace::parse(&bytes) {
            parsed += 1;
            let _ = verify(&t, &k);
        }
    }
    assert!(
        parsed > 300,
        "only {parsed} mutants parsed: the test would prove little"
    );
}
