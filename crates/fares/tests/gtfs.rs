//! GTFS import: the shared fixtures (including the malformed one) and golden feeds of our own
//! for each Fares v2 transfer kind, duration-limit type, transfer count, priority and timeframe.

use std::path::{Path, PathBuf};

use onecard_fares::gtfs::{self, Leg, Severity};
use onecard_fares::time::days_from_civil;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Writes a feed into a fresh temporary directory.
fn feed(tag: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("onecard-gtfs-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write");
    }
    dir
}

#[test]
fn malformed_v2_fixture_loads_partially_with_line_numbers() {
    let (f, rep) = gtfs::load_dir(&fixture("fares_v2")).expect("partial load");
    let errs: Vec<_> = rep
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error && i.file == "fare_leg_rules.txt")
        .map(|i| i.line)
        .collect();
    assert_eq!(errs, (7..=14).collect::<Vec<u64>>());
    assert!(rep.issues.iter().any(|i| i.file == "fare_leg_rules.txt"
        && i.line == 15
        && i.severity == Severity::Warning));
    assert!(rep
        .issues
        .iter()
        .any(|i| i.file == "areas.txt" && i.line == 5 && i.severity == Severity::Error));
    assert_eq!(f.leg_rules.len(), 6);
    assert_eq!(f.products.len(), 11);
    assert!(f.has_priority);
    assert_eq!(f.product_amount("3_zone_fare"), Some(635));
    // Bus flat fare: the adult default category, cheapest medium (compass card 2.60).
    assert_eq!(f.product_amount("bus_flat_fare"), Some(260));
    let row = rep
        .files
        .iter()
        .find(|x| x.0 == "fare_leg_rules.txt")
        .expect("file row");
    assert_eq!((row.1, row.2), (6, 8));
    // sea_island → ZN1 on SkyTrain: priority 1 rule, 9.65.
    let nets = ["skytrain_seabus"].into_iter().collect();
    let from = f.areas_of("99901");
    let to = f.areas_of("8039");
    let m = f.match_leg_rules(&nets, &from, &to, None);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].product, "sea_island_2_zone_fare");
}

#[test]
fn v1_fixture() {
    let (f, rep) = gtfs::load_dir(&fixture("fares_v1")).expect("load");
    // Its stops rows have one field too many: reported, skipped.
    assert_eq!(
        rep.issues
            .iter()
            .filter(|i| i.file == "stops.txt")
            .map(|i| i.line)
            .collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(f.v1.len(), 1);
    assert_eq!(f.v1[0].price, 320);
    assert_eq!(f.v1[0].rules.len(), 2);
}

const STOPS: &str = "stop_id,stop_name,stop_lat,stop_lon,zone_id,location_type,parent_station
A,Alpha,0.0,0.0,,1,
A1,Alpha platform,0.0,0.0,z1,0,A
B,Beta,0.0,0.01,z1,,
C,\"Gamma, upper\",0.0,0.02,z2,,
D,Delta,0.0,0.03,z3,,
";

#[test]
fn v1_golden_origin_destination_route_and_contains() {
    let dir = feed(
        "v1",
        &[
            ("stops.txt", STOPS),
            ("routes.txt", "route_id,route_type\nR,1\nX,3\nY,3\n"),
            ("trips.txt", "route_id,service_id,trip_id\nR,s,t1\nX,s,t2\nY,s,t3\n"),
            // shape_dist_traveled in km: inferred from coordinates (0.01° ≈ 1.11 km).
            (
                "stop_times.txt",
                "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\nt1,08:00:00,08:00:00,A1,1,0\nt1,08:02:00,08:02:00,B,2,1.3\nt1,08:04:00,08:04:00,C,3,2.5\nt2,09:00:00,09:00:00,C,1,0\nt2,09:05:00,09:05:00,D,2,1.2\nt3,10:00:00,10:00:00,D,1,0\nt3,10:01:00,10:01:00,C,2,1.2\nt3,10:02:00,10:02:00,B,3,2.4\nt3,10:03:00,10:03:00,A1,4,3.7\n",
            ),
            ("fare_attributes.txt", "fare_id,price,currency_type,payment_method,transfers\nin1,2.50,USD,0,\nto2,3,USD,0,\nthrough,4.75,USD,0,\nbus,1.00,USD,0,\nyen,210,JPY,0,\n"),
            (
                "fare_rules.txt",
                "fare_id,route_id,origin_id,destination_id,contains_id\nin1,,z1,z1,\nto2,R,z1,z2,\nto2,R,z2,z1,\nthrough,,,,z1\nthrough,,,,z2\nthrough,,,,z3\nbus,X,,,\nnope,,,,\n",
            ),
        ],
    );
    let (f, rep) = gtfs::load_dir(&dir).expect("load");
    assert_eq!(
        rep.issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| (i.file.as_str(), i.line))
            .collect::<Vec<_>>(),
        vec![("fare_rules.txt", 9)]
    );
    assert!((f.shape_unit_m - 1000.0).abs() < 1e-9);
    let m = f.matrix().expect("matrix");
    let get = |a: &str, b: &str| {
        m.iter()
            .find(|r| r.from == a && r.to == b)
            .cloned()
            .expect("row")
    };
    assert_eq!(m.len(), 4 * 3);
    assert_eq!(get("A", "B").distance_m, Some(1300));
    assert_eq!(get("A", "C").distance_m, Some(2500));
    assert_eq!(get("C", "A").distance_m, Some(2500));
    assert_eq!(get("A", "D").distance_m, Some(3700));
    assert_eq!(get("A", "B").fare_minor, Some(250)); // z1 → z1
    assert_eq!(get("B", "C").fare_minor, Some(300)); // z1 → z2 on route R
    assert_eq!(get("C", "D").fare_minor, Some(100)); // route X only
                                                     // C → A on route Y passes z2 and z1 only: `through` needs exactly z1, z2, z3, and `to2`
                                                     // needs route R.
    assert_eq!(get("C", "A").fare_minor, None);
    // D → A on route Y passes z3, z2, z1: the contains fare.
    assert_eq!(get("D", "A").fare_minor, Some(475));
    // A → D has no direct trip: route and contains rules cannot match.
    assert_eq!(get("A", "D").fare_minor, None);
    assert_eq!(
        gtfs::parse_amount("210", gtfs::currency_decimals("JPY")),
        Ok(210)
    );
}

