//! The bridge loop: connect to vpcd, answer its messages with a [`SmartCard`], reconnect when
//! vpcd goes away.

use crate::error::{HookError, VpcdError};
use crate::frame::{
    write_frame, Message, DEFAULT_PORT, MAX_APDU_LEN, MAX_ATR_LEN, MAX_RESPONSE_LEN, MIN_ATR_LEN,
};
use onecard_proto::SmartCard;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, ErrorKind, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Answer to an oversized command: wrong length.
const SW_WRONG_LENGTH: [u8; 2] = [0x67, 0x00];
/// Answer in place of a response the card got wrong (empty, or longer than a short APDU
/// allows): no precise diagnosis.
const SW_NO_DIAGNOSIS: [u8; 2] = [0x6F, 0x00];

/// How persistent the bridge is when vpcd is not (yet) listening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failed attempt.
    pub initial: Duration,
    /// The wait doubles per failure up to this.
    pub max: Duration,
    /// Consecutive failed attempts before [`serve`] gives up. A successful connection resets
    /// the count, so each vpcd restart gets the full budget.
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// 100 ms doubling to 2 s, 60 attempts: about two minutes for pcscd to come up.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            max_attempts: 60,
        }
    }
}

impl Backoff {
    /// The wait after the `failures`-th consecutive failure (1-based): exponential, capped,
    /// then jittered down to between half and all of it so that several bridges restarted
    /// together do not hammer vpcd in lockstep.
    pub fn delay(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(20);
        let base = self
            .initial
            .saturating_mul(1u32 << shift)
            .min(self.max)
            .max(Duration::from_millis(1));
        let half = base / 2;
        let spread = u64::try_from((base - half).as_nanos()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            random_u64() % spread
        };
        half + Duration::from_nanos(jitter)
    }
}

/// Jitter only needs to differ between processes and calls, not to be unpredictable:
/// std's hash keys (random per thread, then stepped per `RandomState`) give that without a
/// dependency; the clock is mixed in for good measure.
fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    h.finish()
}

/// Where and how to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeConfig {
    /// vpcd's address: `127.0.0.1:35963` for the first slot, port + 1 for the second.
    pub addr: SocketAddr,
    /// Retry policy while vpcd is unreachable.
    pub backoff: Backoff,
    /// Timeout of one TCP connect attempt.
    pub connect_timeout: Duration,
    /// How often a blocked read or a backoff sleep wakes up to look at the stop flag: the
    /// worst-case delay between setting `stop` and [`serve`] returning, except during a
    /// connect attempt (bounded by `connect_timeout`; instant on loopback).
    pub poll_interval: Duration,
    /// Once a frame has started, the rest must arrive within this time.
    pub frame_timeout: Duration,
    /// Reconnect after vpcd closes the link (pcscd restarted). When false, the first
    /// disconnection ends [`serve`] with `Ok`.
    pub reconnect: bool,
    /// Pause between a lost link and the next connect. vpcd notices a card's absence only
    /// on pcscd's next presence poll (every 400 ms); reconnecting sooner makes the card look
    /// as if it never left, and PC/SC clients then never see the removal they must react to.
    pub reinsert_delay: Duration,
}

impl ServeConfig {
    /// Defaults for vpcd at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        ServeConfig {
            addr,
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(2),
            poll_interval: Duration::from_millis(100),
            frame_timeout: Duration::from_secs(5),
            reconnect: true,
            reinsert_delay: Duration::from_secs(1),
        }
    }
}

impl Default for ServeConfig {
    /// vpcd's first slot on the loopback interface.
    fn default() -> Self {
        ServeConfig::new(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::LOCALHOST,
            DEFAULT_PORT,
        )))
    }
}

/// Counters of what happened while serving.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeStats {
    /// TCP connect attempts, successful or not.
    pub connect_attempts: u64,
    /// Links established.
    pub connections: u64,
    /// Links lost or closed by vpcd.
    pub disconnects: u64,
    /// Power-on requests from vpcd.
    pub power_ons: u64,
    /// Power-off requests from vpcd.
    pub power_offs: u64,
    /// Warm resets requested by vpcd.
    pub resets: u64,
    /// ATR requests (vpcd's presence polls included).
    pub atr_requests: u64,
    /// Command APDUs passed to the card.
    pub apdus: u64,
    /// Command APDUs that arrived while the card was off: the card was powered first, as a
    /// contactless card is whenever it is in the field.
    pub implicit_power_ons: u64,
    /// Zero-length frames ignored.
    pub empty_frames: u64,
    /// Frames longer than [`MAX_APDU_LEN`], skipped and answered `67 00`.
    pub oversized_frames: u64,
    /// One-byte messages with an undefined control code, ignored.
    pub unknown_controls: u64,
    /// Links that ended inside a frame (or stalled mid-frame).
    pub truncated_frames: u64,
    /// Card responses replaced by `6F 00` because they were empty or too long.
    pub replaced_responses: u64,
}

