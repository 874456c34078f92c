//! What the verifier says about each transaction: one [`TxReport`], one JSON line.

use serde::{Deserialize, Serialize};

/// The verdict on one MAC or TAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    /// Present in the trace and equal to the value recomputed with the keys.
    Ok,
    /// Present and different from the recomputed value.
    Bad,
    /// Not in the trace (no response, an error status word, a torn transaction never proven).
    Absent,
    /// Present but not checkable: the algorithm id is unknown and KEYS.json does not name one,
    /// or a MoHURD trace whose GET MESSAGE failed, so the security code under MAC1 is unknown.
    /// The `notes` say which.
    Unchecked,
}

/// What kind of transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// INITIALIZE FOR LOAD + CREDIT FOR LOAD (type 01 ED, 02 EP).
    Load,
    /// INITIALIZE FOR PURCHASE + DEBIT (type 05 ED, 06 EP).
    Purchase,
    /// INITIALIZE FOR CAPP PURCHASE + DEBIT (type 09).
    CappPurchase,
}

/// Which MAC1 formula applies to purchases (B.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    /// No GET MESSAGE in the trace: plain PBOC / T-Union MAC1.
    #[serde(rename = "t-union")]
    TUnion,
    /// The trace has GET MESSAGE (`80 CA 00 00 09`): MAC1 covers the 9-byte security code.
    #[serde(rename = "mohurd")]
    Mohurd,
}

/// How the transaction ended, as far as the trace shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The final command (CREDIT / DEBIT) was answered `9000` with its data.
    Completed,
    /// The card refused the final command (`card_sw` says how); nothing was committed.
    Refused,
    /// The final command got no usable answer: no response line, or `61xx` never fetched.
    Torn,
    /// Torn, then resolved by GET TRANSACTION PROVE (`prove_line`).
    Proven,
    /// A load whose INIT was answered but no CREDIT followed.
    Aborted,
}

/// The verdict on one load or purchase. Hex fields are upper-case without spaces; BCD date and
/// time are given as their digits (`20140825`, `103100`) so even invalid BCD stays readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxReport {
    /// Load, purchase or CAPP purchase.
    pub kind: Kind,
    /// T-Union or MoHURD MAC1 formula.
    pub family: Family,
    /// Transaction type identifier, hex (`02`, `06`, `09`, …).
    #[serde(rename = "type")]
    pub tx_type: String,
    /// Amount from the INIT command.
    pub amount_fen: u64,
    /// Balance from the INIT response.
    pub balance_before_fen: u64,
    /// Balance after, when the card committed (completed or proven) and it is not negative.
    pub balance_after_fen: Option<u64>,
    /// Online (load) or offline (purchase) counter from the INIT response: the value *before*
    /// the transaction.
    pub counter: u16,
    /// Key version from the INIT response.
    pub key_version: u8,
    /// `3des` or `sm4`, the algorithm the checks used; `null` if none could be chosen.
    pub algorithm: Option<String>,
    /// Terminal number (6 bytes, hex).
    pub terminal: String,
    /// Terminal transaction serial (purchases; `null` for loads).
    pub terminal_serial: Option<String>,
    /// Date from CREDIT / DEBIT, `YYYYMMDD`.
    pub date: Option<String>,
    /// Time from CREDIT / DEBIT, `hhmmss`.
    pub time: Option<String>,
    /// MAC1 (load: in the INIT response; purchase: in DEBIT).
    pub mac1: Check,
    /// MAC2 (load: in CREDIT, and in GET TRANSACTION PROVE if used; purchase: DEBIT response or
    /// PROVE).
    pub mac2: Check,
    /// TAC (CREDIT / DEBIT response or GET TRANSACTION PROVE).
    pub tac: Check,
    /// How the transaction ended.
    pub outcome: Outcome,
    /// Status word of the final command's response, hex; `null` if there was none.
    pub card_sw: Option<String>,
    /// Line of the INIT command.
    pub init_line: usize,
    /// Line of the CREDIT / DEBIT command.
    pub final_line: Option<usize>,
    /// Line of the GET TRANSACTION PROVE command that resolved a tear.
    pub prove_line: Option<usize>,
    /// Explanations for a human: disagreements between card and keys, unchecked values.
    pub notes: Vec<String>,
}

impl TxReport {
    /// Whether any of MAC1, MAC2 and TAC is [`Check::Bad`].
    pub fn has_bad(&self) -> bool {
        [self.mac1, self.mac2, self.tac].contains(&Check::Bad)
    }
}

/// Exit status when every check passed (or nothing was checkable).
pub const EXIT_OK: i32 = 0;
/// Exit status when at least one MAC1, MAC2 or TAC is bad.
pub const EXIT_BAD: i32 = 1;
/// Exit status for unreadable input: keys or trace file missing, bad JSON, malformed trace line.
pub const EXIT_UNREADABLE: i32 = 2;

/// The exit status for a verification: [`EXIT_BAD`] if any check is bad, else [`EXIT_OK`].
pub fn exit_code(reports: &[TxReport]) -> i32 {
    if reports.iter().any(TxReport::has_bad) {
        EXIT_BAD
    } else {
        EXIT_OK
    }
}
