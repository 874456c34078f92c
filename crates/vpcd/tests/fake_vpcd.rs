//! The bridge against a fake vpcd: a std `TcpListener` on an ephemeral loopback port that
//! speaks vpcd's side of the protocol byte for byte.

use onecard_proto::SmartCard;
use onecard_vpcd::frame::read_frame;
use onecard_vpcd::{
    serve, Backoff, Event, HookError, Hooks, ServeConfig, ServeStats, VpcdError, MAX_APDU_LEN,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const ATR: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];
const ATR_AFTER_RESET: [u8; 4] = [0x3B, 0x81, 0x80, 0x01];

/// A card that records what happened to it and answers GET BALANCE with 1.00 yuan.
#[derive(Default)]
struct RecordingCard {
    log: Vec<String>,
    powered: bool,
    /// Return an empty response to the next APDU (a card bug the bridge must contain).
    answer_empty: bool,
}

impl SmartCard for RecordingCard {
    fn power_on(&mut self) -> Vec<u8> {
        self.log.push("on".into());
        self.powered = true;
        ATR.to_vec()
    }
    fn power_off(&mut self) {
        self.log.push("off".into());
        self.powered = false;
    }
    fn reset(&mut self) -> Vec<u8> {
        self.log.push("reset".into());
        self.powered = true;
        ATR_AFTER_RESET.to_vec()
    }
    fn process_apdu(&mut self, command: &[u8]) -> Vec<u8> {
        self.log.push(format!("apdu:{}", hex(command)));
        assert!(self.powered, "APDU delivered to an unpowered card");
        if std::mem::take(&mut self.answer_empty) {
            return Vec::new();
        }
        match command {
            [0x80, 0x5C, 0x00, 0x02, 0x04] => vec![0x00, 0x00, 0x00, 0x64, 0x90, 0x00],
            [_, _, _, _] | [_, _, _, _, _] => vec![0x6A, 0x86],
            _ => vec![0x67, 0x00],
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Collects event names so tests can see what the bridge reported.
#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    fail_after_apdu: bool,
}

impl Hooks for Recorder {
    fn on_event(&mut self, event: &Event<'_>) {
        let name = match event {
            Event::ConnectFailed { .. } => "connect_failed".to_string(),
            Event::Connected { .. } => "connected".to_string(),
            Event::Disconnected(d) => format!("disconnected:{d:?}"),
            Event::PowerOn => "power_on".to_string(),
            Event::PowerOff => "power_off".to_string(),
            Event::Reset => "reset".to_string(),
            Event::Rejected(Some(e)) => format!("rejected:{e}"),
            Event::Rejected(None) => "rejected:unknown control".to_string(),
            Event::ResponseReplaced { len } => format!("replaced:{len}"),
            other => format!("{other:?}"),
        };
        self.events.push(name);
    }

    fn after_apdu(&mut self, _command: &[u8], _response: &[u8]) -> Result<(), HookError> {
        if self.fail_after_apdu {
            return Err("disk full".into());
        }
        Ok(())
    }
}

type Served = (Result<ServeStats, VpcdError>, RecordingCard, Recorder);

struct Bridge {
    handle: JoinHandle<Served>,
    stop: Arc<AtomicBool>,
}

impl Bridge {
    fn start(config: ServeConfig, card: RecordingCard, mut hooks: Recorder) -> Bridge {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let mut card = card;
            let result = serve(&mut card, &config, &mut hooks, &flag);
            (result, card, hooks)
        });
        Bridge { handle, stop }
    }

    fn finish(self) -> Served {
        self.handle.join().expect("bridge thread panicked")
    }

    fn stop(self) -> Served {
        self.stop.store(true, Ordering::Relaxed);
        self.finish()
    }
}

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = l.local_addr().expect("local addr");
    (l, addr)
}

fn config(addr: SocketAddr, reconnect: bool) -> ServeConfig {
    let mut c = ServeConfig::new(addr);
    c.reconnect = reconnect;
    c.poll_interval = Duration::from_millis(20);
    c.frame_timeout = Duration::from_millis(500);
    c.reinsert_delay = Duration::from_millis(10);
    c.backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        max_attempts: 20,
    };
    c
}

/// vpcd's side of one link.
struct FakeVpcd {
    s: TcpStream,
}

