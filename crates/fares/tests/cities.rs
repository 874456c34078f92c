//! Every shipped city file loads and its headline rules hold; bad files give typed errors.

use onecard_fares::rules::CityRules;
use onecard_fares::{builtin, BusTrip, Category, FareError, Mode, RiderMonth, TransferState};
use onecard_proto::Fen;

const T0: i64 = 1_740_960_000; // 2025-03-03T08:00:00+08:00

fn month(spent: u64, rides: u16) -> RiderMonth {
    RiderMonth {
        year_month: 202_503,
        spent: Fen::new(spent),
        rides,
    }
}

#[test]
fn every_city_file_loads() {
    for (id, text) in builtin::CITIES {
        let rules = CityRules::from_toml(text).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(&rules.id, id);
        assert_eq!(rules.format_version, 1);
        assert_eq!(rules.utc_offset_minutes, 480);
        builtin::city(id).unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    assert!(matches!(
        builtin::city("atlantis"),
        Err(FareError::UnknownCity(..))
    ));
}

#[test]
fn shanghai_reaching_70_and_bus_transfer() {
    let sh = builtin::city("shanghai").expect("shanghai");
    let q = sh
        .quote_distance(5000, T0, Category::Adult, month(6700, 20), None)
        .expect("q");
    assert_eq!(q.full_fare, Fen::yuan(3));
    assert_eq!(q.fare, Fen::new(270));
    assert_eq!(q.new_month.spent, Fen::new(6970));
    assert_eq!(
        sh.quote_distance(5000, T0, Category::Adult, month(6699, 20), None)
            .expect("q")
            .fare,
        Fen::yuan(3)
    );
    // Bands: 3 yuan to 6 km, +1 per started 10 km.
    for (d, y) in [(6000, 3), (6001, 4), (16_000, 4), (16_001, 5)] {
        assert_eq!(
            sh.quote_distance(d, T0, Category::Adult, RiderMonth::default(), None)
                .expect("q")
                .full_fare,
            Fen::yuan(y),
            "{d}"
        );
    }
    // Bus → metro within 120 min: 1 yuan off.
    let bus = sh
        .bus_fare(&BusTrip {
            line: None,
            distance_m: None,
            at_utc: T0 - 120 * 60,
            category: Category::Adult,
            month: RiderMonth::default(),
            previous: None,
        })
        .expect("bus");
    assert_eq!(bus.new_transfer.mode, Mode::Bus);
    let q = sh
        .quote_distance(
            5000,
            T0,
            Category::Adult,
            RiderMonth::default(),
            Some(bus.new_transfer),
        )
        .expect("q");
    assert_eq!(q.fare, Fen::yuan(2));
    let late = TransferState {
        last_tap_utc: T0 - 121 * 60,
        ..bus.new_transfer
    };
    assert_eq!(
        sh.quote_distance(5000, T0, Category::Adult, RiderMonth::default(), Some(late))
            .expect("q")
            .fare,
        Fen::yuan(3)
    );
    // Metro → metro gets nothing.
    let metro = TransferState {
        mode: Mode::Metro,
        ..bus.new_transfer
    };
    assert_eq!(
        sh.quote_distance(
            5000,
            T0,
            Category::Adult,
            RiderMonth::default(),
            Some(metro)
        )
        .expect("q")
        .fare,
        Fen::yuan(3)
    );
}

#[test]
fn shenzhen_guangzhou_wuhan_ladders() {
    let sz = builtin::city("shenzhen").expect("sz");
    let full = |c: &onecard_fares::City, d| {
        c.quote_distance(d, T0, Category::Adult, RiderMonth::default(), None)
            .expect("q")
            .full_fare
    };
    for (d, y) in [
        (4000, 2),
        (4001, 3),
        (12_000, 4),
        (18_000, 5),
        (24_000, 6),
        (32_000, 7),
        (32_001, 8),
        (48_000, 9),
    ] {
        assert_eq!(full(&sz, d), Fen::yuan(y), "shenzhen {d}");
    }
    assert_eq!(
        sz.quote_distance(3000, T0, Category::Adult, RiderMonth::default(), None)
            .expect("q")
            .fare,
        Fen::new(190)
    );
    let gz = builtin::city("guangzhou").expect("gz");
    // Exclusive upper bounds.
    for (d, y) in [
        (3999, 2),
        (4000, 3),
        (7999, 3),
        (8000, 4),
        (24_000, 7),
        (88_000, 15),
        (95_999, 15),
    ] {
        assert_eq!(full(&gz, d), Fen::yuan(y), "guangzhou {d}");
    }
    assert_eq!(
        gz.quote_distance(9000, T0, Category::Adult, month(0, 14), None)
            .expect("q")
            .fare,
        Fen::new(380)
    );
    let q = gz
        .quote_distance(9000, T0, Category::Adult, month(0, 15), None)
        .expect("q");
    assert_eq!(q.fare, Fen::new(240));
    assert_eq!(q.new_month.rides, 16);
    let wh = builtin::city("wuhan").expect("wh");
    // Official example: the 17.15 km shortest path costs 5 yuan, the 21.73 km ride would be 6.
    assert_eq!(full(&wh, 17_150), Fen::yuan(5));
    assert_eq!(full(&wh, 21_730), Fen::yuan(6));
    for (d, y) in [
        (40_000, 8),
        (40_001, 9),
        (50_000, 9),
        (50_001, 10),
        (70_001, 11),
    ] {
        assert_eq!(full(&wh, d), Fen::yuan(y), "wuhan {d}");
    }
    assert_eq!(
        wh.quote_distance(17_150, T0, Category::Adult, RiderMonth::default(), None)
            .expect("q")
            .fare,
        Fen::new(450)
    );
    assert_eq!(
        wh.quote_distance(17_150, T0, Category::Student, RiderMonth::default(), None)
            .expect("q")
            .fare,
        Fen::new(350)
    );
    assert_eq!(
        wh.quote_distance(17_150, T0, Category::Senior, RiderMonth::default(), None)
            .expect("q")
            .fare,
        Fen::ZERO
    );
}

#[test]
fn jilin_bus_only() {
    let jl = builtin::city("jilin").expect("jilin");
    let trip = |c| BusTrip {
        line: None,
        distance_m: None,
        at_utc: T0,
        category: c,
        month: RiderMonth::default(),
        previous: None,
    };
    assert_eq!(
        jl.bus_fare(&trip(Category::Adult)).expect("b").fare,
        Fen::new(90)
    );
    assert_eq!(
        jl.bus_fare(&trip(Category::Student)).expect("b").fare,
        Fen::new(50)
    );
    assert!(matches!(
        jl.quote_distance(1000, T0, Category::Adult, RiderMonth::default(), None),
        Err(FareError::NoMode(..))
    ));
}

#[test]
fn bad_city_files_are_typed_errors() {
    let bj = builtin::CITIES[0].1;
    assert!(matches!(
        CityRules::from_toml(&bj.replacen("format_version = 1", "format_version = 2", 1)),
        Err(FareError::UnsupportedVersion { found: 2, .. })
    ));
    assert!(matches!(
        CityRules::from_toml(&bj.replacen("format_version = 1", "", 1)),
        Err(FareError::CityFile(_))
    ));
    assert!(matches!(
        CityRules::from_toml(&bj.replacen(
            "{ up_to_m = 12000, fen = 400 }",
            "{ up_to_m = 5000, fen = 400 }",
            1
        )),
        Err(FareError::Invalid { .. })
    ));
    assert!(matches!(
        CityRules::from_toml(&bj.replacen(
            "{ from = 15000, percent = 50 }",
            "{ from = 5000, percent = 50 }",
            1
        )),
        Err(FareError::Invalid { .. })
    ));
    assert!(matches!(
        CityRules::from_toml(&bj.replacen("fare_table = \"xijiao\"", "fare_table = \"nope\"", 1)),
        Err(FareError::Invalid { .. })
    ));
    assert!(matches!(
        CityRules::from_toml(&bj.replacen("percent = 80", "percent = 180", 1)),
        Err(FareError::Invalid { .. })
    ));
    assert!(matches!(
        CityRules::from_toml(&bj.replacen("tolerance_m = 99", "tolerance_m = -1", 1)),
        Err(FareError::CityFile(_))
    ));
    assert!(matches!(
        CityRules::from_toml(&"#".repeat(2 << 20)),
        Err(FareError::Limit { .. })
    ));
    // A line named in an area but absent from the network.
    assert!(matches!(
        builtin::city_from_toml(&bj.replacen("lines = [\"西郊线\"]", "lines = [\"99号线\"]", 1)),
        Err(FareError::Invalid { .. })
    ));
}

/// The whole Beijing main-network matrix against an independent computation: the CSV is read
/// here with plain string splitting, distances by Floyd–Warshall, fares by the band formula.
#[test]
fn beijing_matrix_matches_independent_computation() {
    let csv = include_str!("../../../data/beijing-subway/beijing_subway_line_stations.csv");
    let apart = ["首都机场线", "大兴机场线", "西郊线"];
    let mut names: Vec<&str> = Vec::new();
    let mut edges: Vec<(usize, usize, u64)> = Vec::new();
    type LineRows<'a> = (&'a str, Vec<(usize, Option<u64>)>, bool);
    let mut lines: Vec<LineRows> = Vec::new();
    for row in csv.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        if apart.contains(&f[0]) {
            continue;
        }
        let id = names.iter().position(|n| *n == f[5]).unwrap_or_else(|| {
            names.push(f[5]);
            names.len() - 1
        });
        if lines.last().is_none_or(|l| l.0 != f[0]) {
            lines.push((f[0], Vec::new(), f[3] == "1"));
        }
        if let Some(l) = lines.last_mut() {
            l.1.push((id, f[7].parse().ok()));
        }
    }
    for (_, st, is_loop) in &lines {
        for w in st.windows(2) {
            edges.push((w[0].0, w[1].0, w[1].1.expect("distance")));
        }
        if *is_loop {
            edges.push((st[st.len() - 1].0, st[0].0, st[0].1.expect("closing")));
        }
    }
    let n = names.len();
    let mut d = vec![u64::MAX / 4; n * n];
    for i in 0..n {
        d[i * n + i] = 0;
    }
    for (a, b, w) in edges {
        d[a * n + b] = d[a * n + b].min(w);
        d[b * n + a] = d[b * n + a].min(w);
    }
    for k in 0..n {
        for i in 0..n {
            let dik = d[i * n + k];
            for j in 0..n {
                let v = dik + d[k * n + j];
                if v < d[i * n + j] {
                    d[i * n + j] = v;
                }
            }
        }
    }
    let fare = |m: u64| -> u64 {
        let m = m.saturating_sub(99);
        match m {
            0..=6000 => 300,
            6001..=12_000 => 400,
            12_001..=22_000 => 500,
            22_001..=32_000 => 600,
            _ => 600 + 100 * (m - 32_000).div_ceil(20_000),
        }
    };
    let city = builtin::city("beijing").expect("beijing");
    let net = city.network().expect("net");
    let rows = city.matrix(0).expect("matrix");
    assert_eq!(n, 416);
    assert_eq!(rows.len(), n * (n - 1));
    for (a, b, dist, f) in rows {
        let i = names
            .iter()
            .position(|x| *x == net.stations[usize::from(a)].name)
            .expect("name");
        let j = names
            .iter()
            .position(|x| *x == net.stations[usize::from(b)].name)
            .expect("name");
        assert_eq!(u64::from(dist), d[i * n + j]);
        assert_eq!(f.get(), fare(d[i * n + j]));
    }
}
