//! Terminal-side e-purse flows, written once against [`CardTransport`], so the same code drives
//! the in-process virtual card, a PC/SC reader with a phone on it, or a test link that tears.
//!
//! - [`CardSession::open`] selects the application (T-Union through PPSE, or MoHURD) and reads
//!   the card identity from the FCI.
//! - [`CardSession::load`] runs a host-authorised load; [`CardSession::purchase`] a purchase or
//!   compound purchase with the PSAM.
//! - Tear recovery follows B.5.2: a lost DEBIT or CREDIT answer becomes a [`Pending`]
//!   transaction, resolved on the next contact of the same card with
//!   [`CardSession::resolve`] (re-INIT to read the counter, then GET TRANSACTION PROVE); a
//!   terminal never debits twice.

use onecard_proto::commands::{
    CardCommand, InitData, InitLoadResponse, InitPurchaseResponse, Purse, RecordSelector, PPSE,
};
use onecard_proto::files::{sfi, tx_type, AppInfo, LogRecord};
use onecard_proto::tlv::Tlv;
use onecard_proto::{CardTransport, DateTime, Fen, Response, StatusWord, TransportError};
use onecard_sam::{
    CardRef, Hsm, HsmError, KeyStore, LoadRequest, Psam, PsamError, PurchaseRequest, PurchaseTac,
    SerialSource,
};
use thiserror::Error;

pub use onecard_proto::Family;

/// Why a terminal flow stopped.
#[derive(Debug, Error)]
pub enum TerminalError {
    /// The link failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The card answered with an unexpected status word.
    #[error("{step}: card answered {sw}")]
    Card {
        /// The step.
        step: &'static str,
        /// The status word.
        sw: StatusWord,
    },
    /// The card answered 9000 with data of the wrong shape.
    #[error("{0}: malformed answer")]
    Malformed(&'static str),
    /// No e-purse application onecard knows.
    #[error("no T-Union or MoHURD e-purse application on this card")]
    NoApplication,
    /// The application is blocked.
    #[error("application blocked")]
    Blocked,
    /// Not enough money on the card.
    #[error("insufficient balance")]
    InsufficientBalance,
    /// The PSAM refused.
    #[error("PSAM: {0}")]
    Psam(#[from] PsamError),
    /// The host refused.
    #[error("host: {0}")]
    Host(#[from] HsmError),
    /// The caller's `before_debit` step failed; DEBIT was not sent.
    #[error("aborted before DEBIT: {0}")]
    Aborted(String),
    /// A pending transaction belongs to another card.
    #[error("pending transaction belongs to another card")]
    DifferentCard,
}

/// Result of a terminal flow.
pub type Result<T> = std::result::Result<T, TerminalError>;

/// An open dialogue with one card, application selected.
pub struct CardSession<T: CardTransport> {
    link: T,
    /// Family.
    pub family: Family,
    /// The card's 0x15 file (from FCI tag 9F0C).
    pub info: AppInfo,
    apdus: u32,
    /// Reused for encoding every command of the session.
    buf: Vec<u8>,
}

/// Encodes `cmd` into `buf` and exchanges it.
fn send<T: CardTransport>(
    link: &mut T,
    buf: &mut Vec<u8>,
    cmd: &CardCommand<'_>,
) -> std::result::Result<Response, TransportError> {
    buf.clear();
    cmd.encode_into(buf);
    Ok(Response::from_vec(link.transmit(buf)?)?)
}

fn expect_ok(step: &'static str, r: Response) -> Result<Vec<u8>> {
    match r.sw {
        StatusWord::Ok => Ok(r.data),
        StatusWord::InsufficientBalance => Err(TerminalError::InsufficientBalance),
        StatusWord::FunctionNotSupported if step.starts_with("INIT") => Err(TerminalError::Blocked),
        sw => Err(TerminalError::Card { step, sw }),
    }
}

/// A completed purchase, with everything clearing needs (B.4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseReceipt {
    /// The card.
    pub card: CardRef,
    /// The application serial.
    pub serial: [u8; 10],
    /// Family.
    pub family: Family,
    /// Offline counter from INIT (before).
    pub counter: u16,
    /// 06 or 09.
    pub tx_type: u8,
    /// Amount.
    pub amount: Fen,
    /// Balance before.
    pub balance_before: Fen,
    /// Balance after.
    pub balance_after: Fen,
    /// Terminal number.
    pub terminal: [u8; 6],
    /// Terminal transaction serial.
    pub terminal_serial: [u8; 4],
    /// Date and time sent to the card.
    pub when: DateTime,
    /// TAC.
    pub tac: [u8; 4],
    /// MAC2 (from DEBIT, or from GET TRANSACTION PROVE after a tear).
    pub mac2: [u8; 4],
    /// True if the PSAM checked MAC2 in the same session; false for recovered transactions.
    pub mac2_verified: bool,
    /// Key version.
    pub key_version: u8,
    /// Algorithm id.
    pub algorithm: u8,
    /// The 80DC record images written with this debit: (P1, SFI, image).
    pub records: Vec<(u8, u8, Vec<u8>)>,
    /// MoHURD security code, if any.
    pub security_code: Option<[u8; 9]>,
}

impl PurchaseReceipt {
    /// What the host needs to verify this receipt's TAC.
    pub fn tac_check(&self) -> PurchaseTac {
        PurchaseTac {
            card: self.card,
            algorithm: self.algorithm,
            key_version: self.key_version,
            amount: self.amount,
            tx_type: self.tx_type,
            terminal: self.terminal,
            terminal_serial: self.terminal_serial,
            when: self.when,
            tac: self.tac,
        }
    }
}

/// A transaction whose final answer was lost: the card may or may not have committed it.
/// A terminal stores it durably and resolves it on the next contact of the same card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The receipt as it will be if the card committed (TAC and MAC2 still unknown).
    pub receipt: PurchaseReceipt,
}

/// The outcome of a purchase attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurchaseOutcome {
    /// The debit happened and its answer arrived.
    Done(PurchaseReceipt),
    /// The DEBIT answer was lost: resolve with [`CardSession::resolve`].
    Pending(Pending),
}

