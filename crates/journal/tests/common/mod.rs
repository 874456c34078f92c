//! Shared test helpers: temporary directories, sample records and a small host receiver.
#![allow(dead_code, clippy::unwrap_used)]

use onecard_journal::{
    Algorithm, Direction, Family, Journey, Kind, Penalty, PenaltyKind, RecordImage, TapRecord,
};
use onecard_proto::{Date, DateTime, Fen, Time};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

pub const TERMINAL: [u8; 6] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];

/// A fresh, empty directory under the target's test tmp dir.
pub fn tmp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "journal-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A completed compound purchase with PSAM serial `n`.
pub fn sample(n: u32) -> TapRecord {
    let serial = n.to_be_bytes();
    let amount = Fen::new(u64::from(n % 500) + 200);
    let before = Fen::new(50_000);
    TapRecord {
        record_id: TapRecord::record_id_for(Kind::Completed, TERMINAL, serial),
        kind: Kind::Completed,
        resolves: None,
        family: Family::Mohurd,
        issuer: [0x41, 0x00, 0x41, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
        serial: [0x41, 0x00, 0, 0, 0, 0, 0, 0, 0x56, 0x78],
        counter: n as u16,
        tx_type: 0x09,
        amount,
        balance_before: before,
        balance_after: before.checked_sub(amount).unwrap(),
        terminal: TERMINAL,
        terminal_serial: serial,
        date: Date::new(2025, 6, 30).unwrap(),
        time: Time::new(23, 59, 59).unwrap(),
        tac: Some([0x01, 0x02, 0x03, n as u8]),
        key_version: 2,
        algorithm: Algorithm::Sm4,
        mac2_verified: true,
        security_code: Some([0x99; 9]),
        records: vec![RecordImage {
            p1: 0x00,
            sfi: 0x1E,
            data: vec![0x3C; 48],
        }],
        city: "changsha".into(),
        fares_version: Some(12),
        station: Some("S07".into()),
        line: Some("2".into()),
        journey: Some(Journey {
            direction: Direction::Exit,
            entry_station: Some("S01".into()),
            entry_line: Some("1".into()),
            entry_time: Some(DateTime {
                date: Date::new(2025, 6, 30).unwrap(),
                time: Time::new(23, 1, 0).unwrap(),
            }),
            fare: amount,
            penalties: vec![Penalty {
                kind: PenaltyKind::Overstay,
                amount: Fen::new(100),
            }],
        }),
    }
}

/// How the receiver answers the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behave {
    /// Import and acknowledge.
    Ok,
    /// Answer this 5xx (or any) status with a JSON error, importing nothing.
    Status(u16),
    /// Import, then close the connection without answering (the ack is lost).
    Drop,
    /// Import, then acknowledge a different batch id.
    WrongAck,
    /// Answer 400 with a JSON error, importing nothing.
    BadRequest,
}

#[derive(Default)]
pub struct State {
    pub script: VecDeque<Behave>,
    /// Imported records by record_id (the host's deduplication).
    pub records: BTreeMap<String, serde_json::Value>,
    /// How many times each record_id arrived.
    pub arrivals: HashMap<String, u32>,
    /// Batch ids in the order they arrived.
    pub batch_ids: Vec<String>,
    pub requests: u32,
    /// Paths and queries of GET requests.
    pub gets: Vec<String>,
    /// Answers to GET requests, consumed in order; when empty: 304.
    pub get_answers: VecDeque<(u16, String)>,
    /// Problems the receiver noticed in requests.
    pub complaints: Vec<String>,
}

pub struct Receiver {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    port: u16,
    handle: Option<JoinHandle<()>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, stop2) = (state.clone(), stop.clone());
        let handle = thread::spawn(move || {
            for conn in l.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    serve(c, &s2);
                }
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}"),
            state,
            stop,
            port,
            handle: Some(handle),
        }
    }

    pub fn script(&self, b: &[Behave]) {
        self.state.lock().unwrap().script.extend(b.iter().copied());
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn respond(c: &mut TcpStream, status: u16, body: &str) {
    let _ = write!(
        c,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}

fn serve(mut c: TcpStream, state: &Mutex<State>) {
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut request_line = String::new();
    if r.read_line(&mut request_line).is_err() {
        return;
    }
    let mut len = 0usize;
    let mut ctype = String::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            match n.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap_or(0),
                "content-type" => ctype = v.trim().to_string(),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; len];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut st = state.lock().unwrap();
    st.requests += 1;
    if method == "GET" {
        st.gets.push(target.to_string());
        match st.get_answers.pop_front() {
            Some((status, body)) => respond(&mut c, status, &body),
            None => respond(&mut c, 304, ""),
        }
        return;
    }
    let behave = st.script.pop_front().unwrap_or(Behave::Ok);
    if method != "POST" || target != "/v1/gates/112233445566/batches" {
        st.complaints.push(format!("unexpected {method} {target}"));
        respond(&mut c, 404, r#"{"error":"no such endpoint"}"#);
        return;
    }
    if ctype != "application/json" {
        st.complaints.push(format!("content type {ctype}"));
    }
    match behave {
        Behave::Status(s) => return respond(&mut c, s, r#"{"error":"host busy"}"#),
        Behave::BadRequest => return respond(&mut c, 400, r#"{"error":"malformed batch"}"#),
        Behave::Ok | Behave::Drop | Behave::WrongAck => {}
    }
    let v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            st.complaints.push(format!("body: {e}"));
            return respond(&mut c, 400, r#"{"error":"not JSON"}"#);
        }
    };
    let batch_id = v["batch_id"].as_str().unwrap_or("").to_string();
    if v["terminal"] != "112233445566" {
        st.complaints.push("terminal field".into());
    }
    st.batch_ids.push(batch_id.clone());
    let records = v["records"].as_array().cloned().unwrap_or_default();
    let (mut accepted, mut duplicates) = (0u64, 0u64);
    for rec in records {
        // Every record must parse as the published JSON form.
        if let Err(e) = TapRecord::from_json(&rec.to_string()) {
            st.complaints.push(format!("record: {e}"));
        }
        let id = rec["record_id"].as_str().unwrap_or("").to_string();
        *st.arrivals.entry(id.clone()).or_default() += 1;
        match st.records.entry(id) {
            std::collections::btree_map::Entry::Occupied(_) => duplicates += 1,
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(rec);
                accepted += 1;
            }
        }
    }
    match behave {
        Behave::Drop => {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        Behave::WrongAck => respond(
            &mut c,
            200,
            &format!(
                r#"{{"ack":"not-{batch_id}","accepted":{accepted},"duplicates":{duplicates}}}"#
            ),
        ),
        _ => respond(
            &mut c,
            200,
            &format!(r#"{{"ack":"{batch_id}","accepted":{accepted},"duplicates":{duplicates}}}"#),
        ),
    }
}