const V2_BASE: &[(&str, &str)] = &[
    ("stops.txt", "stop_id,stop_name,stop_lat,stop_lon\nS1,One,0,0\nS2,Two,0,0.01\nS3,Three,0,0.02\nS4,Four,0,0.03\n"),
    ("routes.txt", "route_id,route_type,network_id\nbus1,3,bus\nrail1,1,rail\n"),
    ("stop_areas.txt", "area_id,stop_id\nA,S1\nA,S2\nB,S3\nB,S4\n"),
    ("rider_categories.txt", "rider_category_id,rider_category_name,is_default_fare_category\nadult,Adult,1\nsenior,Senior,0\n"),
    (
        "fare_products.txt",
        "fare_product_id,fare_product_name,amount,currency,rider_category_id\nbus_fare,Bus,2.00,EUR,adult\nbus_fare,Bus,1.00,EUR,senior\nrail_AA,Rail,3.00,EUR,\nrail_AB,Rail,4.00,EUR,\nspecial,Special,6.00,EUR,\npeak,Peak,5.00,EUR,\nxfer,Transfer,0.50,EUR,\npass,Pass,5.00,EUR,\n",
    ),
    ("calendar.txt", "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nwk,1,1,1,1,1,0,0,20250101,20251231\n"),
    ("timeframes.txt", "timeframe_group_id,start_time,end_time,service_id\npeak,07:00:00,09:00:00,wk\n"),
];

const LEG_RULES: &str = "leg_group_id,network_id,from_area_id,to_area_id,from_timeframe_group_id,fare_product_id,rule_priority
bus_leg,bus,,,,bus_fare,0
rail_leg,rail,A,A,,rail_AA,0
rail_leg,rail,B,B,,rail_AA,0
rail_leg,rail,A,B,,rail_AB,0
rail_leg,rail,B,A,,rail_AB,0
rail_special,rail,S4AREA,A,,special,1
rail_peak,rail,A,,peak,peak,2
";

fn v2(tag: &str, leg_rules: &str, transfer_rules: Option<&str>) -> gtfs::Feed {
    let mut files: Vec<(&str, &str)> = V2_BASE.to_vec();
    files.push(("fare_leg_rules.txt", leg_rules));
    if let Some(t) = transfer_rules {
        files.push(("fare_transfer_rules.txt", t));
    }
    let extra_areas = "area_id,stop_id\nA,S1\nA,S2\nB,S3\nB,S4\nS4AREA,S4\n";
    files.retain(|f| f.0 != "stop_areas.txt");
    files.push(("stop_areas.txt", extra_areas));
    let (f, rep) = gtfs::load_dir(&feed(tag, &files)).expect("load");
    assert_eq!(rep.errors(), 0, "{:?}", rep.issues);
    f
}

/// Monday 2025-03-03 at `h:m` local, as local seconds since the epoch.
fn at(h: i64, m: i64) -> i64 {
    days_from_civil(2025, 3, 3) * 86_400 + h * 3600 + m * 60
}

