//! Criterion benchmarks: Beijing load + all-pairs build, and single quotes.

use std::hint::black_box;

use criterion::{criterion_main, Criterion};
use onecard_fares::{builtin, Category, MetroTrip, RiderMonth, Tap};

fn bench(c: &mut Criterion) {
    c.bench_function("beijing_load_and_build", |b| {
        b.iter(|| black_box(builtin::city("beijing")))
    });
    let Ok(city) = builtin::city("beijing") else {
        return;
    };
    let Some(net) = city.network() else { return };
    let n = net.area_stations(0).count() as u64;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    c.bench_function("beijing_quote", |b| {
        b.iter(|| {
            // xorshift: a fixed, dependency-free pseudo-random pair sequence
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let trip = MetroTrip {
                entry: Some(Tap {
                    station: (x % n) as u16,
                    at_utc: 1_740_787_200,
                }),
                exit: Tap {
                    station: ((x >> 20) % n) as u16,
                    at_utc: 1_740_789_000,
                },
                category: Category::Adult,
                month: RiderMonth {
                    year_month: 202_503,
                    spent: onecard_proto::Fen::yuan(120),
                    rides: 30,
                },
                previous: None,
            };
            black_box(city.quote(black_box(&trip)))
        })
    });
}

// The macro generates an undocumented public fn.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