impl FakeVpcd {
    fn accept(l: &TcpListener) -> FakeVpcd {
        let (s, _) = l.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        FakeVpcd { s }
    }
    fn send_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("send");
    }
    fn send(&mut self, payload: &[u8]) {
        let len = u16::try_from(payload.len()).expect("short payload");
        let mut wire = len.to_be_bytes().to_vec();
        wire.extend_from_slice(payload);
        self.send_raw(&wire);
    }
    fn recv(&mut self) -> Vec<u8> {
        read_frame(&mut self.s, 1024)
            .expect("framed answer")
            .expect("answer before end of stream")
    }
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.send(apdu);
        self.recv()
    }
    fn atr(&mut self) -> Vec<u8> {
        self.transmit(&[4])
    }
    /// Asserts that the bridge sends nothing (within a short wait).
    fn expect_silence(&mut self) {
        self.s
            .set_read_timeout(Some(Duration::from_millis(150)))
            .expect("timeout");
        let mut b = [0u8; 1];
        match self.s.read(&mut b) {
            Ok(0) => panic!("bridge closed the link"),
            Ok(_) => panic!("bridge answered a message that takes no answer"),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{e}"
            ),
        }
        self.s
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
    }
    /// Reads until the bridge closes the link.
    fn expect_closed(&mut self) {
        let mut b = [0u8; 64];
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("link not closed: {e}"),
            }
        }
    }
}

#[test]
fn power_atr_apdu_reset_off_round_trip() {
    let (l, addr) = listener();
    let bridge = Bridge::start(
        config(addr, false),
        RecordingCard::default(),
        Recorder::default(),
    );
    let mut vpcd = FakeVpcd::accept(&l);

    // vpcd polls presence with GET ATR before it ever powers the card.
    assert_eq!(vpcd.atr(), ATR);
    vpcd.send(&[1]);
    vpcd.expect_silence();
    assert_eq!(vpcd.atr(), ATR);
    assert_eq!(
        vpcd.transmit(&[0x80, 0x5C, 0x00, 0x02, 0x04]),
        [0x00, 0x00, 0x00, 0x64, 0x90, 0x00]
    );
    assert_eq!(vpcd.transmit(&[0x00, 0xB0, 0x95, 0x00]), [0x6A, 0x86]);
    vpcd.send(&[2]);
    vpcd.expect_silence();
    assert_eq!(vpcd.atr(), ATR_AFTER_RESET);
    vpcd.send(&[0]);
    vpcd.expect_silence();
    // Presence polls go on while the card is unpowered and must not wake it.
    assert_eq!(vpcd.atr(), ATR_AFTER_RESET);
    // An APDU to an unpowered card powers it, as the field powers a contactless card.
    assert_eq!(
        vpcd.transmit(&[0x80, 0x5C, 0x00, 0x02, 0x04]),
        [0x00, 0x00, 0x00, 0x64, 0x90, 0x00]
    );
    drop(vpcd);

    let (result, card, hooks) = bridge.finish();
    let stats = result.expect("serve ends cleanly when vpcd closes");
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.disconnects, 1);
    assert_eq!(stats.power_ons, 1);
    assert_eq!(stats.resets, 1);
    assert_eq!(stats.power_offs, 1);
    assert_eq!(stats.atr_requests, 4);
    assert_eq!(stats.apdus, 3);
    assert_eq!(stats.implicit_power_ons, 1);
    assert_eq!(stats.truncated_frames, 0);
    assert_eq!(
        card.log,
        [
            "on",
            "on",
            "apdu:805C000204",
            "apdu:00B09500",
            "reset",
            "off",
            "on",
            "apdu:805C000204",
            "off"
        ]
    );
    assert_eq!(hooks.events.first().map(String::as_str), Some("connected"));
    assert_eq!(
        hooks.events.last().map(String::as_str),
        Some("disconnected:Closed")
    );
}

#[test]
fn malformed_frames_are_contained_and_the_link_stays_usable() {
    let (l, addr) = listener();
    let bridge = Bridge::start(
        config(addr, false),
        RecordingCard::default(),
        Recorder::default(),
    );
    let mut vpcd = FakeVpcd::accept(&l);

    // Zero length: nothing to answer, the next message still works.
    vpcd.send_raw(&[0, 0]);
    vpcd.expect_silence();
    assert_eq!(vpcd.atr(), ATR);

    // Unknown control code: ignored without an answer, like vpicc does.
    vpcd.send(&[3]);
    vpcd.expect_silence();

    // One byte over a short APDU: skipped and answered "wrong length".
    vpcd.send(&[0u8; MAX_APDU_LEN + 1]);
    assert_eq!(vpcd.recv(), [0x67, 0x00]);
    // The largest length two bytes can announce: skipped in fixed chunks, never buffered.
    vpcd.send(&vec![0xAAu8; 0xFFFF]);
    assert_eq!(vpcd.recv(), [0x67, 0x00]);
    // The largest accepted frame is passed to the card.
    assert_eq!(vpcd.transmit(&[0u8; MAX_APDU_LEN]), [0x67, 0x00]);

    // And the link is still in sync for an ordinary APDU.
    assert_eq!(
        vpcd.transmit(&[0x80, 0x5C, 0x00, 0x02, 0x04]),
        [0x00, 0x00, 0x00, 0x64, 0x90, 0x00]
    );
    drop(vpcd);

    let (result, card, hooks) = bridge.finish();
    let stats = result.expect("clean end");
    assert_eq!(stats.empty_frames, 1);
    assert_eq!(stats.unknown_controls, 1);
    assert_eq!(stats.oversized_frames, 2);
    assert_eq!(stats.apdus, 2);
    assert_eq!(
        card.log.iter().filter(|l| l.starts_with("apdu:")).count(),
        2
    );
    assert!(hooks
        .events
        .iter()
        .any(|e| e == "rejected:empty frame (length 0) from vpcd"));
    assert!(hooks
        .events
        .iter()
        .any(|e| e == "rejected:frame of 262 bytes exceeds the 261-byte limit for a command APDU"));
    assert!(hooks.events.iter().any(|e| e.contains("65535 bytes")));
}

