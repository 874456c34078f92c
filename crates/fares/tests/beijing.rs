//! Known facts about the Beijing network and its fare rules.

use onecard_fares::rules::{CityRules, Reading};
use onecard_fares::{
    builtin, Category, City, FareError, Item, MetroTrip, Mode, PenaltyKind, RiderMonth, Tap,
    TransferState,
};
use onecard_proto::Fen;

const T0: i64 = 1_740_787_200; // 2025-03-01T08:00:00+08:00

fn beijing() -> City {
    builtin::city("beijing").expect("built-in Beijing loads")
}

fn trip(city: &City, from: &str, to: &str) -> MetroTrip {
    MetroTrip {
        entry: Some(Tap {
            station: city.station_by_name(from).expect("from"),
            at_utc: T0,
        }),
        exit: Tap {
            station: city.station_by_name(to).expect("to"),
            at_utc: T0 + 3600,
        },
        category: Category::Adult,
        month: RiderMonth::default(),
        previous: None,
    }
}

#[test]
fn main_network_has_416_connected_stations_and_max_fare_10_yuan() {
    let city = beijing();
    let net = city.network().expect("network");
    let main: Vec<_> = net.area_stations(0).collect();
    assert_eq!(main.len(), 416);
    let mut max = Fen::ZERO;
    let mut longest = 0;
    for &a in &main {
        for &b in &main {
            let d = net.distance(a, b).expect("main network is connected");
            longest = longest.max(d);
            max = max.max(city.base_fare(a, b).expect("fare"));
        }
    }
    assert_eq!(max, Fen::yuan(10));
    assert_eq!(city.area_max_fare(0), Some(Fen::yuan(10)));
    assert!((100_000..101_000).contains(&longest), "longest {longest}");
}

#[test]
fn known_pairs() {
    let city = beijing();
    let q = city.quote(&trip(&city, "苹果园", "四惠东")).expect("quote");
    assert_eq!((q.distance_m + 50) / 100, 304, "{}", q.distance_m);
    assert_eq!(q.fare, Fen::yuan(6));
    let q = city.quote(&trip(&city, "西直门", "国贸")).expect("quote");
    assert_eq!((q.distance_m + 50) / 100, 119, "{}", q.distance_m);
    assert_eq!(q.fare, Fen::yuan(4));
    // The path starts and ends where asked and its segments add up to the distance.
    let net = city.network().expect("net");
    let (a, b) = (
        city.station_by_name("西直门").expect("a"),
        city.station_by_name("国贸").expect("b"),
    );
    let path = net.path(a, b);
    assert_eq!(path.first(), Some(&a));
    assert_eq!(path.last(), Some(&b));
    let sum: u32 = path
        .windows(2)
        .map(|w| {
            net.adj[usize::from(w[0])]
                .iter()
                .find(|e| e.to == w[1])
                .expect("adjacent")
                .dist_m
        })
        .sum();
    assert_eq!(sum, q.distance_m);
}

#[test]
fn airport_lines_and_tram_are_apart() {
    let city = beijing();
    let net = city.network().expect("net");
    // 三元桥 exists in the main area and on the Capital Airport Express: two stations.
    let ids = net.stations_named("三元桥");
    assert_eq!(ids.len(), 2);
    let t3 = net.stations_named("3号航站楼")[0];
    let dzm_air = *net
        .stations_named("东直门")
        .iter()
        .find(|&&s| net.stations[usize::from(s)].area == net.stations[usize::from(t3)].area)
        .expect("airport 东直门");
    let mut t = trip(&city, "苹果园", "四惠东");
    t.entry = Some(Tap {
        station: t3,
        at_utc: T0,
    });
    t.exit = Tap {
        station: dzm_air,
        at_utc: T0 + 1800,
    };
    let q = city.quote(&t).expect("airport quote");
    assert_eq!(q.fare, Fen::yuan(25));
    // 3号航站楼 → 国贸 crosses paid areas: not one fare.
    t.exit.station = city.station_by_name("国贸").expect("国贸");
    assert!(matches!(city.quote(&t), Err(FareError::NoRoute(..))));
    // Daxing Airport → 草桥: 38.3 km on its own bands = 35 yuan.
    let dx = net.stations_named("大兴机场")[0];
    let cq = *net
        .stations_named("草桥")
        .iter()
        .find(|&&s| net.stations[usize::from(s)].area == net.stations[usize::from(dx)].area)
        .expect("daxing 草桥");
    t.entry = Some(Tap {
        station: dx,
        at_utc: T0,
    });
    t.exit = Tap {
        station: cq,
        at_utc: T0 + 1800,
    };
    assert_eq!(city.quote(&t).expect("daxing").fare, Fen::yuan(35));
    // The tram: 香山 → 巴沟 is 8.6 km → 4 yuan, on tram rules, not via line 10.
    let xs = net.stations_named("香山")[0];
    let area = net.stations[usize::from(xs)].area;
    assert_ne!(area, 0);
    let bg = *net
        .stations_named("巴沟")
        .iter()
        .find(|&&s| net.stations[usize::from(s)].area == area)
        .expect("tram 巴沟");
    assert_eq!(city.base_fare(xs, bg), Some(Fen::yuan(4)));
}

