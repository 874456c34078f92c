//! Criterion bench of one full compound exit tap and of its crypto floor.
#![allow(clippy::unwrap_used, missing_docs)] // criterion macros generate undocumented items

use criterion::{criterion_group, criterion_main, Criterion};
use onecard_crypto::Algorithm;
use onecard_sim::bench::{CryptoFloor, TapBench};

fn taps(c: &mut Criterion) {
    for (name, alg) in [("3des", Algorithm::Tdes), ("sm4", Algorithm::Sm4)] {
        let mut bench = TapBench::new(alg).unwrap();
        c.bench_function(&format!("exit_tap_{name}"), |b| {
            b.iter(|| bench.tap().unwrap())
        });
        let floor = CryptoFloor::new(alg).unwrap();
        let mut n = 0u32;
        c.bench_function(&format!("crypto_floor_{name}"), |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                floor.tap(n).unwrap()
            })
        });
    }
}

criterion_group!(benches, taps);
criterion_main!(benches);
