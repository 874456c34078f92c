//! AFL++ harness: the input is a sequence of APDUs (`len ‖ bytes`, repeated) sent to a
//! personalised card with money on it. Any panic is a finding, and so is money moving: random
//! bytes cannot forge a MAC, so balance and counters must never change.

use onecard_card::{personalize, CardKeys, Family, Personalization, SeededRandom, VirtualCard, VolatileStore};
use onecard_crypto::{Algorithm, Key16};
use onecard_proto::{Date, Fen, SmartCard};

fn card(selector: u8) -> VirtualCard<VolatileStore> {
    let family = if selector & 1 == 0 { Family::TUnion } else { Family::Mohurd };
    let algorithm = if selector & 2 == 0 { Algorithm::Tdes } else { Algorithm::Sm4 };
    let mut state = personalize(&Personalization {
        family,
        issuer: [1, 1, 0x10, 0, 0xFF, 0xFF, 0xFF, 0xFF],
        serial: [0x03, 0x10, 0x51, 0x70, 0x07, 0x01, 0x04, 0x79, 0x13, 0x81],
        start: Date { year: 2025, month: 1, day: 1 },
        expiry: Date { year: 2035, month: 1, day: 1 },
        max_balance: Fen::yuan(1000),
        rider_category: onecard_proto::files::rider::ADULT,
    })
    .expect("fixed personalisation is valid");
    state.balance = 12_345;
    let k = |b| Key16::from_bytes([b; 16]);
    let keys = CardKeys { algorithm, version: 1, load: k(1), purchase: k(2), tac: k(3), maintenance: Some(k(4)) };
    VirtualCard::new(keys, state, VolatileStore, Box::new(SeededRandom::new(u64::from(selector))))
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&selector, mut rest)) = data.split_first() else { return };
        let mut c = card(selector);
        let before = (c.state().balance, c.state().online_counter, c.state().offline_counter);
        while let Some((&len, tail)) = rest.split_first() {
            let n = usize::from(len).min(tail.len());
            let rsp = c.process_apdu(&tail[..n]);
            assert!(rsp.len() >= 2, "response without a status word");
            rest = &tail[n..];
        }
        let after = (c.state().balance, c.state().online_counter, c.state().offline_counter);
        assert_eq!(before, after, "money or counters moved without a valid MAC");
    });
}
