//! E-purse cryptography on RustCrypto block ciphers (B.2 and Part A of `shared/spec/epurse.md`).
//!
//! - Session keys: 3DES-ECB of 8 bytes under a 16-byte card key (algorithm `00`), or the onecard
//!   SM4 profile (algorithm `04`): SM4-ECB of the same 8 bytes ‖ eight `00`, all 16 bytes kept.
//! - Transaction MACs (MAC1, MAC2, TAC): CBC-MAC, IV zero, padding `80 00…` always added, first
//!   4 bytes of the last block; single DES with an 8-byte session key, or SM4.
//! - TAC key: DTK left XOR right (3DES), the DTK itself (SM4).
//! - Line protection for `04`/`84` commands: ISO 9797-1 algorithm 3 (retail MAC) with
//!   IV = challenge ‖ `00000000`.
//! - Key diversification, two levels (Part A, decision 3).
//!
//! The onecard SM4 profile is onecard's own mirror of the 3DES scheme: not yet verified
//! against a real card, because no public SM4 e-purse trace exists.
//!
//! Keys never implement `Debug` or `Display` and are zeroized on drop; prepared ciphers come
//! from crates built with their `zeroize` feature.

use cipher::{Block, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use des::{Des, TdesEde2};
use sm4::Sm4;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Block-cipher family of a card's keys, as carried in the algorithm-id byte of INIT responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `00`: two-key triple DES with single-DES session keys (B.2).
    Tdes,
    /// `04`: the onecard SM4 profile (Part A, decision 2).
    Sm4,
}

impl Algorithm {
    /// The algorithm-id byte.
    pub fn id(self) -> u8 {
        match self {
            Algorithm::Tdes => 0x00,
            Algorithm::Sm4 => 0x04,
        }
    }

    /// The algorithm of an id byte, if onecard knows it.
    pub fn from_id(id: u8) -> Option<Algorithm> {
        match id {
            0x00 => Some(Algorithm::Tdes),
            0x04 => Some(Algorithm::Sm4),
            _ => None,
        }
    }

    /// The name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Tdes => "3des",
            Algorithm::Sm4 => "sm4",
        }
    }

    /// Parses `3des` or `sm4`.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "3des" => Some(Algorithm::Tdes),
            "sm4" => Some(Algorithm::Sm4),
            _ => None,
        }
    }
}

/// A 16-byte secret key: a card key (DLK, DPK, DTK, …) or an issuer master key.
///
/// Deliberately without `Debug`, `Display` or `Clone`-by-accident: copies are explicit through
/// [`Key16::duplicate`], and the bytes are zeroized when the value is dropped.
#[derive(Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Key16([u8; 16]);

impl Key16 {
    /// Wraps key bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Key16 {
        Key16(bytes)
    }

    /// The key bytes. Only for persisting a card's own keys in its state file and for the key
    /// store's import; never print or log them.
    pub fn expose_secret(&self) -> &[u8; 16] {
        &self.0
    }

    /// An explicit copy.
    pub fn duplicate(&self) -> Key16 {
        Key16(self.0)
    }
}

fn tdes(key: &Key16) -> TdesEde2 {
    TdesEde2::new(&key.0.into())
}

fn sm4(key: &[u8; 16]) -> Sm4 {
    Sm4::new(&(*key).into())
}

/// A card key with its cipher prepared, so repeated session-key derivations do not redo the
/// key schedule (a terminal or card derives one per transaction).
pub struct CardKey {
    algorithm: Algorithm,
    cipher: KeyCipher,
    tac: SessionKey,
}

enum KeyCipher {
    Tdes(TdesEde2),
    Sm4(Sm4),
}

impl CardKey {
    /// Prepares `key` for `algorithm`.
    pub fn new(algorithm: Algorithm, key: &Key16) -> CardKey {
        let cipher = match algorithm {
            Algorithm::Tdes => KeyCipher::Tdes(tdes(key)),
            Algorithm::Sm4 => KeyCipher::Sm4(sm4(&key.0)),
        };
        CardKey {
            algorithm,
            cipher,
            tac: SessionKey::tac(algorithm, key),
        }
    }

    /// The algorithm this key is used with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The session key for 8 bytes of session input (B.2.2, B.2.3; Part A decision 2).
    pub fn session_key(&self, input: [u8; 8]) -> SessionKey {
        match &self.cipher {
            KeyCipher::Tdes(c) => {
                let mut b = Block::<TdesEde2>::from(input);
                c.encrypt_block(&mut b);
                let mut k: [u8; 8] = b.into();
                let s = SessionKey::Des(Des::new(&k.into()));
                k.zeroize();
                s
            }
            KeyCipher::Sm4(c) => {
                let mut block = [0u8; 16];
                block[..8].copy_from_slice(&input);
                let mut b = Block::<Sm4>::from(block);
                c.encrypt_block(&mut b);
                let mut k: [u8; 16] = b.into();
                let s = SessionKey::Sm4(sm4(&k));
                k.zeroize();
                s
            }
        }
    }

    /// The TAC key derived from this key when it is a DTK.
    pub fn tac_key(&self) -> &SessionKey {
        &self.tac
    }

