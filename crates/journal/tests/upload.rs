//! The upload client against a small receiver: batching, retries with backoff, deletion only
//! after a matching acknowledgement, resent batches acknowledged again and not duplicated,
//! permanent rejections kept and held back.
#![allow(clippy::unwrap_used)]

mod common;

use common::{sample, tmp_dir, Behave, Receiver, TERMINAL};
use onecard_journal::{Journal, RetryPolicy, Seq, Stopped, UploadConfig, Uploader};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn journal(name: &str, n: u32) -> Journal {
    let mut j = Journal::open(tmp_dir(name)).unwrap();
    for i in 1..=n {
        j.append(&sample(i)).unwrap();
    }
    j
}

/// An uploader whose sleeps are recorded, not waited.
fn uploader(rx: &Receiver, batch: usize, attempts: u32) -> (Uploader, Arc<Mutex<Vec<Duration>>>) {
    let mut cfg = UploadConfig::new(rx.url.clone(), TERMINAL);
    cfg.max_batch_records = batch;
    cfg.retry = RetryPolicy {
        max_attempts: attempts,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(2),
    };
    let slept = Arc::new(Mutex::new(Vec::new()));
    let s2 = slept.clone();
    let up = Uploader::new(cfg)
        .unwrap()
        .with_seed(42)
        .with_sleeper(move |d| s2.lock().unwrap().push(d));
    (up, slept)
}

#[test]
fn uploads_everything_in_batches_and_empties_the_journal() {
    let rx = Receiver::start();
    let mut j = journal("up-all", 1200);
    let (mut up, slept) = uploader(&rx, 500, 3);
    let r = up.run_once(&mut j).unwrap();
    assert_eq!(
        (r.batches, r.records, r.accepted, r.duplicates),
        (3, 1200, 1200, 0)
    );
    assert_eq!((r.attempts, r.remaining, r.stopped), (3, 0, None));
    assert!(slept.lock().unwrap().is_empty());
    assert_eq!(j.acked(), Seq(1200));
    assert_eq!(j.stats().unacked, 0);
    rx.with(|s| {
        assert!(s.complaints.is_empty(), "{:?}", s.complaints);
        assert_eq!(s.records.len(), 1200);
        assert_eq!(
            s.batch_ids[0].split('-').take(3).collect::<Vec<_>>(),
            ["112233445566", "1", "500"]
        );
        // The host got exactly the JSON form.
        let r7 = &s.records[&sample(7).record_id];
        assert_eq!(r7["kind"], "completed");
        assert_eq!(r7["algorithm"], "sm4");
        assert_eq!(r7["family"], "mohurd");
        assert_eq!(r7["security_code"], "999999999999999999");
    });
    // Nothing left: a second cycle sends nothing.
    let r = up.run_once(&mut j).unwrap();
    assert_eq!((r.attempts, r.stopped), (0, None));
}

#[test]
fn retries_with_backoff_and_a_lost_ack_is_acknowledged_again_without_duplicates() {
    let rx = Receiver::start();
    rx.script(&[
        Behave::Status(503),
        Behave::Status(500),
        Behave::Drop,
        Behave::Ok,
    ]);
    let mut j = journal("up-retry", 40);
    let (mut up, slept) = uploader(&rx, 100, 5);
    let r = up.run_once(&mut j).unwrap();
    assert_eq!((r.batches, r.records, r.attempts), (1, 40, 4));
    // The dropped answer came after the host imported: the resend is all duplicates.
    assert_eq!((r.accepted, r.duplicates), (0, 40));
    let slept = slept.lock().unwrap().clone();
    assert_eq!(slept, r.backoffs);
    assert_eq!(slept.len(), 3);
    for (i, d) in slept.iter().enumerate() {
        // Full jitter inside a doubling window: 200 ms, 400 ms, 800 ms.
        assert!(*d <= Duration::from_millis(200 << i), "retry {i}: {d:?}");
    }
    rx.with(|s| {
        assert_eq!(s.records.len(), 40, "stored once each");
        assert!(s.arrivals.values().all(|&n| n == 2));
        // Same batch id both times.
        assert_eq!(s.batch_ids.len(), 2);
        assert_eq!(s.batch_ids[0], s.batch_ids[1]);
    });
    assert_eq!(j.stats().unacked, 0);
}

#[test]
fn no_deletion_without_an_ack_even_across_a_crash() {
    let rx = Receiver::start();
    rx.script(&[Behave::Drop; 3]);
    let mut j = journal("up-noack", 25);
    let dir = j.dir().to_path_buf();
    let (mut up, _) = uploader(&rx, 10, 3);
    let r = up.run_once(&mut j).unwrap();
    assert_eq!((r.batches, r.attempts, r.remaining), (0, 3, 25));
    let Some(Stopped::Unreachable {
        batch_id, attempts, ..
    }) = r.stopped
    else {
        panic!("expected Unreachable, got {:?}", r.stopped);
    };
    assert_eq!(attempts, 3);
    assert_eq!(j.acked(), Seq(0));
    assert_eq!(j.unacked(usize::MAX).unwrap().len(), 25);
    // The gate restarts; the same batch goes out with the same id and is acknowledged again.
    drop(j);
    let mut j = Journal::open(&dir).unwrap();
    let (mut up, _) = uploader(&rx, 10, 3);
    let r = up.run_once(&mut j).unwrap();
    assert_eq!((r.batches, r.records, r.remaining), (3, 25, 0));
    assert_eq!(r.duplicates, 10, "the first batch had reached the host");
    rx.with(|s| {
        assert_eq!(s.batch_ids[3], batch_id);
        assert_eq!(s.records.len(), 25);
    });
}

