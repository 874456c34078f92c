//! `onecard demo`: the main job until the city simulation exists. Issues a card from the sample
//! issuer, loads it, and runs an entry and an exit tap at Beijing stations through the real
//! protocol, printing every APDU (in the trace format `onecard trace verify` reads) and the
//! balances.

use anyhow::{Context, Result};
use onecard_card::{Family, OsRandom, VirtualCard, VolatileStore};
use onecard_crypto::Algorithm;
use onecard_proto::files::{sfi, JourneyStatus, MetroRecord, StationCode, TripRecord};
use onecard_proto::{hex, CardTransport, Date, DateTime, Fen, InProcess, Time, TransportError};
use onecard_sam::{Hsm, MemorySerials, Psam, SoftwareKeyStore};
use onecard_sim::sample::{sample_card, sample_master_keys, SAMPLE_ISSUER};
use onecard_terminal::{CappRecord, CardSession, LoadOutcome, PurchaseOutcome};
use std::sync::Arc;

/// Prints each exchange as trace lines.
struct Printing<T>(T);

impl<T: CardTransport> CardTransport for Printing<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        println!("> {}", hex::encode(command));
        let r = self.0.transmit(command)?;
        println!("< {}", hex::encode(&r));
        Ok(r)
    }
}

const SERIAL: [u8; 10] = [0x03, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
const GATE_IN: [u8; 6] = [0x30, 0x00, 0x00, 0x00, 0x01, 0x01];
const GATE_OUT: [u8; 6] = [0x30, 0x00, 0x00, 0x00, 0x02, 0x01];
const TOP_UP: [u8; 6] = [0x00, 0x00, 0x01, 0x00, 0x00, 0x50];

fn at(h: u8, m: u8) -> DateTime {
    DateTime {
        date: Date {
            year: 2026,
            month: 11,
            day: 25,
        },
        time: Time {
            hour: h,
            minute: m,
            second: 0,
        },
    }
}

/// Runs the demo.
pub fn run() -> Result<()> {
    let city = onecard_fares::builtin::city("beijing").context("Beijing fare data")?;
    let (from_name, to_name) = ("西直门", "国贸");
    let from = city.station_by_name(from_name)?;
    let to = city.station_by_name(to_name)?;
    let fare = city
        .base_fare(from, to)
        .context("no fare between the demo stations")?;
    let net = city.network().context("Beijing has a network")?;
    let line_of = |s: u16| {
        net.stations
            .get(usize::from(s))
            .and_then(|st| st.lines.first().copied())
            .unwrap_or(0)
    };

    let algorithm = Algorithm::Tdes;
    let (keys, state) = sample_card(
        Family::TUnion,
        algorithm,
        SERIAL,
        onecard_card::DEFAULT_MAX_BALANCE,
    )?;
    let card = VirtualCard::new(keys, state, VolatileStore, Box::new(OsRandom));
    let store =
        Arc::new(SoftwareKeyStore::new().with_issuer(SAMPLE_ISSUER, sample_master_keys(algorithm)));
    let hsm = Hsm::new(store.clone());

    println!(
        "# onecard demo: a T-Union card from the sample issuer (3DES), serial {}",
        hex::encode(&SERIAL)
    );
    println!("# 1. top-up of 50.00 yuan, authorised by the host security module");
    let mut s = CardSession::open(Printing(InProcess(card)))?;
    let LoadOutcome::Done(l) = s.load(&hsm, Fen::yuan(50), TOP_UP, at(7, 50))? else {
        anyhow::bail!("the in-process link cannot tear")
    };
    println!(
        "# loaded {}: balance {} -> {}, TAC {} verified by host: {}",
        l.amount,
        l.balance_before,
        l.balance_after,
        hex::encode(&l.tac),
        l.tac_verified
    );

    println!("# 2. entry tap at {from_name}: zero-amount compound purchase writing the metro and trip records");
    let mut gate_in = Psam::new(GATE_IN, store.clone(), MemorySerials(1));
    let mut metro = MetroRecord::empty();
    metro.status = JourneyStatus::Entered;
    metro.entry_station = StationCode {
        line: line_of(from),
        station: from,
    };
    metro.entry_line = line_of(from);
    metro.entry_time = Some(at(8, 0));
    metro.entry_terminal[..6].copy_from_slice(&GATE_IN);
    metro.max_fare = Fen::yuan(10);
    let trip = |ty: u8, station: u16, amount: Fen, after: Fen, when: DateTime, gate: [u8; 6]| {
        let mut terminal = [0u8; 8];
        terminal[..6].copy_from_slice(&gate);
        TripRecord {
            trip_type: ty,
            terminal,
            industry: 1,
            line: line_of(station),
            station,
            operator: 0,
            amount,
            balance_after: after,
            when,
            acquirer_city: [0x10, 0x00],
            acquirer_institution: [0; 8],
        }
        .to_bytes()
        .to_vec()
    };
    let balance = s.balance()?;
    let records = [
        CappRecord {
            p1: 1,
            sfi: sfi::PROCESS,
            image: metro.to_bytes().to_vec(),
        },
        CappRecord {
            p1: 0,
            sfi: sfi::TRIPS,
            image: trip(0x03, from, Fen::ZERO, balance, at(8, 0), GATE_IN),
        },
    ];
    let PurchaseOutcome::Done(e) = s.purchase(&mut gate_in, Fen::ZERO, at(8, 0), Some(&records))?
    else {
        anyhow::bail!("the in-process link cannot tear")
    };
    println!(
        "# entry: counter {}, TAC {}, MAC2 verified by PSAM: {}",
        e.counter,
        hex::encode(&e.tac),
        e.mac2_verified
    );

    println!("# 3. exit tap at {to_name}: the fare is {fare} yuan ({} m); compound purchase closing the journey", net.distance(from, to).unwrap_or(0));
    let mut gate_out = Psam::new(GATE_OUT, store, MemorySerials(1));
    let raw = s.read_record(sfi::PROCESS, 1)?.context("no metro record")?;
    let mut m = MetroRecord::parse(&raw)?;
    m.status = JourneyStatus::Exited;
    m.exit_station = StationCode {
        line: line_of(to),
        station: to,
    };
    m.exit_time = Some(at(8, 32));
    m.exit_terminal[..6].copy_from_slice(&GATE_OUT);
    m.monthly.year_month = 202611;
    m.monthly.spent = m.monthly.spent.checked_add(fare).context("monthly total")?;
    m.monthly.rides += 1;
    let after = balance.checked_sub(fare).context("insufficient balance")?;
    let records = [
        CappRecord {
            p1: 1,
            sfi: sfi::PROCESS,
            image: m.to_bytes().to_vec(),
        },
        CappRecord {
            p1: 0,
            sfi: sfi::TRIPS,
            image: trip(0x04, to, fare, after, at(8, 32), GATE_OUT),
        },
    ];
    let PurchaseOutcome::Done(x) = s.purchase(&mut gate_out, fare, at(8, 32), Some(&records))?
    else {
        anyhow::bail!("the in-process link cannot tear")
    };
    println!(
        "# exit: fare {}, balance {} -> {}, counter {}, TAC {}, MAC2 verified by PSAM: {}",
        x.amount,
        x.balance_before,
        x.balance_after,
        x.counter,
        hex::encode(&x.tac),
        x.mac2_verified
    );
    println!(
        "# balance now {} yuan; {} APDUs exchanged",
        s.balance()?,
        s.apdu_count()
    );
    Ok(())
}
