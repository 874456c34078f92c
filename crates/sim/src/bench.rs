//! The tap benchmark: full compound exit taps in-process, and the crypto floor of the same tap
//! (the same block-cipher work, nothing else), measured in one run.
//!
//! A tap is what an exit gate does: SELECT PPSE and the ADF (identity from the FCI), READ
//! RECORD of the 0x1A metro record, INITIALIZE FOR CAPP PURCHASE, PSAM MAC1, two UPDATE CAPP
//! DATA CACHE (0x1A, 0x1E), DEBIT, PSAM MAC2 check.

use crate::sample::{sample_card, sample_master_keys, SAMPLE_ISSUER};
use onecard_card::{Family, SeededRandom, VirtualCard, VolatileStore};
use onecard_crypto::{purchase_session_input, Algorithm, CardKey, SessionKey};
use onecard_proto::files::{sfi, JourneyStatus, MetroRecord, TripRecord};
use onecard_proto::{Date, DateTime, Fen, InProcess, Time};
use onecard_sam::{Hsm, MemorySerials, Psam, SoftwareKeyStore};
use onecard_terminal::{CappRecord, CardSession, PurchaseOutcome, TerminalError};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

/// Fare of every benchmark tap.
pub const TAP_FARE: Fen = Fen::new(400);
/// Taps per card before a fresh card is issued (the offline counter is 16 bits).
const TAPS_PER_CARD: u32 = 60_000;
const SERIAL: [u8; 10] = [0x03, 0x10, 0x51, 0x70, 0x07, 0x01, 0x04, 0x79, 0x13, 0x81];
const GATE: [u8; 6] = [0x30, 0x00, 0x00, 0x00, 0x02, 0x01];

type BenchPsam = Psam<Arc<SoftwareKeyStore>, MemorySerials>;
type Link = InProcess<VirtualCard<VolatileStore>>;

