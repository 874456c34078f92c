//! The design point: 10 million entries. Too slow for a debug build, so ignored by default;
//! run in release:
//!
//! `cargo test --release -p onecard-blacklist --test big -- --ignored --nocapture`
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use onecard_blacklist::synth::Rng;
use onecard_blacklist::{Blacklist, Delta, List, Shape};

fn vm(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or("")
        .to_string()
}

#[test]
#[ignore = "10M entries: run in release"]
fn ten_million() {
    for shape in [Shape::Uniform, Shape::Clustered] {
        let entries = Shape::entries(shape, 10_000_000, 99);
        let t = Instant::now();
        let list = List::from_sorted(1, entries.iter().copied()).unwrap();
        eprintln!("{shape:?}: built in {:?}, {:?}", t.elapsed(), list.stats());
        assert!(list.resident_bytes() < 100_000_000);

        let dir =
            std::env::temp_dir().join(format!("onecard-blacklist-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("list.bin");
        let t = Instant::now();
        list.save(&path).unwrap();
        eprintln!(
            "saved {} bytes in {:?}",
            std::fs::metadata(&path).unwrap().len(),
            t.elapsed()
        );
        let before = vm("VmRSS");
        let t = Instant::now();
        let loaded = List::load(&path).unwrap();
        eprintln!("loaded in {:?} ({before} -> {})", t.elapsed(), vm("VmRSS"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(loaded.iter().eq(entries.iter().copied()));

        let mut rng = Rng::new(5);
        for _ in 0..1_000_000 {
            let hit = entries[rng.below(entries.len() as u64) as usize];
            assert!(loaded.contains(&hit));
            let e = shape.random(&mut rng);
            assert_eq!(loaded.contains(&e), entries.binary_search(&e).is_ok());
        }

        let bl = Blacklist::new(loaded);
        let delta = Delta {
            from_version: 1,
            to_version: 2,
            add: vec![],
            remove: entries.iter().step_by(1_000).copied().collect(),
        };
        let t = Instant::now();
        bl.apply(&delta).unwrap();
        eprintln!("delta of 10,000 removals applied in {:?}", t.elapsed());
        assert_eq!(bl.snapshot().len(), 10_000_000 - 10_000);
        eprintln!("{} {}", vm("VmHWM"), vm("VmRSS"));
    }
}
