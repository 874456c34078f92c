//! The e-purse applet: APDU in, APDU out, with the state machine of a real card.
//!
//! Every command, in any state and of any length, gets a status word and changes nothing unless
//! it succeeds: decoding and checks happen first, the single commit comes last, and a failed
//! commit leaves the state as it was.

use crate::keys::{CardKeys, PreparedKeys};
use crate::random::RandomSource;
use crate::state::{BlockState, CardState, Family, Proof, TRIP_LEN};
use crate::store::CardStore;
use onecard_crypto::{line_mac, load_session_input, mac_eq, purchase_session_input, SessionKey};
use onecard_proto::apdu::{CommandRef, MAX_RESPONSE_DATA};
use onecard_proto::commands::{
    parse_date_time, CardCommand, InitData, InitLoadResponse, InitPurchaseResponse, Purse,
    RecordSelector, PPSE,
};
use onecard_proto::files::{sfi, tx_type, AppInfo, LogRecord, PROCESS_RECORD_LEN};
use onecard_proto::sw::StatusWord as Sw;
use onecard_proto::tlv::push_tlv;
use onecard_proto::transport::SmartCard;
use onecard_proto::{Date, Fen, Time};
use std::borrow::Cow;

/// Most 80DC records cached for one compound purchase.
const MAX_CACHED_RECORDS: usize = 4;
/// Status word for a commit that could not be made durable (memory failure).
const SW_MEMORY_FAILURE: Sw = Sw::MemoryFailure;
/// Status word for an offset beyond the end of a file.
const SW_WRONG_OFFSET: Sw = Sw::Other(0x6B00);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selected {
    Mf,
    Ppse,
    Adf,
}

struct LoadSession {
    purse: Purse,
    amount: u32,
    terminal: [u8; 6],
    counter: u16,
    key: SessionKey,
}

struct PurchaseSession {
    capp: bool,
    purse: Purse,
    amount: u32,
    terminal: [u8; 6],
    counter: u16,
    random: [u8; 4],
    /// 80DC records held in RAM until DEBIT commits them; inline, so a tap allocates nothing
    /// for them.
    cache: [CachedRecord; MAX_CACHED_RECORDS],
    cached: usize,
}

#[derive(Clone, Copy)]
struct CachedRecord {
    sfi: u8,
    id: u8,
    len: usize,
    image: [u8; PROCESS_RECORD_LEN],
}

impl CachedRecord {
    const EMPTY: CachedRecord = CachedRecord {
        sfi: 0,
        id: 0,
        len: 0,
        image: [0; PROCESS_RECORD_LEN],
    };

    fn record(&self) -> &[u8] {
        &self.image[..self.len]
    }

    fn set(&mut self, record: &[u8]) {
        // Callers checked the length against the file's record size (≤ 128).
        self.len = record.len();
        self.image[..record.len()].copy_from_slice(record);
    }
}

// One session per card, replaced in place: boxing the large variant would allocate on every tap.
#[allow(clippy::large_enum_variant)]
enum Session {
    Idle,
    Load(LoadSession),
    Purchase(PurchaseSession),
}

/// A virtual e-purse card on a secure element: state, keys, the store that makes commits
/// durable, and the transient session of the current field.
pub struct VirtualCard<S: CardStore> {
    keys: CardKeys,
    prepared: PreparedKeys,
    /// Boxed so a commit moves a pointer, not kilobytes.
    state: Box<CardState>,
    store: S,
    rng: Box<dyn RandomSource>,
    selected: Selected,
    session: Session,
    challenge: Option<[u8; 8]>,
    commit_failures: u64,
    /// FCIs, built when the 0x15 file changes rather than on every SELECT.
    fci: Vec<u8>,
    ppse_fci: Vec<u8>,
}

type Outcome = Result<Vec<u8>, Sw>;

impl<S: CardStore> VirtualCard<S> {
    /// A card over `state` and `keys`, committing through `store`.
    pub fn new(
        keys: CardKeys,
        state: CardState,
        store: S,
        rng: Box<dyn RandomSource>,
    ) -> VirtualCard<S> {
        let (fci, ppse_fci) = (build_fci(&state), build_ppse_fci(&state));
        VirtualCard {
            fci,
            ppse_fci,
            prepared: PreparedKeys::new(&keys),
            keys,
            state: Box::new(state),
            store,
            rng,
            selected: Selected::Mf,
            session: Session::Idle,
            challenge: None,
            commit_failures: 0,
        }
    }

