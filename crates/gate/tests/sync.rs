//! The gate and the host: a debit torn before an upload stays pending through the upload's
//! acknowledgement and is settled at the card's next tap; a blacklist pushed by the host stops
//! the card at the next tap.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use onecard_blacklist::Blacklist;
use onecard_card::{Family, Fault, FaultPlan, SimStore, TearingLink};
use onecard_crypto::Algorithm;
use onecard_gate::sync::{upload, GateUpdates};
use onecard_gate::{Decision, Refusal};
use onecard_journal::{DownloadConfig, Downloader, Kind};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A host that acknowledges every batch and answers update checks with `updates`.
fn host(updates: String) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let got = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h == "\r\n" || h.is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let (status, answer) = if line.starts_with("POST") {
                let batch: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let n = batch["records"].as_array().unwrap().len();
                let ack =
                    serde_json::json!({"ack": batch["batch_id"], "accepted": n, "duplicates": 0})
                        .to_string();
                got.lock().unwrap().push(batch);
                ("200 OK", ack)
            } else {
                ("200 OK", updates.clone())
            };
            let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}", answer.len());
        }
    });
    (url, received)
}

#[test]
fn a_pending_debit_survives_the_upload_that_acknowledges_its_record() {
    let dir = temp_dir();
    let mut exit = gate_in(beijing("国贸"), &dir, 2);
    let (mut entry, _d) = gate("西直门");
    let card = card_with(Family::TUnion, Algorithm::Tdes, SERIAL, 5000, SimStore::new);
    let mut link = TearingLink::new(card, FaultPlan::None, 1);
    assert_eq!(
        entry.tap(&mut link, at(8, 0)).unwrap().decision,
        Decision::Entry
    );
    // Tear the exit's DEBIT after the card committed it: APDU 7 of the exit tap is DEBIT
    // (SELECT PPSE, SELECT ADF, READ RECORD, INIT, 80DC, 80DC, DEBIT).
    link.plan = FaultPlan::At {
        apdu: link.apdus + 7,
        fault: Fault::LoseResponse,
    };
    let x = exit.tap(&mut link, at(8, 30)).unwrap();
    assert_eq!(x.refusal, Some(Refusal::PaymentInterrupted), "{x:?}");
    drop(exit);
    // Upload everything: the host acknowledges the pending record too.
    let (url, received) = host("{}".into());
    let mut journal = onecard_journal::Journal::open(&dir).unwrap();
    let report = upload(&mut journal, &url, [0x30, 0x10, 0, 0, 0x45, 2]).unwrap();
    assert_eq!(
        (report.records, report.accepted, report.remaining),
        (1, 1, 0),
        "{report:?}"
    );
    assert!(journal.unacked(10).unwrap().is_empty());
    assert_eq!(received.lock().unwrap()[0]["records"][0]["kind"], "pending");
    drop(journal);
    // A restarted gate still knows the pending debit and settles it at the next tap.
    let mut exit = gate_in(beijing("国贸"), &dir, 2);
    assert_eq!(exit.pending().items().len(), 1);
    let again = exit.tap(&mut link, at(8, 31)).unwrap();
    assert_eq!(
        (again.decision, again.fare_fen),
        (Decision::Exit, 400),
        "{again:?}"
    );
    assert_eq!(again.record.as_ref().unwrap().kind, Kind::Recovered);
    assert!(exit.pending().items().is_empty());
    assert_eq!(link.card.state().balance, 4600);
}

#[test]
fn a_blacklist_from_the_host_stops_the_card() {
    let dir = temp_dir();
    let card_id = format!(
        "{}{}",
        onecard_proto::hex::encode(&onecard_sim::sample::SAMPLE_ISSUER),
        onecard_proto::hex::encode(&SERIAL)
    );
    let updates = format!(
        r#"{{"blacklist":{{"version":3,"base_version":null,"add":["{card_id}"]}},"fares":null}}"#
    );
    let (url, _) = host(updates);
    let shared = Arc::new(Blacklist::new(onecard_blacklist::List::empty(0)));
    let mut sink = GateUpdates::new(&dir, "beijing", Some(shared.clone()));
    let mut down = Downloader::new(DownloadConfig::new(
        url.as_str(),
        [0x30, 0x10, 0, 0, 0x45, 2],
    ))
    .unwrap();
    let first = down.check(&mut sink).unwrap();
    assert_eq!(
        first.blacklist,
        onecard_journal::Outcome::Applied { from: 0, to: 3 }
    );
    assert_eq!(shared.version(), 3);
    // The list is durable beside the journal, and the running gate reads the shared one.
    assert!(dir.join("blacklist.bin").exists());
    let cfg = beijing("西直门");
    let psam = onecard_sam::Psam::new(
        onecard_gate::setup::terminal_number(cfg.city_code, cfg.station, 1),
        keys(),
        onecard_sam::MemorySerials(1),
    );
    let mut g = onecard_gate::Gate::new(
        cfg,
        psam,
        onecard_journal::Journal::open(&dir).unwrap(),
        Some(shared.clone()),
    )
    .unwrap();
    let mut link = onecard_proto::InProcess(card(5000));
    assert_eq!(
        g.tap(&mut link, at(8, 0)).unwrap().refusal,
        Some(Refusal::Blacklisted)
    );
    // The same version again is not applied twice (versions never go backwards).
    let again = down.check(&mut sink).unwrap();
    assert!(
        !matches!(again.blacklist, onecard_journal::Outcome::Applied { .. }),
        "{again:?}"
    );
    assert_eq!(shared.version(), 3);
}

#[test]
fn a_card_that_moved_on_closes_its_pending_debit_as_unresolved() {
    let dir = temp_dir();
    let mut exit = gate_in(beijing("国贸"), &dir, 2);
    let (mut entry, _d) = gate("西直门");
    let (mut elsewhere_in, _e) = gate("苹果园");
    let (mut elsewhere_out, _f) = gate("四惠东");
    let card = card_with(Family::TUnion, Algorithm::Tdes, SERIAL, 5000, SimStore::new);
    let mut link = TearingLink::new(card, FaultPlan::None, 1);
    assert_eq!(
        entry.tap(&mut link, at(8, 0)).unwrap().decision,
        Decision::Entry
    );
    // The exit's DEBIT answer is lost after the card committed it.
    link.plan = FaultPlan::At {
        apdu: link.apdus + 7,
        fault: Fault::LoseResponse,
    };
    assert_eq!(
        exit.tap(&mut link, at(8, 30)).unwrap().refusal,
        Some(Refusal::PaymentInterrupted)
    );
    // The rider rides elsewhere before coming back: the card's counter moves on by two.
    assert_eq!(
        elsewhere_in.tap(&mut link, at(9, 0)).unwrap().decision,
        Decision::Entry
    );
    assert_eq!(
        elsewhere_out.tap(&mut link, at(9, 40)).unwrap().decision,
        Decision::Exit
    );
    let back = exit.tap(&mut link, at(18, 0)).unwrap();
    assert_eq!(back.resolved.len(), 1, "{back:?}");
    assert_eq!(back.resolved[0].kind, Kind::Unresolved);
    assert!(exit.pending().items().is_empty());
    drop(exit);
    // A restarted gate does not wait for it again.
    let exit = gate_in(beijing("国贸"), &dir, 2);
    assert!(exit.pending().items().is_empty());
}
