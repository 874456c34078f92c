//! Shared by the PC/SC integration tests: whether to run, and a virtual card served into
//! vpcd's reader from a background thread.
//!
//! Policy: with `ONECARD_PCSC_TESTS=1` (CI) the tests must run and fail loudly when pcscd or
//! the vpcd reader is missing; without it they print why they skip and pass, so a developer
//! without pcscd can still run `cargo test`.

#![allow(dead_code)]

use onecard_pcsc::{list_readers, ConnectOptions, PcscTransport};
use onecard_proto::SmartCard;
use onecard_vpcd::{serve, Backoff, Hooks, ServeConfig, ServeStats, VpcdError};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// vpcd's slot 0: reader "Virtual PCD 00 00" on this port.
pub const SLOT0_PORT: u16 = onecard_vpcd::DEFAULT_PORT;
/// The reader name of slot 0.
pub const SLOT0_READER: &str = "Virtual PCD 00 00";

/// Tests in one binary share one vpcd slot: they take turns.
static SLOT: Mutex<()> = Mutex::new(());

/// Holds the slot for the duration of a test.
pub struct SlotGuard(#[allow(dead_code)] MutexGuard<'static, ()>);

/// `Some(guard)` when the test should run; `None` (after printing why) when it may skip.
/// Panics when `ONECARD_PCSC_TESTS=1` and the environment is not ready.
pub fn pcsc_or_skip(test: &str) -> Option<SlotGuard> {
    let required = std::env::var("ONECARD_PCSC_TESTS").is_ok_and(|v| v == "1");
    let problem = match list_readers() {
        Ok(readers) if readers.iter().any(|r| r == SLOT0_READER) => None,
        Ok(readers) => Some(format!(
            "no {SLOT0_READER:?} reader (readers: {readers:?}); is vsmartcard-vpcd installed?"
        )),
        Err(e) => Some(format!("PC/SC unavailable: {e}")),
    };
    match problem {
        None => Some(SlotGuard(SLOT.lock().unwrap_or_else(|p| p.into_inner()))),
        Some(p) if required => panic!("{test}: ONECARD_PCSC_TESTS=1 but {p}"),
        Some(p) => {
            note(&format!(
                "{test}: skipped: {p} (set ONECARD_PCSC_TESTS=1 to require it)"
            ));
            None
        }
    }
}

/// Prints a line the test harness does not capture (it captures only `print!`-family
/// output), so a skip is visible in a normal `cargo test` run.
pub fn note(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A card being served into vpcd slot 0 by `onecard_vpcd::serve` on a background thread.
/// Dropping it (or [`Served::stop`]) removes the card from the reader.
pub struct Served<C: SmartCard + Send + 'static> {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<(C, Result<ServeStats, VpcdError>)>>,
}

impl<C: SmartCard + Send + 'static> Served<C> {
    /// Starts serving `card`.
    pub fn start(card: C) -> Self {
        Self::start_with(card, ())
    }

    /// Starts serving `card` with `hooks` (e.g. one that tears the link at a chosen APDU).
    pub fn start_with<H: Hooks + Send + 'static>(card: C, hooks: H) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let mut config = ServeConfig::new(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::LOCALHOST,
            SLOT0_PORT,
        )));
        config.poll_interval = Duration::from_millis(20);
        config.backoff = Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
            max_attempts: 40,
        };
        let handle = std::thread::spawn(move || {
            let mut card = card;
            let mut hooks = hooks;
            let result = serve(&mut card, &config, &mut hooks, &flag);
            (card, result)
        });
        Served {
            stop,
            handle: Some(handle),
        }
    }

    /// Removes the card from the reader and returns it with the bridge's counters.
    pub fn stop(self) -> (C, ServeStats) {
        let (card, result) = self.stop_any();
        (card, result.expect("bridge ended with an error"))
    }

    /// Like [`Served::stop`], returning the bridge's result whatever it was (a hook may
    /// have ended it already).
    pub fn stop_any(mut self) -> (C, Result<ServeStats, VpcdError>) {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.handle.take().expect("not yet stopped");
        handle.join().expect("bridge thread panicked")
    }
}

impl<C: SmartCard + Send + 'static> Drop for Served<C> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Connects to the served card, waiting for pcscd to notice it.
pub fn connect() -> PcscTransport {
    PcscTransport::connect_with(&ConnectOptions {
        reader: Some(SLOT0_READER.to_string()),
        wait: Duration::from_secs(15),
        exclusive: true,
        chain_on_t1: false,
    })
    .expect("connect to the virtual card through pcscd")
}

/// Waits until pcscd reports slot 0 empty, so the next test starts from a known state.
/// "Empty" means pcscd saw the removal, not merely that the card is not usable: a card
/// left mute by a torn exchange must be seen leaving before a new one is inserted.
pub fn wait_until_removed() {
    let ctx = pcsc::Context::establish(pcsc::Scope::User).expect("PC/SC context");
    let name = std::ffi::CString::new(SLOT0_READER).expect("reader name");
    let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
    for _ in 0..100 {
        match ctx.get_status_change(Duration::from_millis(100), &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => panic!("get status change: {e}"),
        }
        if states[0].event_state().contains(pcsc::State::EMPTY) {
            return;
        }
        states[0].sync_current_state();
    }
    panic!("pcscd still shows a card in {SLOT0_READER} after 10 s");
}