    /// The committed state.
    pub fn state(&self) -> &CardState {
        &self.state
    }

    /// The card's keys (for re-opening the card in simulations).
    pub fn keys(&self) -> &CardKeys {
        &self.keys
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, mutably (fault injection in tests).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Commits that failed (torn or I/O): each left the state unchanged in this object.
    pub fn commit_failures(&self) -> u64 {
        self.commit_failures
    }

    /// The 9-byte MoHURD security code: `85 ‖ UID ‖ UID`, with the last 4 serial bytes as UID.
    pub fn security_code(&self) -> [u8; 9] {
        let s = &self.state.app_info[16..20];
        [0x85, s[0], s[1], s[2], s[3], s[0], s[1], s[2], s[3]]
    }

    /// The answer to reset: a PC/SC-style contactless ATR with "onecard" historical bytes.
    pub fn atr() -> Vec<u8> {
        let hist = b"onecard EP1";
        let mut atr = vec![0x3B, 0x80 | hist.len() as u8, 0x80, 0x01];
        atr.extend_from_slice(hist);
        let tck = atr[1..].iter().fold(0u8, |a, b| a ^ b);
        atr.push(tck);
        atr
    }

    fn random4(&mut self) -> [u8; 4] {
        let mut r = [0u8; 4];
        self.rng.fill(&mut r);
        r
    }

    /// Makes `new` durable, then adopts it. On failure the card keeps the state its store holds
    /// (the old one, or the new one if the failure came after the store's durable point) and
    /// answers `6581`, which terminals treat like a lost answer and resolve with GET TRANSACTION
    /// PROVE.
    fn commit(&mut self, new: Box<CardState>) -> Result<(), Sw> {
        debug_assert!(new.balance <= new.max_balance, "balance above maximum");
        debug_assert!(
            new.online_counter >= self.state.online_counter,
            "online counter went back"
        );
        debug_assert!(
            new.offline_counter >= self.state.offline_counter,
            "offline counter went back"
        );
        match self.store.persist(&self.keys, &new) {
            Ok(()) => {
                self.adopt(new);
                Ok(())
            }
            Err(e) => {
                if e.new_state_visible() {
                    self.adopt(new);
                }
                self.commit_failures += 1;
                Err(SW_MEMORY_FAILURE)
            }
        }
    }

    fn adopt(&mut self, new: Box<CardState>) {
        if new.app_info != self.state.app_info {
            self.fci = build_fci(&new);
            self.ppse_fci = build_ppse_fci(&new);
        }
        self.state = new;
    }

    fn aid(&self) -> &'static [u8] {
        self.state.family.aid()
    }

    fn select_adf(&mut self) -> Outcome {
        self.selected = Selected::Adf;
        self.session = Session::Idle;
        match self.state.block {
            BlockState::Active => Ok(rsp(&self.fci)),
            // Real cards still return the FCI of a blocked application, with 6A81.
            _ => Err(Sw::FunctionNotSupported),
        }
    }

