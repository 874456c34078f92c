//! The host security module: authorises loads (checks the card's MAC1, produces MAC2) and
//! verifies the TACs that clearing receives.

use crate::keystore::{CardRef, KeyRequest, KeyStore, KeyStoreError};
use onecard_crypto::{load_session_input, mac_eq, Algorithm, KeyUsage};
use onecard_proto::commands::InitLoadResponse;
use onecard_proto::{DateTime, Fen};
use thiserror::Error;

/// Why the host refused.
#[derive(Debug, Error)]
pub enum HsmError {
    /// A key problem.
    #[error(transparent)]
    Key(#[from] KeyStoreError),
    /// The card's MAC1 did not verify: not our card, or a forged answer.
    #[error("card MAC1 does not verify")]
    BadMac1,
    /// Unknown algorithm id.
    #[error("unknown algorithm id {0:02X}")]
    UnknownAlgorithm(u8),
    /// Amount does not fit.
    #[error("amount {0} fen is too large")]
    Amount(u64),
}

/// A load as the host sees it.
#[derive(Debug, Clone, Copy)]
pub struct LoadRequest {
    /// The card.
    pub card: CardRef,
    /// The card's INIT FOR LOAD answer.
    pub init: InitLoadResponse,
    /// Amount.
    pub amount: Fen,
    /// Transaction type (02 EP load).
    pub tx_type: u8,
    /// Terminal number that sent INIT FOR LOAD.
    pub terminal: [u8; 6],
    /// Host date and time sent in CREDIT FOR LOAD.
    pub when: DateTime,
}

/// A purchase TAC to verify (B.2.3): no balance and no counter in the input.
#[derive(Debug, Clone, Copy)]
pub struct PurchaseTac {
    /// The card.
    pub card: CardRef,
    /// Algorithm id from INIT.
    pub algorithm: u8,
    /// Key version from INIT.
    pub key_version: u8,
    /// Amount.
    pub amount: Fen,
    /// 06 or 09.
    pub tx_type: u8,
    /// Terminal number.
    pub terminal: [u8; 6],
    /// Terminal transaction serial.
    pub terminal_serial: [u8; 4],
    /// Terminal date and time.
    pub when: DateTime,
    /// The TAC.
    pub tac: [u8; 4],
}

/// A host security module over a key store.
pub struct Hsm<K: KeyStore> {
    keys: K,
}

fn alg(id: u8) -> Result<Algorithm, HsmError> {
    Algorithm::from_id(id).ok_or(HsmError::UnknownAlgorithm(id))
}

impl<K: KeyStore> Hsm<K> {
    /// An HSM over `keys`.
    pub fn new(keys: K) -> Hsm<K> {
        Hsm { keys }
    }

    /// Verifies the card's MAC1 and returns MAC2 for CREDIT FOR LOAD.
    pub fn authorize_load(&self, r: &LoadRequest) -> Result<[u8; 4], HsmError> {
        let algorithm = alg(r.init.algorithm)?;
        let amount = r
            .amount
            .to_card_bytes()
            .ok_or(HsmError::Amount(r.amount.get()))?;
        let balance = r
            .init
            .balance
            .to_card_bytes()
            .ok_or(HsmError::Amount(r.init.balance.get()))?;
        let req = KeyRequest {
            card: r.card,
            usage: KeyUsage::Load,
            algorithm,
            version: r.init.key_version,
        };
        let key = self.keys.session_key(
            &req,
            load_session_input(r.init.random, r.init.online_counter),
        )?;
        let mac1 = key.mac_parts(&[&balance, &amount, &[r.tx_type], &r.terminal]);
        if !mac_eq(&mac1, &r.init.mac1) {
            return Err(HsmError::BadMac1);
        }
        Ok(key.mac_parts(&[&amount, &[r.tx_type], &r.terminal, &r.when.to_bcd()]))
    }

    /// Verifies a load TAC: new balance ‖ online counter before ‖ amount ‖ type ‖ terminal ‖
    /// date ‖ time.
    pub fn verify_load_tac(&self, r: &LoadRequest, tac: &[u8; 4]) -> Result<bool, HsmError> {
        let algorithm = alg(r.init.algorithm)?;
        let new_balance = r
            .init
            .balance
            .checked_add(r.amount)
            .and_then(Fen::to_card_bytes)
            .ok_or(HsmError::Amount(r.amount.get()))?;
        let amount = r
            .amount
            .to_card_bytes()
            .ok_or(HsmError::Amount(r.amount.get()))?;
        let req = KeyRequest {
            card: r.card,
            usage: KeyUsage::Tac,
            algorithm,
            version: r.init.key_version,
        };
        let key = self.keys.tac_key(&req)?;
        let expected = key.mac_parts(&[
            &new_balance,
            &r.init.online_counter.to_be_bytes(),
            &amount,
            &[r.tx_type],
            &r.terminal,
            &r.when.to_bcd(),
        ]);
        Ok(mac_eq(&expected, tac))
    }

    /// Verifies a purchase TAC.
    pub fn verify_purchase_tac(&self, t: &PurchaseTac) -> Result<bool, HsmError> {
        let algorithm = alg(t.algorithm)?;
        let amount = t
            .amount
            .to_card_bytes()
            .ok_or(HsmError::Amount(t.amount.get()))?;
        let req = KeyRequest {
            card: t.card,
            usage: KeyUsage::Tac,
            algorithm,
            version: t.key_version,
        };
        let key = self.keys.tac_key(&req)?;
        let dt = t.when.to_bcd();
        let expected =
            key.mac_parts(&[&amount, &[t.tx_type], &t.terminal, &t.terminal_serial, &dt]);
        Ok(mac_eq(&expected, &t.tac))
    }

    /// The line-protection MAC for an administrative command (APPLICATION BLOCK / UNBLOCK,
    /// UPDATE BINARY / RECORD): `header_and_data` is CLA INS P1 P2 Lc ‖ data, Lc counting the MAC.
    pub fn admin_mac(
        &self,
        card: CardRef,
        algorithm: Algorithm,
        challenge: [u8; 4],
        header_and_data: &[u8],
    ) -> Result<[u8; 4], HsmError> {
        let req = KeyRequest {
            card,
            usage: KeyUsage::Maintenance,
            algorithm,
            version: crate::keystore::KEY_VERSION,
        };
        Ok(self.keys.line_mac(&req, challenge, header_and_data)?)
    }
}