#[test]
fn band_boundaries_with_tolerance() {
    let text = builtin::CITIES
        .iter()
        .find(|c| c.0 == "beijing")
        .expect("file")
        .1;
    let rules = CityRules::from_toml(text).expect("rules");
    let t = &rules.metro.as_ref().expect("metro").fare_table["main"];
    for (d, yuan) in [
        (1, 3),
        (6000, 3),
        (6099, 3),
        (6100, 4),
        (12_099, 4),
        (12_100, 5),
        (22_099, 5),
        (22_100, 6),
        (32_099, 6),
        (32_100, 7),
        (52_099, 7),
        (52_100, 8),
        (92_100, 10),
        (100_400, 10),
    ] {
        assert_eq!(t.price(d).map(|p| p.0), Some(Fen::yuan(yuan)), "{d} m");
    }
    // Without the tolerance the official wording alone is read.
    let strict = CityRules::from_toml(&text.replacen("tolerance_m = 99", "tolerance_m = 0", 1))
        .expect("rules");
    let t = &strict.metro.as_ref().expect("metro").fare_table["main"];
    assert_eq!(t.price(6000).map(|p| p.0), Some(Fen::yuan(3)));
    assert_eq!(t.price(6001).map(|p| p.0), Some(Fen::yuan(4)));
}

#[test]
fn monthly_ladder_100_150_400() {
    let city = beijing();
    let mut t = trip(&city, "苹果园", "四惠东"); // 6 yuan
    t.month = RiderMonth {
        year_month: 202_503,
        spent: Fen::new(9999),
        rides: 20,
    };
    assert_eq!(city.quote(&t).expect("q").fare, Fen::yuan(6));
    t.month.spent = Fen::yuan(100);
    let q = city.quote(&t).expect("q");
    assert_eq!(q.fare, Fen::new(480));
    assert_eq!(
        q.new_month,
        RiderMonth {
            year_month: 202_503,
            spent: Fen::new(10_480),
            rides: 21
        }
    );
    assert!(q
        .breakdown
        .iter()
        .any(|i| matches!(i, Item::Monthly { percent: 80, .. })));
    t.month.spent = Fen::yuan(150);
    assert_eq!(city.quote(&t).expect("q").fare, Fen::yuan(3));
    t.month.spent = Fen::new(39_999);
    assert_eq!(city.quote(&t).expect("q").fare, Fen::yuan(3));
    t.month.spent = Fen::yuan(400);
    assert_eq!(city.quote(&t).expect("q").fare, Fen::yuan(6));
    // A new month resets the counters: 2025-02 spending does not count in March.
    t.month = RiderMonth {
        year_month: 202_502,
        spent: Fen::yuan(200),
        rides: 50,
    };
    let q = city.quote(&t).expect("q");
    assert_eq!(q.fare, Fen::yuan(6));
    assert_eq!(
        q.new_month,
        RiderMonth {
            year_month: 202_503,
            spent: Fen::yuan(6),
            rides: 1
        }
    );
    // The other reading, switched in the file.
    let text = builtin::CITIES
        .iter()
        .find(|c| c.0 == "beijing")
        .expect("file")
        .1;
    let part = builtin::city_from_toml(&text.replacen(
        "reading = \"before_trip\"",
        "reading = \"part_above\"",
        1,
    ))
    .expect("city");
    assert_eq!(
        part.rules
            .metro
            .as_ref()
            .and_then(|m| m.monthly.as_ref())
            .map(|m| m.reading),
        Some(Reading::PartAbove)
    );
    t.month = RiderMonth {
        year_month: 202_503,
        spent: Fen::yuan(97),
        rides: 20,
    };
    // 3 yuan at full price reaches 100, the other 3 yuan of full fare at 80% = 2.40.
    assert_eq!(part.quote(&t).expect("q").fare, Fen::new(540));
    assert_eq!(city.quote(&t).expect("q").fare, Fen::yuan(6));
}