    fn dispatch(&mut self, cmd: CardCommand<'_>) -> Outcome {
        // A purse session survives only the commands that belong to it (80DC, GET MESSAGE,
        // reads); anything else abandons it, as a new SELECT or INIT would on a real card.
        let keeps_session = matches!(
            cmd,
            CardCommand::UpdateCappCache { .. }
                | CardCommand::GetMessage
                | CardCommand::Debit { .. }
                | CardCommand::CreditLoad { .. }
                | CardCommand::ReadBinary { .. }
                | CardCommand::ReadRecord { .. }
                | CardCommand::GetBalance(_)
                | CardCommand::GetBalanceVariant { .. }
        );
        if !keeps_session {
            self.session = Session::Idle;
        }
        let uses_challenge = matches!(
            cmd,
            CardCommand::ExternalAuthenticate { .. }
                | CardCommand::AppBlock { .. }
                | CardCommand::AppUnblock(_)
                | CardCommand::UpdateBinary { .. }
                | CardCommand::UpdateRecord { .. }
        );
        let challenge = if uses_challenge {
            self.challenge.take()
        } else {
            None
        };
        match cmd {
            CardCommand::SelectByName(name) => {
                if name == PPSE && self.state.family == Family::TUnion {
                    self.selected = Selected::Ppse;
                    Ok(rsp(&self.ppse_fci))
                } else if name == self.aid() {
                    self.select_adf()
                } else {
                    Err(Sw::FileNotFound)
                }
            }
            CardCommand::SelectByFid(0x3F00) => {
                self.selected = Selected::Mf;
                Ok(Vec::new())
            }
            // Beijing-style readers select the EP DF as 1001.
            CardCommand::SelectByFid(0x1001) => self.select_adf(),
            CardCommand::SelectByFid(_) => Err(Sw::FileNotFound),
            CardCommand::ReadBinary { sfi, offset, len } => self.read_binary(sfi, offset, len),
            CardCommand::ReadRecord { sfi, selector, len } => self.read_record(sfi, selector, len),
            CardCommand::GetBalance(purse) => {
                self.need_adf()?;
                self.need_ep(purse)?;
                Ok(rsp(&self.state.balance.to_be_bytes()))
            }
            // onecard cards have no overdraft (limit and overdrawn amount are zero), so the
            // balance "excluding overdraft" is the balance: every reader's reading agrees.
            CardCommand::GetBalanceVariant { p1, purse } => {
                self.need_adf()?;
                self.need_ep(purse)?;
                let v = if p1 == 3 { self.state.balance } else { 0 };
                Ok(rsp(&v.to_be_bytes()))
            }
            CardCommand::InitLoad(purse, init) => self.init_load(purse, init),
            CardCommand::CreditLoad { date, time, mac2 } => self.credit_load(date, time, mac2),
            CardCommand::InitPurchase(purse, init) => self.init_purchase(false, purse, init),
            CardCommand::InitCappPurchase(init) => self.init_purchase(true, Purse::Ep, init),
            CardCommand::UpdateCappCache { p1, sfi, record } => {
                self.update_capp_cache(p1, sfi, record)
            }
            CardCommand::Debit {
                terminal_serial,
                date,
                time,
                mac1,
            } => self.debit(terminal_serial, date, time, mac1),
            CardCommand::GetTransactionProve { tx_type, counter } => self.prove(tx_type, counter),
            CardCommand::GetMessage => {
                if self.state.family != Family::Mohurd {
                    return Err(Sw::InsNotSupported);
                }
                self.need_adf()?;
                Ok(rsp(&self.security_code()))
            }
            CardCommand::GetChallenge(n) => {
                let mut c = [0u8; 8];
                self.rng.fill(&mut c[..usize::from(n)]);
                self.challenge = Some(c);
                Ok(rsp(&c[..usize::from(n)]))
            }
            CardCommand::ExternalAuthenticate { key_id, cryptogram } => {
                self.need_adf()?;
                let ch = challenge.ok_or(Sw::ReferencedDataInvalid)?;
                let key = self.keys.maintenance.as_ref().ok_or(Sw::KeyNotFound)?;
                if key_id > 1 {
                    return Err(Sw::KeyNotFound);
                }
                let k = onecard_crypto::CardKey::new(self.keys.algorithm, key);
                let expected = k.encrypt8([ch[0], ch[1], ch[2], ch[3], 0, 0, 0, 0]);
                if expected == cryptogram {
                    Ok(Vec::new())
                } else {
                    Err(Sw::Other(0x6300))
                }
            }
            // onecard EP cards carry no PIN (Part A, decision 6): the wallet app authenticates
            // the rider. VERIFY succeeds so terminals that always send it keep working.
            CardCommand::Verify(_) => {
                self.need_adf()?;
                Ok(Vec::new())
            }
            CardCommand::AppBlock { permanent, mac } => {
                let header = [0x84, 0x1E, 0x00, u8::from(permanent), 0x04];
                self.check_line_mac(challenge, &header, &[], mac)?;
                if self.state.block == BlockState::PermanentlyBlocked {
                    return Err(Sw::PermanentlyLocked);
                }
                let mut new = Box::new(self.state.as_ref().clone());
                new.block = if permanent {
                    BlockState::PermanentlyBlocked
                } else {
                    BlockState::Blocked
                };
                self.commit(new)?;
                Ok(Vec::new())
            }
            CardCommand::AppUnblock(mac) => {
                self.check_line_mac(challenge, &[0x84, 0x18, 0x00, 0x00, 0x04], &[], mac)?;
                match self.state.block {
                    BlockState::PermanentlyBlocked => Err(Sw::PermanentlyLocked),
                    BlockState::Active => Ok(Vec::new()),
                    BlockState::Blocked => {
                        let mut new = Box::new(self.state.as_ref().clone());
                        new.block = BlockState::Active;
                        self.commit(new)?;
                        Ok(Vec::new())
                    }
                }
            }
            CardCommand::UpdateBinary {
                sfi,
                offset,
                data,
                mac,
            } => self.update_binary(challenge, sfi, offset, data, mac),
            CardCommand::UpdateRecord {
                sfi,
                record,
                data,
                mac,
            } => self.update_record(challenge, sfi, record, data, mac),
        }
    }