    /// Encrypts one 8-byte block with the whole key (3DES-ECB), or the first 8 bytes of the SM4
    /// encryption of the block padded with zeros. Used for EXTERNAL AUTHENTICATE cryptograms.
    pub fn encrypt8(&self, block: [u8; 8]) -> [u8; 8] {
        match &self.cipher {
            KeyCipher::Tdes(c) => {
                let mut b = Block::<TdesEde2>::from(block);
                c.encrypt_block(&mut b);
                b.into()
            }
            KeyCipher::Sm4(c) => {
                let mut full = [0u8; 16];
                full[..8].copy_from_slice(&block);
                let mut b = Block::<Sm4>::from(full);
                c.encrypt_block(&mut b);
                let out: [u8; 16] = b.into();
                let mut r = [0u8; 8];
                r.copy_from_slice(&out[..8]);
                r
            }
        }
    }
}

/// A prepared session key (or TAC key) that computes transaction MACs.
pub enum SessionKey {
    /// Single DES, 8-byte key.
    Des(Des),
    /// SM4, 16-byte key.
    Sm4(Sm4),
}

impl SessionKey {
    /// The TAC key of a DTK: left XOR right for 3DES, the DTK itself for SM4.
    pub fn tac(algorithm: Algorithm, dtk: &Key16) -> SessionKey {
        match algorithm {
            Algorithm::Tdes => {
                let mut k = [0u8; 8];
                for (i, b) in k.iter_mut().enumerate() {
                    *b = dtk.0[i] ^ dtk.0[i + 8];
                }
                let s = SessionKey::Des(Des::new(&k.into()));
                k.zeroize();
                s
            }
            Algorithm::Sm4 => SessionKey::Sm4(sm4(&dtk.0)),
        }
    }

    /// A single-DES session key from its 8 bytes (for test vectors and traces).
    pub fn des_from_bytes(key: [u8; 8]) -> SessionKey {
        SessionKey::Des(Des::new(&key.into()))
    }

    /// CBC-MAC with IV zero and `80 00…` padding, first 4 bytes of the last block.
    pub fn mac(&self, data: &[u8]) -> [u8; 4] {
        match self {
            SessionKey::Des(c) => first4(&cbc_mac::<Des, 8>(c, [0; 8], data)),
            SessionKey::Sm4(c) => first4(&cbc_mac::<Sm4, 16>(c, [0; 16], data)),
        }
    }