#[test]
fn empty_card_response_is_replaced_by_an_error_status() {
    let (l, addr) = listener();
    let card = RecordingCard {
        answer_empty: true,
        ..RecordingCard::default()
    };
    let bridge = Bridge::start(config(addr, false), card, Recorder::default());
    let mut vpcd = FakeVpcd::accept(&l);
    assert_eq!(vpcd.transmit(&[0x00, 0x84, 0x00, 0x00, 0x04]), [0x6F, 0x00]);
    assert_eq!(
        vpcd.transmit(&[0x80, 0x5C, 0x00, 0x02, 0x04]),
        [0x00, 0x00, 0x00, 0x64, 0x90, 0x00]
    );
    drop(vpcd);
    let (result, _, hooks) = bridge.finish();
    assert_eq!(result.expect("clean end").replaced_responses, 1);
    assert!(hooks.events.iter().any(|e| e == "replaced:0"));
}

#[test]
fn truncated_stream_powers_the_card_off_and_reconnects() {
    let (l, addr) = listener();
    let bridge = Bridge::start(
        config(addr, true),
        RecordingCard::default(),
        Recorder::default(),
    );

    // Link 1: a frame announcing 5 bytes carries 2, then vpcd dies.
    let mut vpcd = FakeVpcd::accept(&l);
    assert_eq!(vpcd.atr(), ATR);
    vpcd.send_raw(&[0x00, 0x05, 0x80, 0x5C]);
    drop(vpcd);

    // Link 2: half a length header, then gone.
    let mut vpcd = FakeVpcd::accept(&l);
    vpcd.send_raw(&[0x00]);
    drop(vpcd);

    // Link 3: the header arrives but the payload stalls past the frame timeout.
    let mut vpcd = FakeVpcd::accept(&l);
    vpcd.send_raw(&[0x00, 0x05, 0x80]);
    vpcd.expect_closed();
    drop(vpcd);

    // Link 4: vpcd is back and the card works.
    let mut vpcd = FakeVpcd::accept(&l);
    assert_eq!(
        vpcd.transmit(&[0x80, 0x5C, 0x00, 0x02, 0x04]),
        [0x00, 0x00, 0x00, 0x64, 0x90, 0x00]
    );

    let (result, card, hooks) = bridge.stop();
    let stats = result.expect("stopped");
    assert_eq!(stats.connections, 4);
    assert_eq!(stats.disconnects, 3);
    assert_eq!(stats.truncated_frames, 3);
    assert_eq!(stats.apdus, 1);
    // Every link is an insertion (on) and every loss a removal (off), stop included.
    assert_eq!(card.log.iter().filter(|l| *l == "on").count(), 4);
    assert_eq!(card.log.iter().filter(|l| *l == "off").count(), 4);
    let disconnects: Vec<_> = hooks
        .events
        .iter()
        .filter(|e| e.starts_with("disconnected:"))
        .collect();
    assert_eq!(disconnects.len(), 3);
    assert!(
        disconnects[0].contains("expected: 5, got: 2"),
        "{disconnects:?}"
    );
    assert!(
        disconnects[1].contains("expected: 2, got: 1"),
        "{disconnects:?}"
    );
    assert!(disconnects[2].contains("FrameTimeout"), "{disconnects:?}");
}