    fn need_adf(&self) -> Result<(), Sw> {
        if self.selected != Selected::Adf {
            return Err(Sw::ConditionsNotSatisfied);
        }
        Ok(())
    }

    fn need_usable(&self) -> Result<(), Sw> {
        self.need_adf()?;
        match self.state.block {
            BlockState::Active => Ok(()),
            BlockState::Blocked => Err(Sw::FunctionNotSupported),
            BlockState::PermanentlyBlocked => Err(Sw::PermanentlyLocked),
        }
    }

    fn need_ep(&self, purse: Purse) -> Result<(), Sw> {
        // onecard cards hold only the EP (application type 02); there is no ED purse.
        if purse != Purse::Ep {
            return Err(Sw::FunctionNotSupported);
        }
        Ok(())
    }

    fn binary_file(&self, sfi: u8) -> Result<&[u8], Sw> {
        match (sfi, self.state.family) {
            (sfi::APP_INFO, _) => Ok(&self.state.app_info),
            (sfi::CARDHOLDER, Family::TUnion) => Ok(&self.state.cardholder),
            (sfi::MANAGEMENT_OR_COMPOUND, Family::TUnion) => Ok(&self.state.management),
            (sfi::LOG | sfi::PROCESS | sfi::TRIPS, _)
            | (sfi::MANAGEMENT_OR_COMPOUND, Family::Mohurd) => Err(Sw::IncompatibleFile),
            _ => Err(Sw::FileNotFound),
        }
    }

    fn read_binary(&self, sfi: u8, offset: u8, len: u16) -> Outcome {
        self.need_adf()?;
        let file = self.binary_file(sfi)?;
        let rest = file
            .get(usize::from(offset)..)
            .filter(|r| !r.is_empty())
            .ok_or(SW_WRONG_OFFSET)?;
        let want = usize::from(len);
        if len == 256 || want == rest.len() {
            Ok(rsp(rest))
        } else if want < rest.len() {
            Ok(rsp(&rest[..want]))
        } else {
            Err(Sw::WrongLe(rest.len() as u8))
        }
    }

