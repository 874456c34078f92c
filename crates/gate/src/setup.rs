//! Building a gate for a station of a built-in city: city codes, terminal numbers, keys.

use crate::metro::{GateConfig, GateMode};
use onecard_fares::{builtin, City, FareError};
use std::sync::Arc;

/// The T-Union city code a gate writes into journey records, by city id.
///
/// Beijing `1000` is the code of the sample issuer id in `shared/spec/epurse.md`; Shanghai
/// `2900` comes from its issuer id `02002900FFFFFFFF` there. The others are onecard's own
/// placeholders (UNVERIFIED against the national city-code table): a gate only compares codes it
/// wrote itself, to tell "entered in this city" from "entered elsewhere".
pub fn city_code(city_id: &str) -> [u8; 2] {
    match city_id {
        "beijing" => [0x10, 0x00],
        "shanghai" => [0x29, 0x00],
        "shenzhen" => [0x51, 0x80],
        "guangzhou" => [0x51, 0x00],
        "wuhan" => [0x43, 0x00],
        "jilin" => [0x13, 0x20],
        _ => [0x99, 0x99],
    }
}

/// The PSAM terminal number of gate `gate` at a station: `30` (metro gates start with 3, as
/// Beijing's do) ‖ city code ‖ station id ‖ gate number.
pub fn terminal_number(city_code: [u8; 2], station: u16, gate: u8) -> [u8; 6] {
    let s = station.to_be_bytes();
    [0x30, city_code[0], city_code[1], s[0], s[1], gate]
}

/// Why a gate cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Unknown city or broken city file.
    #[error(transparent)]
    Fares(#[from] FareError),
    /// The city has no metro network.
    #[error("city {0} has no metro network to put a gate in")]
    NoNetwork(String),
}

/// The configuration of a gate at `station` (a name from the network data) in a built-in city.
pub fn gate_config(city_id: &str, station: &str, mode: GateMode) -> Result<GateConfig, SetupError> {
    gate_config_for(city_id, builtin::city(city_id)?, station, mode)
}

/// [`gate_config`] with the city's fares given (e.g. a fare file downloaded from the host).
pub fn gate_config_for(
    city_id: &str,
    city: City,
    station: &str,
    mode: GateMode,
) -> Result<GateConfig, SetupError> {
    let id = city.station_by_name(station)?;
    let net = city
        .network()
        .ok_or_else(|| SetupError::NoNetwork(city_id.to_string()))?;
    let st = net
        .stations
        .get(usize::from(id))
        .ok_or_else(|| SetupError::NoNetwork(city_id.to_string()))?;
    let line = st.lines.first().copied().unwrap_or(0);
    let station_name = st.name.clone();
    Ok(GateConfig {
        city_id: city_id.to_string(),
        city_code: city_code(city_id),
        station: id,
        station_name,
        line,
        mode,
        bus: None,
        city: Arc::new(city),
    })
}

/// Loads the gate's blacklist snapshot, if it has one.
pub fn load_blacklist(
    path: &std::path::Path,
) -> Result<Option<Arc<onecard_blacklist::Blacklist>>, onecard_blacklist::Error> {
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(Arc::new(onecard_blacklist::Blacklist::new(
        onecard_blacklist::List::load(path)?,
    ))))
}

/// The configuration of a bus validator on `route` in a city (built-in id, or a parsed city).
pub fn bus_config(city_id: &str, city: Arc<City>, route: crate::metro::BusRoute) -> GateConfig {
    GateConfig {
        city_id: city_id.to_string(),
        city_code: city_code(city_id),
        station: 0,
        station_name: match &route.name {
            Some(n) => format!("{n} stop {}", route.stop),
            None => format!("route {} stop {}", route.line, route.stop),
        },
        line: route.line,
        mode: GateMode::Auto,
        bus: Some(route),
        city,
    }
}