/// What the next contact learned about a pending transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The debit happened; the receipt now carries TAC and MAC2 from GET TRANSACTION PROVE.
    Debited(PurchaseReceipt),
    /// The card never committed it: nothing was debited.
    NotDebited,
    /// The card has moved on (more transactions since) and no longer holds the proof: the
    /// host must reconcile from the card's later transactions. Nothing is assumed.
    Unresolvable {
        /// Offline counter now on the card.
        counter_now: u16,
    },
}

/// A completed load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReceipt {
    /// Online counter before.
    pub counter: u16,
    /// Amount.
    pub amount: Fen,
    /// Balance before.
    pub balance_before: Fen,
    /// Balance after.
    pub balance_after: Fen,
    /// TAC.
    pub tac: [u8; 4],
    /// True if the host verified the TAC.
    pub tac_verified: bool,
}

/// The outcome of a load attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadOutcome {
    /// Loaded.
    Done(LoadReceipt),
    /// The CREDIT answer was lost: resolve with [`CardSession::resolve_load`].
    Pending(PendingLoad),
}

/// A load whose CREDIT answer was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLoad {
    /// Application serial.
    pub serial: [u8; 10],
    /// Online counter before.
    pub counter: u16,
    /// Amount.
    pub amount: Fen,
    /// Balance before.
    pub balance_before: Fen,
    /// MAC2 the host sent.
    pub mac2: [u8; 4],
}

/// One record to write with UPDATE CAPP DATA CACHE before the debit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CappRecord {
    /// P1: record id, or 00 to append to a cyclic file.
    pub p1: u8,
    /// SFI.
    pub sfi: u8,
    /// Record image.
    pub image: Vec<u8>,
}