/// Why a link to vpcd ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Disconnect {
    /// vpcd closed the link between frames (pcscd stopped or restarted).
    Closed,
    /// The link failed inside a frame or on a socket error.
    Error(VpcdError),
}

/// What the bridge reports as it runs, for the embedding program to log.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A connect attempt failed; the next one follows after `retry_in`.
    ConnectFailed {
        /// Consecutive failures so far.
        attempt: u32,
        /// The attempt's error.
        error: &'a io::Error,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
    /// Connected to vpcd; the card is in the reader.
    Connected {
        /// vpcd's address.
        peer: SocketAddr,
    },
    /// The link to vpcd ended; the card has been powered off.
    Disconnected(&'a Disconnect),
    /// vpcd powered the card on.
    PowerOn,
    /// vpcd powered the card off.
    PowerOff,
    /// vpcd reset the card.
    Reset,
    /// A frame was refused or ignored ([`VpcdError::EmptyFrame`],
    /// [`VpcdError::FrameTooLong`]), or an unknown control code arrived (`None`).
    Rejected(Option<&'a VpcdError>),
    /// The card's response was replaced by `6F 00`.
    ResponseReplaced {
        /// The length of what the card returned.
        len: usize,
    },
}

/// Callbacks from [`serve`]. Both have no-op defaults; `()` implements this trait.
pub trait Hooks {
    /// Called for every noteworthy event. The library never logs; this is where a binary
    /// does.
    fn on_event(&mut self, event: &Event<'_>) {
        let _ = event;
    }

    /// Called after the card has processed a command APDU and before the response goes to
    /// vpcd: the place to make the card's new state durable. On `Err` the response is
    /// withheld, the link is dropped (the terminal sees a torn exchange and recovers, as it
    /// would for a card pulled from the field) and [`serve`] returns [`VpcdError::Hook`].
    fn after_apdu(&mut self, command: &[u8], response: &[u8]) -> Result<(), HookError> {
        let _ = (command, response);
        Ok(())
    }
}

impl Hooks for () {}

/// Serves `card` to vpcd until `stop` is set.
///
/// Connects to vpcd as its TCP client, retrying with [`Backoff`] while vpcd is not
/// listening. On connection the card enters the field: it is powered once so that its ATR
/// can answer vpcd's presence polls; vpcd's own power-on, reset and power-off requests are
/// passed on. When the link drops the card is powered off and, if
/// [`ServeConfig::reconnect`] is set, the bridge reconnects.
///
/// Returns the counters when `stop` is set (checked every [`ServeConfig::poll_interval`])
/// or, without `reconnect`, when the link ends. Errors: vpcd unreachable after
/// `backoff.max_attempts` consecutive attempts, an ATR that vpcd cannot present, or a
/// failed hook.
pub fn serve<C, H>(
    card: &mut C,
    config: &ServeConfig,
    hooks: &mut H,
    stop: &AtomicBool,
) -> Result<ServeStats, VpcdError>
where
    C: SmartCard + ?Sized,
    H: Hooks + ?Sized,
{
    let mut stats = ServeStats::default();
    let mut failures: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        stats.connect_attempts += 1;
        let stream = match TcpStream::connect_timeout(&config.addr, config.connect_timeout) {
            Ok(stream) => stream,
            Err(error) => {
                failures = failures.saturating_add(1);
                if failures >= config.backoff.max_attempts {
                    return Err(VpcdError::ConnectFailed {
                        addr: config.addr,
                        attempts: failures,
                        source: error,
                    });
                }
                let retry_in = config.backoff.delay(failures);
                hooks.on_event(&Event::ConnectFailed {
                    attempt: failures,
                    error: &error,
                    retry_in,
                });
                sleep_unless_stopped(retry_in, config.poll_interval, stop);
                continue;
            }
        };
        failures = 0;
        stats.connections += 1;
        hooks.on_event(&Event::Connected { peer: config.addr });

        let mut session = Session {
            card: &mut *card,
            hooks: &mut *hooks,
            stats: &mut stats,
            config,
            stop,
            stream,
            atr: Vec::new(),
            powered: false,
        };
        let end = session.run();
        // Whatever ended the link, the card has left the field.
        if session.powered {
            session.card.power_off();
        }
        drop(session);
        match end {
            Ok(SessionEnd::Stopped) => break,
            Ok(SessionEnd::Disconnected(reason)) => {
                stats.disconnects += 1;
                if matches!(
                    reason,
                    Disconnect::Error(VpcdError::Truncated { .. } | VpcdError::FrameTimeout(_))
                ) {
                    stats.truncated_frames += 1;
                }
                hooks.on_event(&Event::Disconnected(&reason));
                if !config.reconnect {
                    break;
                }
                sleep_unless_stopped(config.reinsert_delay, config.poll_interval, stop);
            }
            Err(fatal) => return Err(fatal),
        }
    }
    Ok(stats)
}

/// Sleeps for `total`, waking every `slice` to honour `stop`.
fn sleep_unless_stopped(total: Duration, slice: Duration, stop: &AtomicBool) {
    let deadline = Instant::now() + total;
    let slice = slice.max(Duration::from_millis(1));
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep((deadline - now).min(slice));
    }
}