fn leg(route: &str, from: &str, to: &str, dep: i64, arr: i64) -> Leg {
    Leg {
        route: route.into(),
        from_stop: from.into(),
        to_stop: to.into(),
        depart: dep,
        arrive: arr,
    }
}

#[test]
fn v2_leg_priority_areas_and_timeframes() {
    let f = v2("legs", LEG_RULES, None);
    let price = |l: Leg| f.price_journey(&[l]).expect("price").total;
    assert_eq!(price(leg("bus1", "S1", "S4", at(12, 0), at(12, 30))), 200);
    assert_eq!(price(leg("rail1", "S1", "S2", at(12, 0), at(12, 10))), 300);
    assert_eq!(price(leg("rail1", "S1", "S3", at(12, 0), at(12, 10))), 400);
    // rule_priority 1 wins over the cheaper priority-0 match.
    assert_eq!(price(leg("rail1", "S4", "S1", at(12, 0), at(12, 10))), 600);
    // Peak timeframe (priority 2) on a weekday at 08:00, not at 09:00 (end exclusive), not on Saturday.
    assert_eq!(price(leg("rail1", "S1", "S2", at(8, 0), at(8, 10))), 500);
    assert_eq!(price(leg("rail1", "S1", "S2", at(9, 0), at(9, 10))), 300);
    assert_eq!(
        price(leg(
            "rail1",
            "S1",
            "S2",
            at(8, 0) + 5 * 86_400,
            at(8, 10) + 5 * 86_400
        )),
        300
    );
}

#[test]
fn v2_empty_fields_without_priority_exclude_listed_values() {
    let rules = "leg_group_id,network_id,from_area_id,to_area_id,fare_product_id\ng,rail,A,A,rail_AA\ng,rail,,,xfer\n";
    let f = v2("nopriority", rules, None);
    let price = |l: Leg| f.price_journey(&[l]).expect("price").total;
    // A is listed under from_area_id, so the empty rule does not cover A → A.
    assert_eq!(price(leg("rail1", "S1", "S2", at(12, 0), at(12, 5))), 300);
    // B is not listed: the empty rule applies.
    assert_eq!(price(leg("rail1", "S3", "S4", at(12, 0), at(12, 5))), 50);
}

fn two_legs() -> [Leg; 2] {
    [
        leg("bus1", "S1", "S2", at(12, 0), at(12, 20)),
        leg("rail1", "S2", "S3", at(12, 30), at(12, 40)),
    ]
}

#[test]
fn v2_transfer_types() {
    let head = "from_leg_group_id,to_leg_group_id,transfer_count,duration_limit,duration_limit_type,fare_transfer_type,fare_product_id\n";
    // 0: A + AB — bus 2.00 + transfer 0.50; the rail leg (4.00) is not charged.
    let f = v2(
        "t0",
        LEG_RULES,
        Some(&format!("{head}bus_leg,rail_leg,,,,0,xfer\n")),
    );
    let p = f.price_journey(&two_legs()).expect("price");
    assert_eq!(p.total, 250);
    assert_eq!(p.transfers, vec![Some(2)]);
    // 1: A + AB + B.
    let f = v2(
        "t1",
        LEG_RULES,
        Some(&format!("{head}bus_leg,rail_leg,,,,1,xfer\n")),
    );
    assert_eq!(
        f.price_journey(&two_legs()).expect("price").total,
        200 + 50 + 400
    );
    // 2: AB — the pass replaces both.
    let f = v2(
        "t2",
        LEG_RULES,
        Some(&format!("{head}bus_leg,rail_leg,,,,2,pass\n")),
    );
    assert_eq!(f.price_journey(&two_legs()).expect("price").total, 500);
    // Empty product: a free transfer.
    let f = v2(
        "tfree",
        LEG_RULES,
        Some(&format!("{head}bus_leg,rail_leg,,,,0,\n")),
    );
    assert_eq!(f.price_journey(&two_legs()).expect("price").total, 200);
    // No rule from rail to bus: the reverse journey pays both legs.
    let rev = [
        leg("rail1", "S3", "S2", at(12, 0), at(12, 10)),
        leg("bus1", "S2", "S1", at(12, 20), at(12, 30)),
    ];
    assert_eq!(f.price_journey(&rev).expect("price").total, 400 + 200);
}