impl<T: CardTransport> CardSession<T> {
    /// Selects the e-purse: T-Union through PPSE (falling back to the ADF directly), then
    /// MoHURD. Reads the identity from the FCI.
    pub fn open(mut link: T) -> Result<CardSession<T>> {
        let mut apdus = 0;
        let mut buf = Vec::with_capacity(272);
        let mut select = |link: &mut T, buf: &mut Vec<u8>, name: &[u8]| -> Result<Response> {
            apdus += 1;
            Ok(send(link, buf, &CardCommand::SelectByName(name))?)
        };
        let ppse = select(&mut link, &mut buf, PPSE)?;
        let all = [Family::TUnion, Family::Mohurd];
        // A card that lists the T-Union EP in its PPSE is T-Union; otherwise try both ADFs.
        let candidates = if ppse.sw.is_ok() { &all[..1] } else { &all[..] };
        for &family in candidates {
            let r = select(&mut link, &mut buf, family.aid())?;
            match r.sw {
                StatusWord::Ok | StatusWord::FunctionNotSupported => {
                    let fci =
                        Tlv::find(&r.data, 0x9F0C).map_err(|_| TerminalError::Malformed("FCI"))?;
                    let info =
                        AppInfo::parse(fci.ok_or(TerminalError::Malformed("FCI without 9F0C"))?)
                            .map_err(|_| TerminalError::Malformed("FCI 9F0C"))?;
                    if r.sw != StatusWord::Ok {
                        return Err(TerminalError::Blocked);
                    }
                    return Ok(CardSession {
                        link,
                        family,
                        info,
                        apdus,
                        buf,
                    });
                }
                StatusWord::FileNotFound => continue,
                sw => return Err(TerminalError::Card { step: "SELECT", sw }),
            }
        }
        Err(TerminalError::NoApplication)
    }

    /// The card's identity for key derivation.
    pub fn card_ref(&self) -> CardRef {
        CardRef {
            issuer: self.info.issuer,
            card_factor: self.info.card_factor(),
        }
    }

    /// APDUs exchanged so far.
    pub fn apdu_count(&self) -> u32 {
        self.apdus
    }

    /// The link, for callers that drive extra commands.
    pub fn link(&mut self) -> &mut T {
        &mut self.link
    }

    /// Ends the session, returning the link.
    pub fn into_link(self) -> T {
        self.link
    }

    /// Sends one typed command.
    pub fn exchange(&mut self, cmd: &CardCommand<'_>) -> Result<Response> {
        self.apdus += 1;
        Ok(send(&mut self.link, &mut self.buf, cmd)?)
    }

    /// GET BALANCE (bit 31 masked, as for any issuer's card).
    pub fn balance(&mut self) -> Result<Fen> {
        let d = expect_ok(
            "GET BALANCE",
            self.exchange(&CardCommand::GetBalance(Purse::Ep))?,
        )?;
        let b: [u8; 4] = d
            .as_slice()
            .try_into()
            .map_err(|_| TerminalError::Malformed("GET BALANCE"))?;
        Ok(Fen::from_foreign_balance(b))
    }

    /// Reads one record of `sfi`.
    pub fn read_record(&mut self, sfi: u8, n: u8) -> Result<Option<Vec<u8>>> {
        let r = self.exchange(&CardCommand::ReadRecord {
            sfi,
            selector: RecordSelector::One(n),
            len: 256,
        })?;
        match r.sw {
            StatusWord::RecordNotFound => Ok(None),
            _ => expect_ok("READ RECORD", r).map(Some),
        }
    }

    /// The 0x18 transaction log, newest first.
    pub fn read_log(&mut self) -> Result<Vec<LogRecord>> {
        let mut out = Vec::new();
        for n in 1..=10u8 {
            match self.read_record(sfi::LOG, n)? {
                None => break,
                Some(b) => out.push(
                    LogRecord::parse(&b).map_err(|_| TerminalError::Malformed("0x18 record"))?,
                ),
            }
        }
        Ok(out)
    }