/// A gate and a card in memory, ready to tap.
pub struct TapBench {
    algorithm: Algorithm,
    psam: BenchPsam,
    link: Option<Link>,
    taps_on_card: u32,
    records: Vec<CappRecord>,
    when: DateTime,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A terminal flow failed.
    #[error(transparent)]
    Terminal(#[from] TerminalError),
    /// A tap did not complete as a clean debit.
    #[error("tap did not complete: {0}")]
    Tap(&'static str),
    /// Fixture failure.
    #[error("fixture: {0}")]
    Fixture(String),
}

impl TapBench {
    /// A bench for `algorithm` on a T-Union card.
    pub fn new(algorithm: Algorithm) -> Result<TapBench, BenchError> {
        let keys = Arc::new(
            SoftwareKeyStore::new().with_issuer(SAMPLE_ISSUER, sample_master_keys(algorithm)),
        );
        let when = DateTime {
            date: Date {
                year: 2026,
                month: 11,
                day: 25,
            },
            time: Time {
                hour: 8,
                minute: 30,
                second: 0,
            },
        };
        let mut metro = MetroRecord::empty();
        metro.status = JourneyStatus::Exited;
        metro.exit_time = Some(when);
        let trip = TripRecord {
            trip_type: 0x04,
            terminal: [0x30, 0, 0, 0, 2, 1, 0, 0],
            industry: 1,
            line: 1,
            station: 9,
            operator: 0,
            amount: TAP_FARE,
            balance_after: Fen::ZERO,
            when,
            acquirer_city: [0x10, 0x00],
            acquirer_institution: [0; 8],
        };
        let records = vec![
            CappRecord {
                p1: 1,
                sfi: sfi::PROCESS,
                image: metro.to_bytes().to_vec(),
            },
            CappRecord {
                p1: 0,
                sfi: sfi::TRIPS,
                image: trip.to_bytes().to_vec(),
            },
        ];
        let psam = Psam::new(GATE, keys, MemorySerials(1));
        Ok(TapBench {
            algorithm,
            psam,
            link: None,
            taps_on_card: 0,
            records,
            when,
        })
    }

    /// Issues a fresh card holding enough money for [`TAPS_PER_CARD`] taps.
    fn fresh_card(&mut self) -> Result<Link, BenchError> {
        let (keys, state) = sample_card(
            Family::TUnion,
            self.algorithm,
            SERIAL,
            Fen::new(onecard_proto::money::MAX_CARD_FEN),
        )
        .map_err(|e| BenchError::Fixture(e.to_string()))?;
        let card = VirtualCard::new(keys, state, VolatileStore, Box::new(SeededRandom::new(7)));
        let mut s = CardSession::open(InProcess(card))?;
        let hsm = Hsm::new(self.psam.keys().clone());
        let amount = Fen::new(TAP_FARE.get() * u64::from(TAPS_PER_CARD));
        s.load(&hsm, amount, GATE, self.when)?;
        Ok(s.into_link())
    }

    /// Runs one full exit tap and returns the APDUs it took.
    pub fn tap(&mut self) -> Result<u32, BenchError> {
        if self.link.is_none() || self.taps_on_card >= TAPS_PER_CARD {
            self.link = Some(self.fresh_card()?);
            self.taps_on_card = 0;
        }
        let Some(link) = self.link.as_mut() else {
            return Err(BenchError::Tap("no card"));
        };
        let mut s = CardSession::open(link)?;
        let metro = s
            .read_record(sfi::PROCESS, 1)?
            .ok_or(BenchError::Tap("no metro record"))?;
        black_box(MetroRecord::parse(&metro).map_err(|_| BenchError::Tap("metro record"))?);
        match s.purchase(&mut self.psam, TAP_FARE, self.when, Some(&self.records))? {
            PurchaseOutcome::Done(r) if r.mac2_verified => {}
            _ => return Err(BenchError::Tap("debit not verified")),
        }
        self.taps_on_card += 1;
        Ok(s.apdu_count())
    }

    /// Card issuance outside the timed region: makes sure the next `n` taps need no new card.
    pub fn prepare(&mut self, n: u32) -> Result<(), BenchError> {
        if self.link.is_none() || self.taps_on_card + n > TAPS_PER_CARD {
            self.link = Some(self.fresh_card()?);
            self.taps_on_card = 0;
        }
        Ok(())
    }
}

/// The block-cipher work of one tap, alone: what the card and the PSAM compute, with the same
/// prepared keys and the same input lengths, and nothing else.
pub struct CryptoFloor {
    card_dpk: CardKey,
    card_tac: SessionKey,
    /// The PSAM's derived card key, prepared as its key store caches it.
    psam_dpk: CardKey,
}

impl CryptoFloor {
    /// The floor for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Result<CryptoFloor, BenchError> {
        let master = sample_master_keys(algorithm);
        let mut factor = [0u8; 8];
        factor.copy_from_slice(&SERIAL[2..]);
        let card = master.derive(SAMPLE_ISSUER, factor);
        Ok(CryptoFloor {
            card_dpk: CardKey::new(algorithm, &card.purchase),
            card_tac: SessionKey::tac(algorithm, &card.tac),
            psam_dpk: CardKey::new(algorithm, &card.purchase),
        })
    }

    /// One tap's cryptography: PSAM session key + MAC1 + MAC2 check; card session key + MAC1
    /// check + MAC2 + TAC.
    pub fn tap(&self, n: u32) -> Result<[u8; 4], BenchError> {
        let c = n.to_be_bytes();
        let input = purchase_session_input([c[0], c[1], c[2], c[3]], n as u16, [0, 0, c[2], c[3]]);
        let amount = TAP_FARE.get().to_be_bytes();
        let amount = &amount[4..];
        let mac1_input = [0u8; 18];
        let tac_input = [0u8; 22];
        // PSAM side.
        let psam = self.psam_dpk.session_key(input);
        let mac1 = psam.mac(&mac1_input);
        // Card side.
        let card = self.card_dpk.session_key(input);
        let check = card.mac(&mac1_input);
        let mac2 = card.mac(amount);
        let tac = self.card_tac.mac(&tac_input);
        // PSAM MAC2 check.
        let back = psam.mac(amount);
        black_box((mac1, check, mac2, back));
        Ok(tac)
    }
}

/// Figures of one `bench tap` run.
#[derive(Debug, Clone, Copy)]
pub struct TapFigures {
    /// Full taps per second.
    pub taps_per_s: f64,
    /// Crypto-only taps per second.
    pub floor_taps_per_s: f64,
    /// APDUs per tap.
    pub apdus_per_tap: u32,
    /// Taps measured.
    pub taps: u32,
}

/// Measures `taps` full taps and the same number of crypto floors, interleaved in rounds so
/// both see the same machine conditions; best round of each counts.
pub fn measure(algorithm: Algorithm, taps: u32, rounds: u32) -> Result<TapFigures, BenchError> {
    let mut bench = TapBench::new(algorithm)?;
    let floor = CryptoFloor::new(algorithm)?;
    let per_round = (taps / rounds.max(1)).clamp(1, TAPS_PER_CARD);
    let mut apdus = bench.tap()?; // warm-up, issues the first card
    let (mut best_tap, mut best_floor) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds.max(1) {
        bench.prepare(per_round)?;
        let t0 = Instant::now();
        for _ in 0..per_round {
            apdus = bench.tap()?;
        }
        best_tap = best_tap.min(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        for i in 0..per_round {
            black_box(floor.tap(i)?);
        }
        best_floor = best_floor.min(t0.elapsed().as_secs_f64());
    }
    Ok(TapFigures {
        taps_per_s: f64::from(per_round) / best_tap,
        floor_taps_per_s: f64::from(per_round) / best_floor,
        apdus_per_tap: apdus,
        taps: per_round * rounds.max(1),
    })
}