#[test]
fn waits_for_vpcd_to_come_up() {
    // Reserve a port, free it, and start listening only after the bridge has failed a few
    // times.
    let (l, addr) = listener();
    drop(l);
    let bridge = Bridge::start(
        config(addr, false),
        RecordingCard::default(),
        Recorder::default(),
    );
    thread::sleep(Duration::from_millis(150));
    let l = TcpListener::bind(addr).expect("rebind the reserved port");
    let mut vpcd = FakeVpcd::accept(&l);
    assert_eq!(vpcd.atr(), ATR);
    drop(vpcd);
    let (result, _, hooks) = bridge.finish();
    let stats = result.expect("connected in the end");
    assert!(stats.connect_attempts >= 2, "{stats:?}");
    assert_eq!(stats.connections, 1);
    assert!(hooks.events.iter().any(|e| e == "connect_failed"));
}

#[test]
fn gives_up_after_the_configured_attempts() {
    let (l, addr) = listener();
    drop(l);
    let mut c = config(addr, true);
    c.backoff.max_attempts = 3;
    let started = Instant::now();
    let bridge = Bridge::start(c, RecordingCard::default(), Recorder::default());
    let (result, card, _) = bridge.finish();
    match result {
        Err(VpcdError::ConnectFailed {
            attempts: 3,
            addr: a,
            ..
        }) => assert_eq!(a, addr),
        other => panic!("expected ConnectFailed, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(card.log.is_empty(), "never connected, never powered");
}

#[test]
fn stop_flag_ends_an_idle_link_promptly() {
    let (l, addr) = listener();
    let bridge = Bridge::start(
        config(addr, true),
        RecordingCard::default(),
        Recorder::default(),
    );
    let mut vpcd = FakeVpcd::accept(&l);
    assert_eq!(vpcd.atr(), ATR);
    let started = Instant::now();
    let (result, card, _) = bridge.stop();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(result.expect("stopped").connections, 1);
    assert_eq!(card.log, ["on", "off"]);
    vpcd.expect_closed();
}

#[test]
fn failing_hook_withholds_the_response_and_ends_serving() {
    let (l, addr) = listener();
    let hooks = Recorder {
        fail_after_apdu: true,
        ..Recorder::default()
    };
    let bridge = Bridge::start(config(addr, true), RecordingCard::default(), hooks);
    let mut vpcd = FakeVpcd::accept(&l);
    vpcd.send(&[0x80, 0x5C, 0x00, 0x02, 0x04]);
    vpcd.expect_closed();
    let (result, card, _) = bridge.finish();
    match result {
        Err(VpcdError::Hook(e)) => assert_eq!(e.to_string(), "disk full"),
        other => panic!("expected a hook error, got {other:?}"),
    }
    assert_eq!(card.log.last().map(String::as_str), Some("off"));
}

#[test]
fn invalid_atr_is_refused() {
    struct NoAtr;
    impl SmartCard for NoAtr {
        fn power_on(&mut self) -> Vec<u8> {
            Vec::new()
        }
        fn power_off(&mut self) {}
        fn process_apdu(&mut self, _: &[u8]) -> Vec<u8> {
            vec![0x90, 0x00]
        }
    }
    let (l, addr) = listener();
    let handle = thread::spawn(move || {
        let stop = AtomicBool::new(false);
        serve(&mut NoAtr, &config(addr, true), &mut (), &stop)
    });
    let _vpcd = FakeVpcd::accept(&l);
    let result = handle.join().expect("no panic");
    assert!(matches!(result, Err(VpcdError::InvalidAtr { len: 0 })));
}

/// Arbitrary byte streams (deterministic pseudo-random) never panic the bridge, and it always
/// returns once vpcd goes away.
#[test]
fn arbitrary_streams_never_panic() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..40 {
        let (l, addr) = listener();
        let bridge = Bridge::start(
            config(addr, false),
            RecordingCard::default(),
            Recorder::default(),
        );
        let mut vpcd = FakeVpcd::accept(&l);
        let len = usize::try_from(next() % 600).expect("small");
        let mut bytes: Vec<u8> = (0..len).map(|_| (next() & 0xFF) as u8).collect();
        if round % 4 == 0 {
            // Make some streams mostly well-formed short frames so the card gets exercised.
            bytes = bytes
                .chunks(7)
                .flat_map(|c| {
                    let mut f = vec![0, u8::try_from(c.len()).expect("<= 7")];
                    f.extend_from_slice(c);
                    f
                })
                .collect();
        }
        // Writes can fail if the bridge already dropped the link; that is an outcome too.
        let _ = vpcd.s.write_all(&bytes);
        let _ = vpcd.s.shutdown(std::net::Shutdown::Write);
        // Drain answers so the bridge never blocks on a full socket buffer.
        let mut sink = Vec::new();
        let _ = vpcd.s.read_to_end(&mut sink);
        drop(vpcd);
        let (result, _, _) = bridge.finish();
        match result {
            Ok(stats) => assert_eq!(stats.connections, 1),
            Err(e) => panic!("round {round}: unexpected fatal error {e}"),
        }
    }
}