#[test]
fn penalties() {
    let city = beijing();
    let mut t = trip(&city, "西直门", "国贸");
    t.exit.at_utc = T0 + 4 * 3600 + 1;
    let q = city.quote(&t).expect("q");
    assert_eq!(q.fare, Fen::yuan(7));
    assert!(q.breakdown.contains(&Item::Penalty {
        kind: PenaltyKind::Overstay,
        fare: Fen::yuan(3)
    }));
    t.exit.at_utc = T0 + 4 * 3600;
    assert_eq!(city.quote(&t).expect("q").fare, Fen::yuan(4));
    // Missing entry: the highest fare from the exit station.
    let exit = t.exit.station;
    t.entry = None;
    let q = city.quote(&t).expect("q");
    let net = city.network().expect("net");
    let max_from = net
        .area_stations(0)
        .filter_map(|s| city.base_fare(exit, s))
        .max()
        .expect("max");
    assert_eq!(q.fare, max_from);
    assert!(max_from >= Fen::yuan(7));
    // Same station.
    let mut t = trip(&city, "西直门", "西直门");
    assert_eq!(city.quote(&t).expect("q").fare, Fen::yuan(3));
    t.category = Category::Student;
    assert_eq!(
        city.quote(&t).expect("q").breakdown,
        vec![Item::Penalty {
            kind: PenaltyKind::SameStation,
            fare: Fen::yuan(3)
        }]
    );
    // Missing exit charged at the next tap.
    let e = city.station_by_name("苹果园").expect("s");
    assert_eq!(
        city.missing_exit_charge(e).expect("c"),
        net.area_stations(0)
            .filter_map(|s| city.base_fare(e, s))
            .max()
            .expect("m")
    );
}

#[test]
fn categories() {
    let city = beijing();
    let mut t = trip(&city, "苹果园", "四惠东");
    t.category = Category::Student;
    t.month.spent = Fen::yuan(120); // the ladder does not stack on the concession
    t.month.year_month = 202_503;
    assert_eq!(city.quote(&t).expect("q").fare, Fen::yuan(3));
    t.category = Category::Senior;
    assert_eq!(city.quote(&t).expect("q").fare, Fen::ZERO);
    t.category = Category::Free;
    assert_eq!(city.quote(&t).expect("q").fare, Fen::ZERO);
}

#[test]
fn out_of_station_transfer_window() {
    let city = beijing();
    // Leg 1: 西直门 → 复兴门, tap out; leg 2: tap in at 太平桥 → exit 牛街... priced as one.
    let first = trip(&city, "西直门", "复兴门");
    let q1 = city.quote(&first).expect("leg 1");
    let mut second = trip(&city, "太平桥", "牛街");
    let prev = q1.new_transfer;
    assert_eq!(prev.mode, Mode::Metro);
    second.entry = Some(Tap {
        station: city.station_by_name("太平桥").expect("s"),
        at_utc: prev.last_tap_utc + 20 * 60,
    });
    second.exit.at_utc = prev.last_tap_utc + 40 * 60;
    second.previous = Some(prev);
    let q2 = city.quote(&second).expect("leg 2");
    let d2 = city
        .network()
        .expect("n")
        .distance(
            city.station_by_name("太平桥").expect("a"),
            city.station_by_name("牛街").expect("b"),
        )
        .expect("d");
    let whole = builtin::city("beijing")
        .expect("c")
        .rules
        .metro
        .expect("m")
        .fare_table["main"]
        .price(q1.distance_m + d2)
        .expect("p")
        .0;
    assert_eq!(q2.fare, whole.saturating_sub(q1.fare));
    assert!(q2
        .breakdown
        .iter()
        .any(|i| matches!(i, Item::OutOfStation { .. })));
    // Outside the window it is a new journey at full fare.
    let mut late = second;
    late.entry = Some(Tap {
        station: city.station_by_name("太平桥").expect("s"),
        at_utc: prev.last_tap_utc + 31 * 60,
    });
    let q3 = city.quote(&late).expect("late");
    assert_eq!(
        q3.fare,
        city.base_fare(
            city.station_by_name("太平桥").expect("a"),
            city.station_by_name("牛街").expect("b")
        )
        .expect("f")
    );
    // Not a listed pair: no continuation.
    let mut other = second;
    other.previous = Some(TransferState {
        station: city.station_by_name("国贸").expect("s"),
        ..prev
    });
    assert_eq!(city.quote(&other).expect("q").fare, q3.fare);
}

#[test]
fn bus_fares_and_transfer() {
    let city = beijing();
    let bus = |d| onecard_fares::BusTrip {
        line: None,
        distance_m: Some(d),
        at_utc: T0,
        category: Category::Adult,
        month: RiderMonth::default(),
        previous: None,
    };
    assert_eq!(city.bus_fare(&bus(10_000)).expect("b").fare, Fen::yuan(1));
    assert_eq!(city.bus_fare(&bus(10_001)).expect("b").fare, Fen::new(150));
    assert_eq!(city.bus_fare(&bus(15_001)).expect("b").fare, Fen::yuan(2));
    let mut s = bus(10_000);
    s.category = Category::Student;
    assert_eq!(city.bus_fare(&s).expect("b").fare, Fen::new(50));
}