    /// Reads a binary file by SFI.
    pub fn read_binary(&mut self, sfi: u8) -> Result<Vec<u8>> {
        expect_ok(
            "READ BINARY",
            self.exchange(&CardCommand::ReadBinary {
                sfi,
                offset: 0,
                len: 256,
            })?,
        )
    }

    fn security_code(&mut self) -> Result<Option<[u8; 9]>> {
        if self.family != Family::Mohurd {
            return Ok(None);
        }
        let d = expect_ok("GET MESSAGE", self.exchange(&CardCommand::GetMessage)?)?;
        let code: [u8; 9] = d
            .as_slice()
            .try_into()
            .map_err(|_| TerminalError::Malformed("GET MESSAGE"))?;
        Ok(Some(code))
    }

    fn init_purchase(
        &mut self,
        capp: bool,
        terminal: [u8; 6],
        amount: Fen,
    ) -> Result<InitPurchaseResponse> {
        let init = InitData {
            key_index: 1,
            amount,
            terminal,
        };
        let cmd = if capp {
            CardCommand::InitCappPurchase(init)
        } else {
            CardCommand::InitPurchase(Purse::Ep, init)
        };
        let d = expect_ok("INIT FOR PURCHASE", self.exchange(&cmd)?)?;
        InitPurchaseResponse::parse(&d).ok_or(TerminalError::Malformed("INIT FOR PURCHASE"))
    }

    /// A purchase (`capp` = `None`, type 06) or compound purchase (`Some(records)`, type 09,
    /// the 80DC records written atomically with the debit). Never sends DEBIT twice: a lost answer
    /// becomes [`PurchaseOutcome::Pending`].
    pub fn purchase<K: KeyStore, S: SerialSource>(
        &mut self,
        psam: &mut Psam<K, S>,
        amount: Fen,
        when: DateTime,
        capp: Option<&[CappRecord]>,
    ) -> Result<PurchaseOutcome> {
        self.purchase_with(psam, amount, when, capp, &mut |_| Ok(()))
    }

    /// [`purchase`](Self::purchase), calling `before_debit` with the receipt-to-be (no TAC yet)
    /// after every check and right before DEBIT is sent: where a gate makes its pending record
    /// durable (B.5.2). If it fails, DEBIT is not sent and nothing is debited.
    pub fn purchase_with<K: KeyStore, S: SerialSource>(
        &mut self,
        psam: &mut Psam<K, S>,
        amount: Fen,
        when: DateTime,
        capp: Option<&[CappRecord]>,
        before_debit: &mut dyn FnMut(&PurchaseReceipt) -> std::result::Result<(), String>,
    ) -> Result<PurchaseOutcome> {
        let records = capp.unwrap_or(&[]);
        self.purchase_planned(
            psam,
            amount,
            when,
            capp.is_some(),
            &mut |_| Ok(records.to_vec()),
            before_debit,
        )
    }