    fn records(&self, sfi: u8) -> Result<Vec<Cow<'_, [u8]>>, Sw> {
        let s = &self.state;
        match (sfi, s.family) {
            (sfi::LOG, _) => Ok(s.log.iter().map(|r| Cow::Borrowed(&r[..])).collect()),
            (sfi::TRIPS, Family::TUnion) => {
                Ok(s.trips.iter().map(|r| Cow::Borrowed(&r[..])).collect())
            }
            (sfi::PROCESS, Family::TUnion) => {
                Ok(s.process.iter().map(|r| Cow::Borrowed(&r[..])).collect())
            }
            (sfi::MANAGEMENT_OR_COMPOUND, Family::Mohurd) => Ok(s
                .compound
                .iter()
                .map(|r| Cow::Owned(r.to_bytes()))
                .collect()),
            (sfi::APP_INFO | sfi::CARDHOLDER | sfi::MANAGEMENT_OR_COMPOUND, _) => {
                Err(Sw::IncompatibleFile)
            }
            _ => Err(Sw::FileNotFound),
        }
    }

    fn read_record(&self, sfi: u8, selector: RecordSelector, len: u16) -> Outcome {
        self.need_adf()?;
        let records = self.records(sfi)?;
        match selector {
            RecordSelector::One(n) => {
                let r = records.get(usize::from(n) - 1).ok_or(Sw::RecordNotFound)?;
                if len == 256 || usize::from(len) == r.len() {
                    Ok(rsp(r))
                } else {
                    Err(Sw::WrongLe(r.len() as u8))
                }
            }
            RecordSelector::AllFrom(n) => {
                let from = records
                    .get(usize::from(n) - 1..)
                    .filter(|r| !r.is_empty())
                    .ok_or(Sw::RecordNotFound)?;
                // As many whole records as fit in the response.
                let cap = usize::from(len).min(MAX_RESPONSE_DATA);
                let mut out = Vec::with_capacity(cap);
                for r in from {
                    if out.len() + r.len() > cap {
                        break;
                    }
                    out.extend_from_slice(r);
                }
                if out.is_empty() {
                    return Err(Sw::WrongLe(from[0].len() as u8));
                }
                Ok(out)
            }
        }
    }

    fn check_key_index(&self, idx: u8) -> Result<(), Sw> {
        // One key per type, at index 01 (the index real terminals send).
        if idx != 0x01 {
            return Err(Sw::KeyIndexNotSupported);
        }
        Ok(())
    }

    fn init_load(&mut self, purse: Purse, init: InitData) -> Outcome {
        self.need_usable()?;
        self.need_ep(purse)?;
        self.check_key_index(init.key_index)?;
        let amount = u32::try_from(init.amount.get()).map_err(|_| Sw::WrongData)?;
        if amount == 0 {
            return Err(Sw::WrongData);
        }
        let s = &self.state;
        if u64::from(s.balance) + u64::from(amount) > u64::from(s.max_balance) {
            // Part A, decision 11: the card refuses a load above its maximum balance.
            return Err(Sw::ConditionsNotSatisfied);
        }
        if s.online_counter == u16::MAX {
            return Err(Sw::CounterAtMaximum);
        }
        let (balance, counter) = (s.balance, s.online_counter);
        let random = self.random4();
        let key = self
            .prepared
            .load
            .session_key(load_session_input(random, counter));
        let mac1 = key.mac_parts(&[
            &balance.to_be_bytes(),
            &amount.to_be_bytes(),
            &[tx_type::EP_LOAD],
            &init.terminal,
        ]);
        self.session = Session::Load(LoadSession {
            purse,
            amount,
            terminal: init.terminal,
            counter,
            key,
        });
        Ok(rsp(&InitLoadResponse {
            balance: Fen::new(u64::from(balance)),
            online_counter: counter,
            key_version: self.keys.version,
            algorithm: self.keys.algorithm.id(),
            random,
            mac1,
        }
        .to_bytes()))
    }

    fn credit_load(&mut self, date: [u8; 4], time: [u8; 3], mac2: [u8; 4]) -> Outcome {
        let Session::Load(ls) = std::mem::replace(&mut self.session, Session::Idle) else {
            return Err(Sw::InvalidState);
        };
        debug_assert_eq!(ls.purse, Purse::Ep);
        let ty = [tx_type::EP_LOAD];
        let amount = ls.amount.to_be_bytes();
        let expected = ls
            .key
            .mac_parts(&[&amount, &ty, &ls.terminal, &date, &time]);
        if !mac_eq(&expected, &mac2) {
            return Err(Sw::MacInvalid);
        }
        let (d, t) = parse_date_time(date, time).ok_or(Sw::WrongData)?;
        let old: &CardState = &self.state;
        // Re-checked: nothing may have changed since INIT, but money is never trusted twice.
        if ls.counter != old.online_counter {
            return Err(Sw::InvalidState);
        }
        let new_balance = old
            .balance
            .checked_add(ls.amount)
            .filter(|&b| b <= old.max_balance)
            .ok_or(Sw::ConditionsNotSatisfied)?;
        let tac = self.prepared.tac.tac_key().mac_parts(&[
            &new_balance.to_be_bytes(),
            &ls.counter.to_be_bytes(),
            &amount,
            &ty,
            &ls.terminal,
            &date,
            &time,
        ]);
        let mut new = Box::new(old.clone());
        new.balance = new_balance;
        new.online_counter = ls.counter + 1;
        let rec = log_record(
            new.online_counter,
            ls.amount,
            tx_type::EP_LOAD,
            ls.terminal,
            d,
            t,
        );
        new.log.push(rec);
        new.last_load = Some(Proof {
            counter: new.online_counter,
            mac2,
            tac,
        });
        self.commit(new)?;
        Ok(rsp(&tac))
    }

    fn init_purchase(&mut self, capp: bool, purse: Purse, init: InitData) -> Outcome {
        self.need_usable()?;
        self.need_ep(purse)?;
        self.check_key_index(init.key_index)?;
        let amount = u32::try_from(init.amount.get()).map_err(|_| Sw::WrongData)?;
        let s = &self.state;
        if amount > s.balance {
            return Err(Sw::InsufficientBalance);
        }
        if s.offline_counter == u16::MAX {
            return Err(Sw::CounterAtMaximum);
        }
        let (balance, counter) = (s.balance, s.offline_counter);
        let random = self.random4();
        self.session = Session::Purchase(PurchaseSession {
            capp,
            purse,
            amount,
            terminal: init.terminal,
            counter,
            random,
            cache: [CachedRecord::EMPTY; MAX_CACHED_RECORDS],
            cached: 0,
        });
        Ok(rsp(&InitPurchaseResponse {
            balance: Fen::new(u64::from(balance)),
            offline_counter: counter,
            overdraft: 0,
            key_version: self.keys.version,
            algorithm: self.keys.algorithm.id(),
            random,
        }
        .to_bytes()))
    }

    fn update_capp_cache(&mut self, p1: u8, sfi: u8, record: &[u8]) -> Outcome {
        let family = self.state.family;
        let Session::Purchase(ps) = &mut self.session else {
            return Err(Sw::InvalidState);
        };
        if !ps.capp {
            return Err(Sw::InvalidState);
        }
        match (family, sfi) {
            (Family::TUnion, sfi::PROCESS) => {
                if record.len() != PROCESS_RECORD_LEN {
                    return Err(Sw::WrongLength);
                }
                // P1 is the record id, repeated in the record's second byte (27 01 metro, 27 02
                // bus); the first byte is the issuer's business and is not checked.
                if !(1..=2).contains(&p1) {
                    return Err(Sw::RecordNotFound);
                }
                if record[1] != p1 {
                    return Err(Sw::WrongData);
                }
            }
            (Family::TUnion, sfi::TRIPS) => {
                if p1 != 0 {
                    return Err(Sw::WrongP1P2);
                }
                if record.len() != TRIP_LEN {
                    return Err(Sw::WrongLength);
                }
            }
            (Family::Mohurd, sfi::MANAGEMENT_OR_COMPOUND) => {
                let existing = self
                    .state
                    .compound
                    .iter()
                    .find(|r| r.id == p1)
                    .ok_or(Sw::RecordNotFound)?;
                if record.len() != existing.payload.len() + 2 {
                    return Err(Sw::WrongLength);
                }
                if record[0] != p1 || usize::from(record[1]) != existing.payload.len() {
                    return Err(Sw::WrongData);
                }
            }
            _ => return Err(Sw::FileNotFound),
        }
        // A second update of the same record replaces the first, as on a real card.
        if record.len() > PROCESS_RECORD_LEN {
            return Err(Sw::WrongLength);
        }
        let cached = ps.cached;
        if let Some(c) = ps.cache[..cached]
            .iter_mut()
            .find(|c| c.sfi == sfi && c.id == p1 && sfi != sfi::TRIPS)
        {
            c.set(record);
        } else {
            let slot = ps.cache.get_mut(cached).ok_or(Sw::NotEnoughSpace)?;
            slot.sfi = sfi;
            slot.id = p1;
            slot.set(record);
            ps.cached += 1;
        }
        Ok(Vec::new())
    }

    fn debit(&mut self, serial: [u8; 4], date: [u8; 4], time: [u8; 3], mac1: [u8; 4]) -> Outcome {
        let Session::Purchase(ps) = std::mem::replace(&mut self.session, Session::Idle) else {
            return Err(Sw::InvalidState);
        };
        debug_assert_eq!(ps.purse, Purse::Ep);
        let ty = if ps.capp {
            tx_type::CAPP_PURCHASE
        } else {
            tx_type::EP_PURCHASE
        };
        let amount = ps.amount.to_be_bytes();
        let key = self
            .prepared
            .purchase
            .session_key(purchase_session_input(ps.random, ps.counter, serial));
        let plain = key.mac_parts(&[&amount, &[ty], &ps.terminal, &date, &time]);
        let verified = if self.state.family == Family::Mohurd {
            // B.2.4: a MoHURD PSAM appends the card's security code to MAC1 of a compound
            // purchase. Whether it does for a plain purchase no public trace shows, so a plain
            // purchase is accepted with or without it; a compound one needs it.
            let with_code = key.mac_parts(&[
                &amount,
                &[ty],
                &ps.terminal,
                &date,
                &time,
                &self.security_code(),
            ]);
            mac_eq(&with_code, &mac1) || (!ps.capp && mac_eq(&plain, &mac1))
        } else {
            mac_eq(&plain, &mac1)
        };
        if !verified {
            return Err(Sw::MacInvalid);
        }
        let (d, t) = parse_date_time(date, time).ok_or(Sw::WrongData)?;
        let old: &CardState = &self.state;
        if ps.counter != old.offline_counter {
            return Err(Sw::InvalidState);
        }
        let new_balance = old
            .balance
            .checked_sub(ps.amount)
            .ok_or(Sw::InsufficientBalance)?;
        let tac = self.prepared.tac.tac_key().mac_parts(&[
            &amount,
            &[ty],
            &ps.terminal,
            &serial,
            &date,
            &time,
        ]);
        let mac2 = key.mac(&amount);
        let mut new = Box::new(old.clone());
        new.balance = new_balance;
        new.offline_counter = ps.counter + 1;
        let rec = log_record(new.offline_counter, ps.amount, ty, ps.terminal, d, t);
        new.log.push(rec);
        for c in &ps.cache[..ps.cached] {
            match c.sfi {
                sfi::PROCESS => new.process[usize::from(c.id) - 1].copy_from_slice(c.record()),
                sfi::TRIPS => {
                    let mut r = [0u8; TRIP_LEN];
                    r.copy_from_slice(c.record());
                    new.trips.push(r);
                }
                _ => {
                    if let Some(slot) = new.compound.iter_mut().find(|r| r.id == c.id) {
                        slot.payload.copy_from_slice(&c.record()[2..]);
                    }
                }
            }
        }
        let proof = Some(Proof {
            counter: new.offline_counter,
            mac2,
            tac,
        });
        if ps.capp {
            new.last_capp = proof;
        } else {
            new.last_purchase = proof;
        }
        self.commit(new)?;
        let mut out = Vec::with_capacity(10);
        out.extend_from_slice(&tac);
        out.extend_from_slice(&mac2);
        Ok(out)
    }

    fn prove(&mut self, ty: u8, counter: u16) -> Outcome {
        self.need_adf()?;
        let proof = match ty {
            tx_type::EP_LOAD => self.state.last_load,
            tx_type::EP_PURCHASE => self.state.last_purchase,
            tx_type::CAPP_PURCHASE => self.state.last_capp,
            _ => return Err(Sw::WrongP1P2),
        };
        match proof {
            Some(p) if p.counter == counter => Ok([p.mac2, p.tac].concat()),
            _ => Err(Sw::MacNotAvailable),
        }
    }

    fn check_line_mac(
        &self,
        challenge: Option<[u8; 8]>,
        header: &[u8],
        data: &[u8],
        mac: [u8; 4],
    ) -> Result<(), Sw> {
        self.need_adf()?;
        let key = self.keys.maintenance.as_ref().ok_or(Sw::KeyNotFound)?;
        let ch = challenge.ok_or(Sw::ReferencedDataInvalid)?;
        let mut input = Vec::with_capacity(header.len() + data.len());
        input.extend_from_slice(header);
        input.extend_from_slice(data);
        let expected = line_mac(
            self.keys.algorithm,
            key,
            [ch[0], ch[1], ch[2], ch[3]],
            &input,
        );
        if !mac_eq(&expected, &mac) {
            return Err(Sw::SmMacWrong);
        }
        Ok(())
    }

    fn update_binary(
        &mut self,
        challenge: Option<[u8; 8]>,
        sfi: u8,
        offset: u8,
        data: &[u8],
        mac: [u8; 4],
    ) -> Outcome {
        let header = [0x04, 0xD6, 0x80 | sfi, offset, (data.len() + 4) as u8];
        self.check_line_mac(challenge, &header, data, mac)?;
        let file_len = self.binary_file(sfi)?.len();
        let start = usize::from(offset);
        let end = start + data.len();
        if end > file_len {
            return Err(SW_WRONG_OFFSET);
        }
        let mut new = Box::new(self.state.as_ref().clone());
        let file: &mut [u8] = match sfi {
            sfi::APP_INFO => &mut new.app_info,
            sfi::CARDHOLDER => &mut new.cardholder,
            _ => &mut new.management,
        };
        file[start..end].copy_from_slice(data);
        if AppInfo::parse(&new.app_info).is_err() {
            return Err(Sw::WrongData);
        }
        self.commit(new)?;
        Ok(Vec::new())
    }

    fn update_record(
        &mut self,
        challenge: Option<[u8; 8]>,
        sfi: u8,
        record: u8,
        data: &[u8],
        mac: [u8; 4],
    ) -> Outcome {
        let header = [0x04, 0xDC, record, sfi << 3 | 4, (data.len() + 4) as u8];
        self.check_line_mac(challenge, &header, data, mac)?;
        let idx = usize::from(record) - 1;
        let mut new = Box::new(self.state.as_ref().clone());
        match (sfi, new.family) {
            (sfi::PROCESS, Family::TUnion) => {
                let slot = new.process.get_mut(idx).ok_or(Sw::RecordNotFound)?;
                if data.len() != PROCESS_RECORD_LEN {
                    return Err(Sw::WrongLength);
                }
                if data[0..2] != slot[0..2] {
                    return Err(Sw::WrongData);
                }
                slot.copy_from_slice(data);
            }
            (sfi::MANAGEMENT_OR_COMPOUND, Family::Mohurd) => {
                let slot = new.compound.get_mut(idx).ok_or(Sw::RecordNotFound)?;
                if data.len() != slot.payload.len() + 2 {
                    return Err(Sw::WrongLength);
                }
                if data[0] != slot.id || usize::from(data[1]) != slot.payload.len() {
                    return Err(Sw::WrongData);
                }
                slot.payload.copy_from_slice(&data[2..]);
            }
            (sfi::LOG | sfi::TRIPS, _) => return Err(Sw::SecurityNotSatisfied),
            _ => return Err(Sw::FileNotFound),
        }
        self.commit(new)?;
        Ok(Vec::new())
    }
}