#[test]
fn a_wrong_batch_id_is_not_an_acknowledgement() {
    let rx = Receiver::start();
    rx.script(&[Behave::WrongAck; 2]);
    let mut j = journal("up-wrong", 5);
    let (mut up, _) = uploader(&rx, 10, 2);
    let r = up.run_once(&mut j).unwrap();
    assert_eq!((r.batches, r.attempts, r.remaining), (0, 2, 5));
    let Some(Stopped::Unreachable { last_error, .. }) = &r.stopped else {
        panic!("{:?}", r.stopped);
    };
    assert!(last_error.contains("acknowledgement names"), "{last_error}");
    assert_eq!(j.acked(), Seq(0));
    let r = up.run_once(&mut j).unwrap();
    assert_eq!((r.records, r.duplicates), (5, 5));
}

#[test]
fn a_permanent_rejection_keeps_the_records_and_does_not_loop() {
    let rx = Receiver::start();
    rx.script(&[Behave::BadRequest]);
    let mut j = journal("up-400", 12);
    let (mut up, slept) = uploader(&rx, 5, 5);
    let r = up.run_once(&mut j).unwrap();
    assert_eq!((r.attempts, r.batches, r.remaining), (1, 0, 12));
    assert!(slept.lock().unwrap().is_empty(), "no retries on 4xx");
    let Some(Stopped::Rejected { status, error, .. }) = &r.stopped else {
        panic!("{:?}", r.stopped);
    };
    assert_eq!((*status, error.as_str()), (400, "malformed batch"));
    // The next cycle holds the batch back instead of sending it again.
    let requests = rx.with(|s| s.requests);
    let r = up.run_once(&mut j).unwrap();
    assert!(matches!(r.stopped, Some(Stopped::HeldOff { .. })));
    assert_eq!((r.attempts, rx.with(|s| s.requests)), (0, requests));
    assert_eq!(j.stats().unacked, 12);
    // With no hold-off (an operator fixed the host) it goes through.
    let mut cfg = UploadConfig::new(rx.url.clone(), TERMINAL);
    cfg.max_batch_records = 5;
    cfg.rejected_hold_off = Duration::ZERO;
    let mut up = Uploader::new(cfg).unwrap();
    let r = up.run_once(&mut j).unwrap();
    assert_eq!((r.batches, r.records, r.remaining), (3, 12, 0));
}

#[test]
fn an_unreachable_host_is_retried_a_bounded_number_of_times() {
    // A port nobody listens on: bind, learn the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = UploadConfig::new(format!("http://127.0.0.1:{port}"), TERMINAL);
    cfg.retry.max_attempts = 4;
    let slept = Arc::new(Mutex::new(Vec::new()));
    let s2 = slept.clone();
    let mut up = Uploader::new(cfg)
        .unwrap()
        .with_seed(1)
        .with_sleeper(move |d| s2.lock().unwrap().push(d));
    let mut j = journal("up-down", 3);
    let r = up.run_once(&mut j).unwrap();
    assert_eq!((r.attempts, r.remaining), (4, 3));
    assert_eq!(slept.lock().unwrap().len(), 3);
    assert!(matches!(r.stopped, Some(Stopped::Unreachable { .. })));
}

#[test]
fn byte_bounded_batches_and_cycle_limit() {
    let rx = Receiver::start();
    let mut j = journal("up-bytes", 30);
    let lens: Vec<u64> = j
        .unacked_raw(usize::MAX, u64::MAX)
        .unwrap()
        .iter()
        .map(|r| r.json.len() as u64)
        .collect();
    let (min, max) = (*lens.iter().min().unwrap(), *lens.iter().max().unwrap());
    assert!(5 * min > 4 * max);
    let mut cfg = UploadConfig::new(rx.url.clone(), TERMINAL);
    cfg.max_batch_bytes = 4 * max;
    cfg.max_batches_per_cycle = 3;
    let mut up = Uploader::new(cfg).unwrap();
    let r = up.run_once(&mut j).unwrap();
    assert_eq!((r.batches, r.records, r.remaining), (3, 12, 18));
    assert_eq!(r.stopped, Some(Stopped::CycleLimit));
}

#[test]
fn shared_upload_never_holds_the_journal_across_network_waits() {
    let rx = Receiver::start();
    rx.script(&[Behave::Drop, Behave::Status(502)]);
    let j = Arc::new(Mutex::new(journal("up-shared", 10)));
    let mut cfg = UploadConfig::new(rx.url.clone(), TERMINAL);
    cfg.retry.max_attempts = 3;
    let (j2, next) = (j.clone(), Arc::new(Mutex::new(100u32)));
    // The "gate" taps while the uploader backs off: the lock must be free.
    let mut up = Uploader::new(cfg).unwrap().with_sleeper(move |_| {
        let mut n = next.lock().unwrap();
        let mut journal = j2.try_lock().expect("journal locked during a network wait");
        journal.append(&sample(*n)).unwrap();
        *n += 1;
    });
    let r = up.run_once_shared(&j).unwrap();
    assert_eq!((r.attempts, r.backoffs.len()), (4, 2));
    assert_eq!((r.records, r.remaining, r.stopped), (12, 0, None));
    assert_eq!(rx.with(|s| s.records.len()), 12);
    assert_eq!(j.lock().unwrap().acked(), Seq(12));
}