    /// The general purchase: `plan` sees the card's INITIALIZE answer (balance, counter) before
    /// anything is committed and returns the 80DC records to write, or refuses (DEBIT is then
    /// never sent); `before_debit` runs last, right before DEBIT. A gate plans this way so that
    /// it needs no separate GET BALANCE: one APDU less per tap.
    pub fn purchase_planned<K: KeyStore, S: SerialSource>(
        &mut self,
        psam: &mut Psam<K, S>,
        amount: Fen,
        when: DateTime,
        capp: bool,
        plan: &mut dyn FnMut(&InitPurchaseResponse) -> std::result::Result<Vec<CappRecord>, String>,
        before_debit: &mut dyn FnMut(&PurchaseReceipt) -> std::result::Result<(), String>,
    ) -> Result<PurchaseOutcome> {
        let security_code = self.security_code()?;
        let terminal = psam.terminal();
        let init = self.init_purchase(capp, terminal, amount)?;
        let records = plan(&init).map_err(TerminalError::Aborted)?;
        if !capp && !records.is_empty() {
            return Err(TerminalError::Aborted(
                "80DC records need a compound purchase".into(),
            ));
        }
        let tx = if capp {
            tx_type::CAPP_PURCHASE
        } else {
            tx_type::EP_PURCHASE
        };
        let auth = psam.begin_purchase(&PurchaseRequest {
            card: self.card_ref(),
            init,
            amount,
            tx_type: tx,
            when,
            security_code,
        })?;
        for r in &records {
            let cmd = CardCommand::UpdateCappCache {
                p1: r.p1,
                sfi: r.sfi,
                record: &r.image,
            };
            expect_ok("UPDATE CAPP DATA CACHE", self.exchange(&cmd)?)?;
        }
        let dt = when.to_bcd();
        let mut receipt = PurchaseReceipt {
            card: self.card_ref(),
            serial: self.info.serial,
            family: self.family,
            counter: init.offline_counter,
            tx_type: tx,
            amount,
            balance_before: init.balance,
            balance_after: init
                .balance
                .checked_sub(amount)
                .ok_or(TerminalError::InsufficientBalance)?,
            terminal,
            terminal_serial: auth.terminal_serial,
            when,
            tac: [0; 4],
            mac2: [0; 4],
            mac2_verified: false,
            key_version: init.key_version,
            algorithm: init.algorithm,
            records: records
                .into_iter()
                .map(|r| (r.p1, r.sfi, r.image))
                .collect(),
            security_code,
        };
        before_debit(&receipt).map_err(TerminalError::Aborted)?;
        let debit = CardCommand::Debit {
            terminal_serial: auth.terminal_serial,
            date: [dt[0], dt[1], dt[2], dt[3]],
            time: [dt[4], dt[5], dt[6]],
            mac1: auth.mac1,
        };
        self.apdus += 1;
        let rsp = match send(&mut self.link, &mut self.buf, &debit) {
            // 6581: the card failed to commit and may or may not hold the debit: as unknown as
            // a lost answer.
            Ok(r) if r.sw == StatusWord::MemoryFailure => {
                return Ok(PurchaseOutcome::Pending(Pending { receipt }))
            }
            Ok(r) => r,
            Err(TransportError::CardLost) => {
                return Ok(PurchaseOutcome::Pending(Pending { receipt }))
            }
            Err(e) => return Err(e.into()),
        };
        let d = expect_ok("DEBIT", rsp)?;
        if d.len() != 8 {
            return Err(TerminalError::Malformed("DEBIT"));
        }
        receipt.tac.copy_from_slice(&d[0..4]);
        receipt.mac2.copy_from_slice(&d[4..8]);
        receipt.mac2_verified = auth.verify_mac2(&receipt.mac2);
        Ok(PurchaseOutcome::Done(receipt))
    }

    /// Resolves a pending purchase on this card (B.5.2): re-INIT to read the counter; if it
    /// moved by exactly one, GET TRANSACTION PROVE returns MAC2 ‖ TAC of the torn debit.
    pub fn resolve(&mut self, pending: &Pending) -> Result<Resolution> {
        let p = &pending.receipt;
        if p.serial != self.info.serial {
            return Err(TerminalError::DifferentCard);
        }
        let init =
            self.init_purchase(p.tx_type == tx_type::CAPP_PURCHASE, p.terminal, Fen::ZERO)?;
        if init.offline_counter == p.counter {
            return Ok(Resolution::NotDebited);
        }
        if init.offline_counter != p.counter.wrapping_add(1) {
            return Ok(Resolution::Unresolvable {
                counter_now: init.offline_counter,
            });
        }
        let cmd = CardCommand::GetTransactionProve {
            tx_type: p.tx_type,
            counter: init.offline_counter,
        };
        let r = self.exchange(&cmd)?;
        if r.sw == StatusWord::MacNotAvailable {
            return Ok(Resolution::Unresolvable {
                counter_now: init.offline_counter,
            });
        }
        let d = expect_ok("GET TRANSACTION PROVE", r)?;
        if d.len() != 8 {
            return Err(TerminalError::Malformed("GET TRANSACTION PROVE"));
        }
        let mut receipt = p.clone();
        receipt.mac2.copy_from_slice(&d[0..4]);
        receipt.tac.copy_from_slice(&d[4..8]);
        receipt.mac2_verified = false;
        // The balance now may already reflect later purchases only if the counter moved
        // further, which was ruled out above.
        debug_assert_eq!(init.balance, p.balance_after);
        Ok(Resolution::Debited(receipt))
    }

