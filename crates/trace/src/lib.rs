//! The trace verifier (`onecard trace verify`): reads an APDU trace of a real card and a gate or
//! host, and for every load and purchase in it recomputes MAC1, MAC2 and TAC with the card's
//! keys, so integrators can see which side of a failing transaction is wrong.
//!
//! - [`Trace::parse`]: the text format, one APDU per line: `>` command, `<` response (data and
//!   status word), hex with optional spaces, `#` comments (whole line or trailing). Bounded by
//!   [`MAX_TRACE_BYTES`] and [`MAX_LINE_LEN`]; every error names its line.
//! - [`Keys::from_json`]: KEYS.json, `{"load", "purchase", "tac"}` card keys in hex, optional
//!   `"algorithm"` (`3des` / `sm4`, else the INIT response's algorithm-id byte decides); any
//!   other field is an error.
//! - [`verify`]: the replay, giving one [`TxReport`] per transaction; [`exit_code`] turns them
//!   into the CLI's exit status (0 nothing bad, 1 something bad; 2 is for unreadable input).
//!
//! One report serialises to one JSON line, for example:
//!
//! ```text
//! {"kind":"load","family":"t-union","type":"02","amount_fen":7223,"balance_before_fen":0,
//!  "balance_after_fen":7223,"counter":0,"key_version":1,"algorithm":"3des",
//!  "terminal":"000001000050","terminal_serial":null,"date":"20140825","time":"103100",
//!  "mac1":"ok","mac2":"ok","tac":"ok","outcome":"completed","card_sw":"9000",
//!  "init_line":16,"final_line":20,"prove_line":null,"notes":[]}
//! ```
//!
//! How the trace is read:
//! - `61xx` answers followed by GET RESPONSE (`00 C0`) are joined; `6Cxx` answers mean "not
//!   executed" and the re-sent command is the one that counts.
//! - A trace with GET MESSAGE (`80 CA 00 00 09`) is MoHURD: purchase MAC1 covers the 9-byte
//!   security code (the latest one before the DEBIT, else the first in the trace).
//! - A final command without an answer is `torn`; a later GET TRANSACTION PROVE for the counter
//!   after it (`80 5A 00 type 02 counter+1`, answer MAC2 ‖ TAC) supplies the missing values.
//! - Everything else (selects, reads, VERIFY, GET BALANCE, `80 DC`, …) passes through.
//!
//! All cryptography comes from `onecard-crypto` and all APDU decoding from `onecard-proto`; this
//! crate only follows the sessions through the trace. MACs are compared in constant time
//! ([`onecard_crypto::mac_eq`]), as a verifier fed attacker-made traces should.

mod report;
mod trace;
mod verify;

pub use onecard_sam::keyfile::{Keys, KeysError, MAX_KEYS_BYTES};
pub use report::{
    exit_code, Check, Family, Kind, Outcome, TxReport, EXIT_BAD, EXIT_OK, EXIT_UNREADABLE,
};
pub use trace::{Direction, Entry, Trace, TraceError, MAX_LINE_LEN, MAX_TRACE_BYTES};
pub use verify::verify;