    /// MAC over the concatenation of `parts`, without building it first.
    pub fn mac_parts(&self, parts: &[&[u8]]) -> [u8; 4] {
        let mut buf = [0u8; 64];
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > buf.len() {
            return self.mac(&parts.concat());
        }
        let mut at = 0;
        for p in parts {
            buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        self.mac(&buf[..len])
    }
}

fn first4(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}

/// CBC-MAC over `data` padded with `80 00…` (ISO 9797-1 padding method 2), returning the last
/// cipher block.
fn cbc_mac<C, const N: usize>(cipher: &C, iv: [u8; N], data: &[u8]) -> [u8; N]
where
    C: BlockCipherEncrypt,
    Block<C>: From<[u8; N]> + Into<[u8; N]>,
{
    let mut state = iv;
    let mut chunks = data.chunks_exact(N);
    for chunk in &mut chunks {
        for (s, d) in state.iter_mut().zip(chunk) {
            *s ^= d;
        }
        state = encrypt::<C, N>(cipher, state);
    }
    let rest = chunks.remainder();
    let mut last = [0u8; N];
    last[..rest.len()].copy_from_slice(rest);
    last[rest.len()] = 0x80;
    for (s, d) in state.iter_mut().zip(last) {
        *s ^= d;
    }
    encrypt::<C, N>(cipher, state)
}

fn encrypt<C, const N: usize>(cipher: &C, block: [u8; N]) -> [u8; N]
where
    C: BlockCipherEncrypt,
    Block<C>: From<[u8; N]> + Into<[u8; N]>,
{
    let mut b = Block::<C>::from(block);
    cipher.encrypt_block(&mut b);
    b.into()
}

/// Line-protection MAC for `04`/`84` commands (B.2.5): `data` is CLA INS P1 P2 Lc ‖ data with Lc
/// counting the 4 MAC bytes; IV = challenge ‖ zeros.
///
/// 3DES: ISO 9797-1 algorithm 3 (retail MAC). SM4 (onecard profile): SM4 CBC-MAC with the
/// 16-byte key and IV = challenge ‖ twelve zeros.
pub fn line_mac(algorithm: Algorithm, key: &Key16, challenge: [u8; 4], data: &[u8]) -> [u8; 4] {
    match algorithm {
        Algorithm::Tdes => {
            let mut k1 = [0u8; 8];
            k1.copy_from_slice(&key.0[..8]);
            let mut k2 = [0u8; 8];
            k2.copy_from_slice(&key.0[8..]);
            let left = Des::new(&k1.into());
            let right = Des::new(&k2.into());
            k1.zeroize();
            k2.zeroize();
            let mut iv = [0u8; 8];
            iv[..4].copy_from_slice(&challenge);
            let mut b = Block::<Des>::from(cbc_mac::<Des, 8>(&left, iv, data));
            right.decrypt_block(&mut b);
            left.encrypt_block(&mut b);
            first4(&b)
        }
        Algorithm::Sm4 => {
            let mut iv = [0u8; 16];
            iv[..4].copy_from_slice(&challenge);
            first4(&cbc_mac::<Sm4, 16>(&sm4(&key.0), iv, data))
        }
    }
}

/// One level of key diversification (B.2.6, Part A decision 3):
/// 3DES `E(K, D) ‖ E(K, NOT D)`; SM4 `SM4(K, D ‖ NOT D)`.
pub fn diversify(algorithm: Algorithm, key: &Key16, factor: [u8; 8]) -> Key16 {
    let not = factor.map(|b| !b);
    let mut out = [0u8; 16];
    match algorithm {
        Algorithm::Tdes => {
            let c = tdes(key);
            out[..8].copy_from_slice(&encrypt::<TdesEde2, 8>(&c, factor));
            out[8..].copy_from_slice(&encrypt::<TdesEde2, 8>(&c, not));
        }
        Algorithm::Sm4 => {
            let mut d = [0u8; 16];
            d[..8].copy_from_slice(&factor);
            d[8..].copy_from_slice(&not);
            out = encrypt::<Sm4, 16>(&sm4(&key.0), d);
        }
    }
    Key16(out)
}

/// A card key from an issuer master key: issuer level first, then card level.
/// `issuer` is 0x15 bytes 0..8, `card` is 0x15 bytes 12..20.
pub fn derive_card_key(
    algorithm: Algorithm,
    master: &Key16,
    issuer: [u8; 8],
    card: [u8; 8],
) -> Key16 {
    let issuer_key = diversify(algorithm, master, issuer);
    diversify(algorithm, &issuer_key, card)
}

/// Session-key input of a load: random ‖ online counter ‖ `80 00` (B.2.2).
pub fn load_session_input(random: [u8; 4], online_counter: u16) -> [u8; 8] {
    let c = online_counter.to_be_bytes();
    [
        random[0], random[1], random[2], random[3], c[0], c[1], 0x80, 0x00,
    ]
}

/// Session-key input of a purchase: random ‖ offline counter ‖ last 2 bytes of the terminal
/// transaction serial (B.2.3).
pub fn purchase_session_input(
    random: [u8; 4],
    offline_counter: u16,
    terminal_serial: [u8; 4],
) -> [u8; 8] {
    let c = offline_counter.to_be_bytes();
    [
        random[0],
        random[1],
        random[2],
        random[3],
        c[0],
        c[1],
        terminal_serial[2],
        terminal_serial[3],
    ]
}

/// Constant-time comparison of two MACs, so a forged MAC learns nothing from timing.
pub fn mac_eq(a: &[u8; 4], b: &[u8; 4]) -> bool {
    let mut diff = 0u8;
    for i in 0..4 {
        diff |= a[i] ^ b[i];
    }
    diff == 0
}

/// The key set of one issuer (master keys) or of one card (card keys): the keys of the EP
/// application by usage.
pub struct KeySet {
    /// Algorithm of every key.
    pub algorithm: Algorithm,
    /// Load key (DLK, or its master).
    pub load: Key16,
    /// Purchase key (DPK, or its master).
    pub purchase: Key16,
    /// TAC key (DTK, or its master).
    pub tac: Key16,
    /// Application maintenance key (block, unblock, updates with MAC), if issued.
    pub maintenance: Option<Key16>,
}

/// What a key is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUsage {
    /// Load (DLK).
    Load,
    /// Purchase (DPK).
    Purchase,
    /// TAC (DTK).
    Tac,
    /// Application maintenance.
    Maintenance,
}

impl KeySet {
    /// The key for `usage`, if the set has one.
    pub fn get(&self, usage: KeyUsage) -> Option<&Key16> {
        match usage {
            KeyUsage::Load => Some(&self.load),
            KeyUsage::Purchase => Some(&self.purchase),
            KeyUsage::Tac => Some(&self.tac),
            KeyUsage::Maintenance => self.maintenance.as_ref(),
        }
    }

    /// The card-level set of the card with issuer id `issuer` and 0x15 bytes 12..20 `card`,
    /// when `self` holds master keys (Part A, decision 3).
    pub fn derive(&self, issuer: [u8; 8], card: [u8; 8]) -> KeySet {
        let d = |k: &Key16| derive_card_key(self.algorithm, k, issuer, card);
        KeySet {
            algorithm: self.algorithm,
            load: d(&self.load),
            purchase: d(&self.purchase),
            tac: d(&self.tac),
            maintenance: self.maintenance.as_ref().map(d),
        }
    }

    /// An explicit copy.
    pub fn duplicate(&self) -> KeySet {
        KeySet {
            algorithm: self.algorithm,
            load: self.load.duplicate(),
            purchase: self.purchase.duplicate(),
            tac: self.tac.duplicate(),
            maintenance: self.maintenance.as_ref().map(Key16::duplicate),
        }
    }
}
