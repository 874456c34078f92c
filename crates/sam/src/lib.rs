//! Security modules: where onecard's keys live and work.
//!
//! - [`KeyStore`]: card-key operations asked by card identity; [`SoftwareKeyStore`] derives
//!   card keys from issuer master keys (Part A, decision 3) and never hands a master key out.
//! - [`Psam`]: the terminal's module: terminal number, 4-byte transaction serials that never
//!   repeat ([`FileSerials`] reserves them durably in blocks), MAC1 and the MAC2 check,
//!   including the MoHURD security-code path.
//! - [`Hsm`]: the host's module: load authorisation (MAC1 check, MAC2) and TAC verification.

pub mod hsm;
pub mod keyfile;
pub mod keystore;
pub mod psam;

pub use hsm::{Hsm, HsmError, LoadRequest, PurchaseTac};
pub use keystore::{CardRef, KeyRequest, KeyStore, KeyStoreError, SoftwareKeyStore, KEY_VERSION};
pub use psam::{
    FileSerials, MemorySerials, Psam, PsamError, PsamPurchase, PurchaseRequest, SerialSource,
};
