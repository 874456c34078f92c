//! Blacklist and fare-file downloads: versions never go backwards, deltas apply only to their
//! base, the gate's callbacks decide, transient failures are retried, 304 means nothing new.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Receiver, TERMINAL};
use onecard_journal::{
    BlacklistUpdate, DownloadConfig, DownloadError, Downloader, FareUpdate, Outcome, RetryPolicy,
    UpdateSink, Versions,
};
use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Default)]
struct Gate {
    v: Versions,
    blacklist: BTreeSet<([u8; 8], [u8; 10])>,
    fares: Option<FareUpdate>,
    refuse_fares: bool,
}

impl UpdateSink for Gate {
    fn versions(&self) -> Versions {
        self.v
    }

    fn apply_blacklist(&mut self, u: &BlacklistUpdate) -> Result<(), String> {
        if u.base_version.is_none() {
            self.blacklist.clear();
        }
        for s in &u.remove {
            self.blacklist.remove(s);
        }
        self.blacklist.extend(u.add.iter().copied());
        self.v.blacklist = u.version;
        Ok(())
    }

    fn apply_fares(&mut self, u: &FareUpdate) -> Result<(), String> {
        if self.refuse_fares {
            return Err("fare file does not parse".into());
        }
        self.fares = Some(u.clone());
        self.v.fares = u.version;
        Ok(())
    }
}

fn downloader(rx: &Receiver) -> Downloader {
    let mut cfg = DownloadConfig::new(rx.url.clone(), TERMINAL);
    cfg.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
    };
    Downloader::new(cfg)
        .unwrap()
        .with_seed(9)
        .with_sleeper(|_| {})
}

const A: &str = "01011000FFFFFFFF31040000000000000001";
const B: &str = "01011000FFFFFFFF31040000000000000002";
const C: &str = "01011000FFFFFFFF31040000000000000003";

fn serial(s: &str) -> ([u8; 8], [u8; 10]) {
    (
        onecard_proto::hex::decode_array(&s[..16]).unwrap(),
        onecard_proto::hex::decode_array(&s[16..]).unwrap(),
    )
}

#[test]
fn not_modified_means_up_to_date() {
    let rx = Receiver::start();
    let mut gate = Gate {
        v: Versions {
            blacklist: 4,
            fares: 2,
        },
        ..Gate::default()
    };
    let r = downloader(&rx).check(&mut gate).unwrap();
    assert_eq!(
        (r.blacklist, r.fares, r.attempts),
        (Outcome::UpToDate, Outcome::UpToDate, 1)
    );
    rx.with(|s| {
        assert_eq!(
            s.gets,
            ["/v1/gates/112233445566/updates?blacklist_version=4&fares_version=2"]
        );
    });
}

#[test]
fn full_list_then_delta_then_fares() {
    let rx = Receiver::start();
    let mut gate = Gate::default();
    rx.with(|s| {
        s.get_answers.push_back((
            200,
            format!(
                r#"{{"blacklist":{{"version":12,"base_version":null,"add":["{A}","{B}"]}},"fares":null}}"#
            ),
        ));
        s.get_answers.push_back((
            200,
            format!(
                r#"{{"blacklist":{{"version":13,"base_version":12,"add":["{C}"],"remove":["{A}"]}},
                    "fares":{{"city":"beijing","version":7,"toml":"format_version = 1\n"}}}}"#
            ),
        ));
    });
    let mut d = downloader(&rx);
    let r = d.check(&mut gate).unwrap();
    assert_eq!(r.blacklist, Outcome::Applied { from: 0, to: 12 });
    assert_eq!(r.fares, Outcome::UpToDate);
    let r = d.check(&mut gate).unwrap();
    assert_eq!(r.blacklist, Outcome::Applied { from: 12, to: 13 });
    assert_eq!(r.fares, Outcome::Applied { from: 0, to: 7 });
    assert_eq!(gate.blacklist, [serial(B), serial(C)].into_iter().collect());
    assert_eq!(gate.fares.as_ref().unwrap().city, "beijing");
    rx.with(|s| assert!(s.gets[1].ends_with("blacklist_version=12&fares_version=0")));
}

#[test]
fn versions_never_go_backwards_and_deltas_need_their_base() {
    let rx = Receiver::start();
    let mut gate = Gate {
        v: Versions {
            blacklist: 20,
            fares: 9,
        },
        ..Gate::default()
    };
    rx.with(|s| {
        s.get_answers.push_back((
            200,
            format!(
                r#"{{"blacklist":{{"version":19,"base_version":null,"add":["{A}"]}},
                    "fares":{{"city":"beijing","version":9,"toml":"x"}}}}"#
            ),
        ));
        s.get_answers.push_back((
            200,
            format!(r#"{{"blacklist":{{"version":22,"base_version":21,"add":["{A}"]}}}}"#),
        ));
        s.get_answers.push_back((
            200,
            r#"{"blacklist":{"version":21,"base_version":20,"add":["01011000FFFFFFFF3104000000000000000x"]}}"#
                .to_string(),
        ));
    });
    let mut d = downloader(&rx);
    for _ in 0..3 {
        let r = d.check(&mut gate).unwrap();
        assert!(
            matches!(r.blacklist, Outcome::Refused { .. }),
            "{:?}",
            r.blacklist
        );
    }
    assert_eq!(gate.v.blacklist, 20);
    assert!(gate.blacklist.is_empty());
    assert_eq!(gate.v.fares, 9);
}

#[test]
fn the_gate_can_refuse_an_update() {
    let rx = Receiver::start();
    let mut gate = Gate {
        refuse_fares: true,
        ..Gate::default()
    };
    rx.with(|s| {
        s.get_answers.push_back((
            200,
            r#"{"fares":{"city":"beijing","version":3,"toml":"not toml ["}}"#.to_string(),
        ))
    });
    let r = downloader(&rx).check(&mut gate).unwrap();
    assert_eq!(
        r.fares,
        Outcome::Refused {
            reason: "fare file does not parse".into()
        }
    );
    assert_eq!(gate.v.fares, 0);
}

#[test]
fn transient_failures_are_retried_and_4xx_is_final() {
    let rx = Receiver::start();
    let mut gate = Gate::default();
    rx.with(|s| {
        s.get_answers
            .push_back((503, r#"{"error":"busy"}"#.to_string()));
        s.get_answers.push_back((200, "{not json".to_string()));
        s.get_answers.push_back((
            200,
            format!(r#"{{"blacklist":{{"version":1,"add":["{A}"]}}}}"#),
        ));
        s.get_answers
            .push_back((404, r#"{"error":"unknown terminal"}"#.to_string()));
    });
    let mut d = downloader(&rx);
    let r = d.check(&mut gate).unwrap();
    assert_eq!((r.attempts, r.backoffs.len()), (3, 2));
    assert_eq!(r.blacklist, Outcome::Applied { from: 0, to: 1 });
    match d.check(&mut gate) {
        Err(DownloadError::Rejected { status, error }) => {
            assert_eq!((status, error.as_str()), (404, "unknown terminal"));
        }
        other => panic!("{other:?}"),
    }
    rx.with(|s| {
        for _ in 0..3 {
            s.get_answers.push_back((500, String::new()));
        }
    });
    assert!(matches!(
        d.check(&mut gate),
        Err(DownloadError::Unreachable { attempts: 3, .. })
    ));
}