enum SessionEnd {
    Stopped,
    Disconnected(Disconnect),
}

/// How a stop-aware read ended.
enum Fill {
    Full,
    /// End of stream after `got` bytes.
    Eof {
        got: usize,
    },
    Stopped,
}

struct Session<'a, C: SmartCard + ?Sized, H: Hooks + ?Sized> {
    card: &'a mut C,
    hooks: &'a mut H,
    stats: &'a mut ServeStats,
    config: &'a ServeConfig,
    stop: &'a AtomicBool,
    stream: TcpStream,
    /// The ATR of the last power-on or reset: answers vpcd's frequent presence polls
    /// without touching the card.
    atr: Vec<u8>,
    powered: bool,
}

impl<C: SmartCard + ?Sized, H: Hooks + ?Sized> Session<'_, C, H> {
    /// Serves one link. `Err` only for conditions that must end [`serve`] itself.
    fn run(&mut self) -> Result<SessionEnd, VpcdError> {
        if let Err(e) = self.prepare_socket() {
            return Ok(SessionEnd::Disconnected(Disconnect::Error(e.into())));
        }
        self.power_on()?;
        let mut buf = [0u8; MAX_APDU_LEN];
        loop {
            match self.step(&mut buf) {
                Ok(None) => {}
                Ok(Some(end)) => return Ok(end),
                Err(
                    fatal @ (VpcdError::InvalidAtr { .. }
                    | VpcdError::Hook(_)
                    | VpcdError::PayloadTooLong { .. }),
                ) => return Err(fatal),
                Err(link) => return Ok(SessionEnd::Disconnected(Disconnect::Error(link))),
            }
        }
    }

    fn prepare_socket(&mut self) -> io::Result<()> {
        // APDUs are tiny and latency-bound: never let Nagle hold a response back.
        self.stream.set_nodelay(true)?;
        self.stream.set_read_timeout(Some(
            self.config.poll_interval.max(Duration::from_millis(1)),
        ))?;
        self.stream.set_write_timeout(Some(
            self.config.frame_timeout.max(Duration::from_millis(1)),
        ))?;
        Ok(())
    }

    /// Handles one message. `Ok(Some(_))` ends the link.
    fn step(&mut self, buf: &mut [u8; MAX_APDU_LEN]) -> Result<Option<SessionEnd>, VpcdError> {
        let mut header = [0u8; 2];
        let deadline = match self.fill(&mut header, None)? {
            (Fill::Full, deadline) => deadline,
            (Fill::Stopped, _) => return Ok(Some(SessionEnd::Stopped)),
            (Fill::Eof { got: 0 }, _) => {
                return Ok(Some(SessionEnd::Disconnected(Disconnect::Closed)))
            }
            (Fill::Eof { got }, _) => return Err(VpcdError::Truncated { expected: 2, got }),
        };
        let len = usize::from(u16::from_be_bytes(header));
        if len == 0 {
            self.stats.empty_frames += 1;
            self.hooks
                .on_event(&Event::Rejected(Some(&VpcdError::EmptyFrame)));
            return Ok(None);
        }
        if len > MAX_APDU_LEN {
            if let Some(end) = self.skip(len, deadline)? {
                return Ok(Some(end));
            }
            self.stats.oversized_frames += 1;
            let error = VpcdError::FrameTooLong {
                len,
                max: MAX_APDU_LEN,
            };
            self.hooks.on_event(&Event::Rejected(Some(&error)));
            write_frame(&mut self.stream, &SW_WRONG_LENGTH)?;
            return Ok(None);
        }
        let payload = &mut buf[..len];
        match self.fill(payload, deadline)? {
            (Fill::Full, _) => {}
            (Fill::Stopped, _) => return Ok(Some(SessionEnd::Stopped)),
            (Fill::Eof { got }, _) => return Err(VpcdError::Truncated { expected: len, got }),
        }
        match Message::classify(payload) {
            // `len > 0` was checked above.
            None => Ok(None),
            Some(Message::PowerOff) => {
                self.stats.power_offs += 1;
                if self.powered {
                    self.card.power_off();
                    self.powered = false;
                }
                self.hooks.on_event(&Event::PowerOff);
                Ok(None)
            }
            Some(Message::PowerOn) => {
                self.stats.power_ons += 1;
                self.power_on()?;
                self.hooks.on_event(&Event::PowerOn);
                Ok(None)
            }
            Some(Message::Reset) => {
                self.stats.resets += 1;
                let atr = self.card.reset();
                self.set_atr(atr)?;
                self.hooks.on_event(&Event::Reset);
                Ok(None)
            }
            Some(Message::GetAtr) => {
                self.stats.atr_requests += 1;
                write_frame(&mut self.stream, &self.atr)?;
                Ok(None)
            }
            Some(Message::UnknownControl(_)) => {
                // vpcd waits for no answer to a control byte, so answering would desync.
                self.stats.unknown_controls += 1;
                self.hooks.on_event(&Event::Rejected(None));
                Ok(None)
            }
            Some(Message::Apdu(command)) => {
                if !self.powered {
                    self.stats.implicit_power_ons += 1;
                    self.power_on()?;
                }
                self.stats.apdus += 1;
                let mut response = self.card.process_apdu(command);
                if response.len() < 2 || response.len() > MAX_RESPONSE_LEN {
                    // vpcd reads an empty answer as a dead card; an over-long one breaks
                    // short-APDU readers. Either is a card bug the terminal should see as an
                    // error status, not as a lost link.
                    self.stats.replaced_responses += 1;
                    self.hooks.on_event(&Event::ResponseReplaced {
                        len: response.len(),
                    });
                    response = SW_NO_DIAGNOSIS.to_vec();
                }
                self.hooks
                    .after_apdu(command, &response)
                    .map_err(VpcdError::Hook)?;
                write_frame(&mut self.stream, &response)?;
                Ok(None)
            }
        }
    }

    fn power_on(&mut self) -> Result<(), VpcdError> {
        let atr = self.card.power_on();
        self.powered = true;
        self.set_atr(atr)
    }

    fn set_atr(&mut self, atr: Vec<u8>) -> Result<(), VpcdError> {
        if !(MIN_ATR_LEN..=MAX_ATR_LEN).contains(&atr.len()) {
            return Err(VpcdError::InvalidAtr { len: atr.len() });
        }
        self.powered = true;
        self.atr = atr;
        Ok(())
    }

    /// Reads and discards `len` bytes through a fixed buffer: an announced length is never
    /// trusted with an allocation.
    fn skip(
        &mut self,
        len: usize,
        mut deadline: Option<Instant>,
    ) -> Result<Option<SessionEnd>, VpcdError> {
        let mut scratch = [0u8; 512];
        let mut left = len;
        while left > 0 {
            let chunk = left.min(scratch.len());
            match self.fill(&mut scratch[..chunk], deadline)? {
                (Fill::Full, d) => deadline = d,
                (Fill::Stopped, _) => return Ok(Some(SessionEnd::Stopped)),
                (Fill::Eof { got }, _) => {
                    return Err(VpcdError::Truncated {
                        expected: len,
                        got: len - left + got,
                    })
                }
            }
            left -= chunk;
        }
        Ok(None)
    }

    /// Fills `buf`, waking every poll interval to check `stop`. Waiting for the first byte
    /// of a frame is unbounded (vpcd may be idle); once a frame has started, `deadline`
    /// (set here on the first byte if `None`) bounds the rest. Returns the deadline for the
    /// remainder of the frame.
    fn fill(
        &mut self,
        buf: &mut [u8],
        mut deadline: Option<Instant>,
    ) -> Result<(Fill, Option<Instant>), VpcdError> {
        let mut got = 0;
        while got < buf.len() {
            if self.stop.load(Ordering::Relaxed) {
                return Ok((Fill::Stopped, deadline));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(VpcdError::FrameTimeout(self.config.frame_timeout));
            }
            match self.stream.read(&mut buf[got..]) {
                Ok(0) => return Ok((Fill::Eof { got }, deadline)),
                Ok(n) => {
                    got += n;
                    if deadline.is_none() {
                        deadline = Some(Instant::now() + self.config.frame_timeout);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok((Fill::Full, deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters_within_bounds() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            max_attempts: 5,
        };
        for _ in 0..50 {
            let d1 = b.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = b.delay(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d_big = b.delay(u32::MAX);
            assert!(d_big >= Duration::from_millis(500) && d_big <= Duration::from_secs(1));
        }
    }

    #[test]
    fn zero_backoff_still_waits_a_little() {
        let b = Backoff {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            max_attempts: 1,
        };
        assert!(b.delay(1) <= Duration::from_millis(1));
    }
}