#[test]
fn v2_transfer_counts() {
    let head = "from_leg_group_id,to_leg_group_id,transfer_count,duration_limit,duration_limit_type,fare_transfer_type,fare_product_id\n";
    let buses = |n: usize| {
        (0..n)
            .map(|i| {
                leg(
                    "bus1",
                    "S1",
                    "S2",
                    at(12, 10 * i as i64),
                    at(12, 10 * i as i64 + 5),
                )
            })
            .collect::<Vec<_>>()
    };
    let total = |count: &str, n: usize| {
        let f = v2(
            &format!("count{count}{n}"),
            LEG_RULES,
            Some(&format!("{head}bus_leg,bus_leg,{count},,,0,\n")),
        );
        f.price_journey(&buses(n)).expect("price").total
    };
    assert_eq!(total("1", 2), 200);
    assert_eq!(total("1", 3), 400); // the second transfer starts a new sub-journey
    assert_eq!(total("2", 3), 200);
    assert_eq!(total("2", 4), 400);
    assert_eq!(total("-1", 5), 200);
    // transfer_count 0 is invalid: reported with its line, the rule skipped.
    let mut files: Vec<(&str, &str)> = V2_BASE.to_vec();
    files.push(("fare_leg_rules.txt", LEG_RULES));
    files.push(("fare_transfer_rules.txt", "from_leg_group_id,to_leg_group_id,transfer_count,fare_transfer_type\nbus_leg,bus_leg,0,0\nbus_leg,bus_leg,1,9\n"));
    let (f, rep) = gtfs::load_dir(&feed("badcount", &files)).expect("load");
    assert_eq!(
        rep.issues
            .iter()
            .filter(|i| i.file == "fare_transfer_rules.txt")
            .map(|i| i.line)
            .collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(f.transfer_rules.is_empty());
}

#[test]
fn v2_duration_limit_types() {
    // Leg 1: 12:00 → 12:10 (0 → 600 s); leg 2: 12:40 → 12:50 (2400 → 3000 s).
    // Spans: type 0 = 3000, type 1 = 2400, type 2 = 1800, type 3 = 2400.
    let legs = [
        leg("bus1", "S1", "S2", at(12, 0), at(12, 10)),
        leg("bus1", "S2", "S3", at(12, 40), at(12, 50)),
    ];
    let head = "from_leg_group_id,to_leg_group_id,transfer_count,duration_limit,duration_limit_type,fare_transfer_type,fare_product_id\n";
    for (limit, ty, transfer) in [
        (3000, 0, true),
        (2999, 0, false),
        (2400, 1, true),
        (2399, 1, false),
        (1800, 2, true),
        (1799, 2, false),
        (2400, 3, true),
        (2399, 3, false),
    ] {
        let f = v2(
            &format!("dur{ty}-{limit}"),
            LEG_RULES,
            Some(&format!("{head}bus_leg,bus_leg,-1,{limit},{ty},0,\n")),
        );
        let p = f.price_journey(&legs).expect("price");
        assert_eq!(
            p.total,
            if transfer { 200 } else { 400 },
            "type {ty} limit {limit}"
        );
    }
}

#[test]
fn v2_matrix_uses_direct_route_network() {
    let mut files: Vec<(&str, &str)> = V2_BASE.to_vec();
    files.push(("fare_leg_rules.txt", LEG_RULES));
    files.push(("trips.txt", "route_id,service_id,trip_id\nrail1,wk,r1\n"));
    files.push(("stop_times.txt", "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\nr1,12:00:00,12:00:00,S1,1,0\nr1,12:02:00,12:02:00,S2,2,1200\nr1,12:04:00,12:04:00,S3,3,2300\n"));
    let (f, _) = gtfs::load_dir(&feed("v2matrix", &files)).expect("load");
    let m = f.matrix().expect("matrix");
    let get = |a: &str, b: &str| {
        m.iter()
            .find(|r| r.from == a && r.to == b)
            .cloned()
            .expect("row")
    };
    assert_eq!(get("S1", "S2").fare_minor, Some(300));
    assert_eq!(get("S1", "S3").fare_minor, Some(400));
    assert_eq!(get("S1", "S3").distance_m, Some(2300));
    assert_eq!(get("S1", "S4").distance_m, None);
    // S4 has no service: networks of S1's routes (rail), so rail fares A → B.
    assert_eq!(get("S1", "S4").fare_minor, Some(400));
}

#[test]
fn not_a_directory_is_an_error_not_a_panic() {
    assert!(gtfs::load_dir(Path::new("/nonexistent/feed")).is_err());
    let dir = feed("nostops", &[("routes.txt", "route_id\nR\n")]);
    assert!(gtfs::load_dir(&dir).is_err());
    // Garbage bytes load as rows with issues, never panic.
    let dir = feed(
        "garbage",
        &[(
            "stops.txt",
            "stop_id,stop_name\n\"unterminated,\u{0}x\nA,\"q\"\"\n",
        )],
    );
    let _ = gtfs::load_dir(&dir);
}
