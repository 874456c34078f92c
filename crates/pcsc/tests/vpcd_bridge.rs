//! `PcscTransport` against pcscd's vpcd reader, fed by `onecard-vpcd` with small scripted
//! cards: protocol selection, T=0 response chaining, and card removal.

mod common;

use common::{connect, pcsc_or_skip, wait_until_removed, Served};
use onecard_pcsc::Protocol;
use onecard_proto::{CardTransport, SmartCard, TransportError};

/// PC/SC part 3's ATR for an ISO 14443-4 card without historical bytes: offers T=1.
const ATR_CONTACTLESS: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];
/// A T=0-only ATR (no interface bytes, two historical bytes).
const ATR_T0: [u8; 4] = [0x3B, 0x02, 0x14, 0x50];

const GET_BALANCE: [u8; 5] = [0x80, 0x5C, 0x00, 0x02, 0x04];

/// Answers GET BALANCE directly, as a card over ISO 14443-4 does.
struct DirectCard {
    atr: Vec<u8>,
    commands: Vec<Vec<u8>>,
}

impl SmartCard for DirectCard {
    fn power_on(&mut self) -> Vec<u8> {
        self.atr.clone()
    }
    fn power_off(&mut self) {}
    fn process_apdu(&mut self, command: &[u8]) -> Vec<u8> {
        self.commands.push(command.to_vec());
        if command == GET_BALANCE {
            vec![0x00, 0x00, 0x27, 0x10, 0x90, 0x00]
        } else {
            vec![0x6D, 0x00]
        }
    }
}

/// Behaves like a T=0 contact card: data only through `61xx` + GET RESPONSE, and `6Cxx`
/// when Le is wrong.
struct T0Card {
    pending: Vec<u8>,
    commands: Vec<Vec<u8>>,
}

impl SmartCard for T0Card {
    fn power_on(&mut self) -> Vec<u8> {
        self.pending.clear();
        ATR_T0.to_vec()
    }
    fn power_off(&mut self) {}
    fn process_apdu(&mut self, command: &[u8]) -> Vec<u8> {
        self.commands.push(command.to_vec());
        match command {
            // GET BALANCE with the exact Le: 4 bytes waiting.
            [0x80, 0x5C, 0x00, 0x02, 0x04] => {
                self.pending = vec![0x00, 0x00, 0x27, 0x10];
                vec![0x61, 0x04]
            }
            // Wrong Le: tell the exact length.
            [0x80, 0x5C, 0x00, 0x02, _] => vec![0x6C, 0x04],
            // GET RESPONSE hands out at most 2 bytes at a time, to exercise chains.
            [0x00, 0xC0, 0x00, 0x00, le] => {
                let n = usize::from(*le).min(2).min(self.pending.len());
                let mut out: Vec<u8> = self.pending.drain(..n).collect();
                if self.pending.is_empty() {
                    out.extend_from_slice(&[0x90, 0x00]);
                } else {
                    out.push(0x61);
                    out.push(u8::try_from(self.pending.len()).unwrap_or(0xFF));
                }
                out
            }
            _ => vec![0x6D, 0x00],
        }
    }
}

#[test]
fn contactless_card_answers_directly() {
    let Some(_slot) = pcsc_or_skip("contactless_card_answers_directly") else {
        return;
    };
    let served = Served::start(DirectCard {
        atr: ATR_CONTACTLESS.to_vec(),
        commands: Vec::new(),
    });
    let mut t = connect();
    assert_eq!(t.atr(), ATR_CONTACTLESS);
    assert!(t.reader().contains("Virtual PCD"));
    let rsp = t.transmit(&GET_BALANCE).expect("transmit");
    assert_eq!(rsp, [0x00, 0x00, 0x27, 0x10, 0x90, 0x00]);
    let protocol = t.protocol();
    t.disconnect().expect("disconnect");
    let (card, stats) = served.stop();
    assert_eq!(protocol, Protocol::T1, "PC/SC's contactless ATR offers T=1");
    assert_eq!(card.commands, [GET_BALANCE.to_vec()]);
    assert_eq!(stats.apdus, 1);
    assert!(stats.atr_requests >= 1, "{stats:?}");
    wait_until_removed();
}

#[test]
fn t0_card_chains_through_get_response_and_wrong_le() {
    let Some(_slot) = pcsc_or_skip("t0_card_chains_through_get_response_and_wrong_le") else {
        return;
    };
    let served = Served::start(T0Card {
        pending: Vec::new(),
        commands: Vec::new(),
    });
    let mut t = connect();
    assert_eq!(t.protocol(), Protocol::T0, "a T=0-only ATR must give T=0");
    assert_eq!(
        t.transmit(&[0x80, 0x5C, 0x00, 0x02, 0x00])
            .expect("transmit"),
        [0x00, 0x00, 0x27, 0x10, 0x90, 0x00]
    );
    drop(t);
    let (card, _) = served.stop();
    assert_eq!(
        card.commands,
        [
            vec![0x80, 0x5C, 0x00, 0x02, 0x00],
            vec![0x80, 0x5C, 0x00, 0x02, 0x04],
            vec![0x00, 0xC0, 0x00, 0x00, 0x04],
            vec![0x00, 0xC0, 0x00, 0x00, 0x02],
        ]
    );
    wait_until_removed();
}

#[test]
fn removed_card_is_card_lost() {
    let Some(_slot) = pcsc_or_skip("removed_card_is_card_lost") else {
        return;
    };
    let served = Served::start(DirectCard {
        atr: ATR_CONTACTLESS.to_vec(),
        commands: Vec::new(),
    });
    let mut t = connect();
    t.transmit(&GET_BALANCE).expect("card present");
    // The phone leaves the field.
    served.stop();
    wait_until_removed();
    match t.transmit(&GET_BALANCE) {
        Err(TransportError::CardLost) => {}
        other => panic!("expected CardLost, got {other:?}"),
    }
}