/// Response data with room for the status word, so appending it does not reallocate.
fn rsp(data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + 2);
    v.extend_from_slice(data);
    v
}

fn build_fci(state: &CardState) -> Vec<u8> {
    let mut a5 = Vec::with_capacity(40);
    push_tlv(&mut a5, 0x9F08, &[state.app_info[9]]);
    push_tlv(&mut a5, 0x9F0C, &state.app_info);
    let mut inner = Vec::with_capacity(60);
    push_tlv(&mut inner, 0x84, state.family.aid());
    push_tlv(&mut inner, 0xA5, &a5);
    let mut fci = Vec::with_capacity(64);
    push_tlv(&mut fci, 0x6F, &inner);
    fci
}

fn build_ppse_fci(state: &CardState) -> Vec<u8> {
    let mut entry = Vec::new();
    push_tlv(&mut entry, 0x4F, state.family.aid());
    push_tlv(&mut entry, 0x50, b"T-UNION EP");
    push_tlv(&mut entry, 0x87, &[0x01]);
    let mut dir = Vec::new();
    push_tlv(&mut dir, 0x61, &entry);
    let mut a5 = Vec::new();
    push_tlv(&mut a5, 0xBF0C, &dir);
    let mut inner = Vec::new();
    push_tlv(&mut inner, 0x84, PPSE);
    push_tlv(&mut inner, 0xA5, &a5);
    let mut fci = Vec::new();
    push_tlv(&mut fci, 0x6F, &inner);
    fci
}