    /// A host-authorised EP load (B.2.2). `terminal` is the loading terminal's number.
    pub fn load<K: KeyStore>(
        &mut self,
        hsm: &Hsm<K>,
        amount: Fen,
        terminal: [u8; 6],
        when: DateTime,
    ) -> Result<LoadOutcome> {
        let init = InitData {
            key_index: 1,
            amount,
            terminal,
        };
        let d = expect_ok(
            "INIT FOR LOAD",
            self.exchange(&CardCommand::InitLoad(Purse::Ep, init))?,
        )?;
        let init = InitLoadResponse::parse(&d).ok_or(TerminalError::Malformed("INIT FOR LOAD"))?;
        let req = LoadRequest {
            card: self.card_ref(),
            init,
            amount,
            tx_type: tx_type::EP_LOAD,
            terminal,
            when,
        };
        let mac2 = hsm.authorize_load(&req)?;
        let dt = when.to_bcd();
        let credit = CardCommand::CreditLoad {
            date: [dt[0], dt[1], dt[2], dt[3]],
            time: [dt[4], dt[5], dt[6]],
            mac2,
        };
        self.apdus += 1;
        let rsp = match send(&mut self.link, &mut self.buf, &credit) {
            Ok(r) if r.sw != StatusWord::MemoryFailure => r,
            Ok(_) | Err(TransportError::CardLost) => {
                return Ok(LoadOutcome::Pending(PendingLoad {
                    serial: self.info.serial,
                    counter: init.online_counter,
                    amount,
                    balance_before: init.balance,
                    mac2,
                }))
            }
            Err(e) => return Err(e.into()),
        };
        let d = expect_ok("CREDIT FOR LOAD", rsp)?;
        let tac: [u8; 4] = d
            .as_slice()
            .try_into()
            .map_err(|_| TerminalError::Malformed("CREDIT FOR LOAD"))?;
        let tac_verified = hsm.verify_load_tac(&req, &tac)?;
        Ok(LoadOutcome::Done(LoadReceipt {
            counter: init.online_counter,
            amount,
            balance_before: init.balance,
            balance_after: init
                .balance
                .checked_add(amount)
                .ok_or(TerminalError::Malformed("balance"))?,
            tac,
            tac_verified,
        }))
    }

    /// Resolves a load whose CREDIT answer was lost: GET TRANSACTION PROVE for the counter
    /// after; the host must never send MAC2 again for a load that went through.
    pub fn resolve_load(&mut self, p: &PendingLoad) -> Result<Option<LoadReceipt>> {
        if p.serial != self.info.serial {
            return Err(TerminalError::DifferentCard);
        }
        let cmd = CardCommand::GetTransactionProve {
            tx_type: tx_type::EP_LOAD,
            counter: p.counter.wrapping_add(1),
        };
        let r = self.exchange(&cmd)?;
        if r.sw == StatusWord::MacNotAvailable {
            return Ok(None);
        }
        let d = expect_ok("GET TRANSACTION PROVE", r)?;
        if d.len() != 8 || d[0..4] != p.mac2 {
            return Err(TerminalError::Malformed("GET TRANSACTION PROVE"));
        }
        let mut tac = [0u8; 4];
        tac.copy_from_slice(&d[4..8]);
        Ok(Some(LoadReceipt {
            counter: p.counter,
            amount: p.amount,
            balance_before: p.balance_before,
            balance_after: p
                .balance_before
                .checked_add(p.amount)
                .ok_or(TerminalError::Malformed("balance"))?,
            tac,
            tac_verified: false,
        }))
    }
}
