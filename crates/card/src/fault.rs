//! Fault injection for deterministic simulations: a link to a card that drops commands, loses
//! answers and tears commits, chosen by a seed or at an exact APDU, and power-cycles the card
//! after each fault so it comes back from its durable image only.

use crate::random::SeededRandom;
use crate::store::{CommitStep, SimStore};
use crate::VirtualCard;
use onecard_proto::{CardTransport, SmartCard, TransportError};

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The command never reaches the card.
    DropCommand,
    /// The card acts; its answer is lost.
    LoseResponse,
    /// Power fails during the card's commit at this step; the answer is lost.
    TearCommit(CommitStep),
}

impl Fault {
    /// Every kind of fault, each commit step included.
    pub const ALL: [Fault; 6] = [
        Fault::DropCommand,
        Fault::LoseResponse,
        Fault::TearCommit(CommitStep::WriteTemp),
        Fault::TearCommit(CommitStep::SyncTemp),
        Fault::TearCommit(CommitStep::Rename),
        Fault::TearCommit(CommitStep::SyncDir),
    ];
}

/// When faults happen.
#[derive(Debug, Clone)]
pub enum FaultPlan {
    /// Never.
    None,
    /// On each APDU with probability 1/`one_in`, the kind drawn from `rng`.
    Random {
        /// The generator deciding.
        rng: SeededRandom,
        /// Odds.
        one_in: u64,
    },
    /// Exactly once, on APDU number `apdu` (1-based, counted over the link's life).
    At {
        /// Which APDU.
        apdu: u64,
        /// What happens.
        fault: Fault,
    },
}

/// A card on a link that fails as the plan says.
pub struct TearingLink {
    /// The card (replaced by a fresh instance from its durable image after each fault).
    pub card: VirtualCard<SimStore>,
    /// The plan.
    pub plan: FaultPlan,
    /// APDUs sent so far.
    pub apdus: u64,
    /// Faults injected so far.
    pub faults: u64,
    seed: u64,
}

impl TearingLink {
    /// A link to `card`; `seed` also feeds the card's randoms after each power cycle.
    pub fn new(card: VirtualCard<SimStore>, plan: FaultPlan, seed: u64) -> TearingLink {
        TearingLink {
            card,
            plan,
            apdus: 0,
            faults: 0,
            seed,
        }
    }

    fn power_cycle(&mut self) {
        let (keys, state) = self
            .card
            .store()
            .load()
            .expect("a SimStore's durable image always decodes");
        let mut store = std::mem::take(self.card.store_mut());
        store.tear_at = None;
        self.card = VirtualCard::new(
            keys,
            state,
            store,
            Box::new(SeededRandom::new(self.seed ^ self.apdus)),
        );
        self.card.power_on();
    }

    fn next_fault(&mut self) -> Option<Fault> {
        match &mut self.plan {
            FaultPlan::None => None,
            FaultPlan::Random { rng, one_in } => {
                (rng.below(*one_in) == 0).then(|| Fault::ALL[rng.below(6) as usize])
            }
            FaultPlan::At { apdu, fault } => (*apdu == self.apdus).then_some(*fault),
        }
    }
}

impl CardTransport for TearingLink {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.apdus += 1;
        let Some(fault) = self.next_fault() else {
            return Ok(self.card.process_apdu(command));
        };
        self.faults += 1;
        match fault {
            Fault::DropCommand => {}
            Fault::LoseResponse => {
                self.card.process_apdu(command);
            }
            Fault::TearCommit(step) => {
                self.card.store_mut().tear_at = Some(step);
                self.card.process_apdu(command);
            }
        }
        self.power_cycle();
        Err(TransportError::CardLost)
    }
}