fn log_record(
    counter: u16,
    amount: u32,
    ty: u8,
    terminal: [u8; 6],
    date: Date,
    time: Time,
) -> [u8; 23] {
    LogRecord {
        counter,
        overdraft: 0,
        amount: Fen::new(u64::from(amount)),
        tx_type: ty,
        terminal,
        date,
        time,
    }
    .to_bytes()
}

impl<S: CardStore> SmartCard for VirtualCard<S> {
    fn power_on(&mut self) -> Vec<u8> {
        self.power_off();
        Self::atr()
    }

    fn power_off(&mut self) {
        self.selected = Selected::Mf;
        self.session = Session::Idle;
        self.challenge = None;
    }

    fn process_apdu(&mut self, command: &[u8]) -> Vec<u8> {
        let result = match CommandRef::parse(command) {
            Err(_) => Err(Sw::WrongLength),
            Ok(c) => match CardCommand::decode(&c) {
                Err(sw) => {
                    // An undecodable command ends any transaction in progress.
                    self.session = Session::Idle;
                    Err(sw)
                }
                Ok(cmd) => self.dispatch(cmd),
            },
        };
        match result {
            Ok(mut data) => {
                data.extend_from_slice(&[0x90, 0x00]);
                data
            }
            Err(sw) => {
                let mut out = if sw == Sw::FunctionNotSupported
                    && self.selected == Selected::Adf
                    && command.get(1) == Some(&0xA4)
                {
                    self.fci.clone()
                } else {
                    Vec::with_capacity(2)
                };
                out.extend_from_slice(&sw.to_bytes());
                out
            }
        }
    }
}
