//! Two independent implementations agree: every load and purchase our card and terminal make,
//! captured as an APDU trace, verifies with the trace verifier (MAC1, MAC2, TAC ok), for both
//! families and both algorithms; and a single flipped byte in a MAC-bearing line fails it.
#![allow(clippy::unwrap_used)]

use onecard_card::{Family, SeededRandom, VirtualCard, VolatileStore};
use onecard_crypto::Algorithm;
use onecard_proto::{hex, CardTransport, DateTime, Fen, InProcess, TransportError};
use onecard_sam::{Hsm, MemorySerials, Psam, SoftwareKeyStore};
use onecard_sim::sample::{sample_card, sample_master_keys, SAMPLE_ISSUER};
use onecard_terminal::{CardSession, PurchaseOutcome};
use onecard_trace::{verify, Check, Keys, Trace};
use std::sync::Arc;

struct Recording<T> {
    inner: T,
    lines: String,
}

impl<T: CardTransport> CardTransport for Recording<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.lines
            .push_str(&format!("> {}\n", hex::encode(command)));
        let r = self.inner.transmit(command)?;
        self.lines.push_str(&format!("< {}\n", hex::encode(&r)));
        Ok(r)
    }
}

fn keys_json(alg: Algorithm, serial: [u8; 10]) -> String {
    let factor: [u8; 8] = serial[2..].try_into().unwrap();
    let k = sample_master_keys(alg).derive(SAMPLE_ISSUER, factor);
    format!(
        r#"{{"load":"{}","purchase":"{}","tac":"{}"}}"#,
        hex::encode(k.load.expose_secret()),
        hex::encode(k.purchase.expose_secret()),
        hex::encode(k.tac.expose_secret())
    )
}

fn traced_rides(family: Family, alg: Algorithm) -> String {
    let serial = [0x03, 0x10, 0, 0, 0, 0, 0, 0, 0x31, 0x41];
    let (k, st) = sample_card(family, alg, serial, Fen::yuan(1000)).unwrap();
    let card = VirtualCard::new(k, st, VolatileStore, Box::new(SeededRandom::new(3)));
    let store = Arc::new(SoftwareKeyStore::new().with_any_issuer(sample_master_keys(alg)));
    let mut s = CardSession::open(Recording {
        inner: InProcess(card),
        lines: String::new(),
    })
    .unwrap();
    let when = DateTime::from_unix(1_795_564_800, 28_800).unwrap();
    s.load(
        &Hsm::new(store.clone()),
        Fen::yuan(30),
        [0, 0, 1, 0, 0, 0x50],
        when,
    )
    .unwrap();
    let mut psam = Psam::new([0x30, 0x10, 0, 0, 0, 1], store, MemorySerials(7));
    for (amount, capp) in [(0u64, true), (400, true), (150, false)] {
        let out = s
            .purchase(
                &mut psam,
                Fen::new(amount),
                when,
                if capp { Some(&[]) } else { None },
            )
            .unwrap();
        assert!(matches!(out, PurchaseOutcome::Done(_)));
    }
    s.into_link().lines
}

#[test]
fn the_verifier_accepts_every_transaction_our_card_makes() {
    for family in [Family::TUnion, Family::Mohurd] {
        for alg in [Algorithm::Tdes, Algorithm::Sm4] {
            let text = traced_rides(family, alg);
            let keys = Keys::from_json(&keys_json(alg, [0x03, 0x10, 0, 0, 0, 0, 0, 0, 0x31, 0x41]))
                .unwrap();
            let reports = verify(&Trace::parse(text.as_bytes()).unwrap(), &keys);
            assert_eq!(reports.len(), 4, "{family:?} {alg:?}: {reports:?}");
            for r in &reports {
                assert_eq!(
                    (r.mac1, r.mac2, r.tac),
                    (Check::Ok, Check::Ok, Check::Ok),
                    "{family:?} {alg:?}: {r:?}"
                );
            }
            // Flip one byte of the last DEBIT's MAC1: that purchase must come out bad.
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            let i = lines
                .iter()
                .rposition(|l| l.starts_with("> 805401"))
                .unwrap();
            let mut b = hex::decode(&lines[i][2..]).unwrap();
            b[17] ^= 0x01; // inside MAC1 (bytes 16..20)
            lines[i] = format!("> {}", hex::encode(&b));
            let bad = verify(&Trace::parse(lines.join("\n").as_bytes()).unwrap(), &keys);
            assert!(
                bad.iter().any(|r| r.mac1 == Check::Bad),
                "{family:?} {alg:?}: {bad:?}"
            );
        }
    }
}
