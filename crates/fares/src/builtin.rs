//! City files and network data compiled into the binary, so `--city beijing` works from any
//! directory and a gate needs no file system.

use crate::city::City;
use crate::error::{FareError, Result};
use crate::rules::CityRules;

/// Built-in city files: `(id, TOML text)`.
pub const CITIES: &[(&str, &str)] = &[
    ("beijing", include_str!("../../../data/cities/beijing.toml")),
    (
        "shanghai",
        include_str!("../../../data/cities/shanghai.toml"),
    ),
    (
        "shenzhen",
        include_str!("../../../data/cities/shenzhen.toml"),
    ),
    (
        "guangzhou",
        include_str!("../../../data/cities/guangzhou.toml"),
    ),
    ("wuhan", include_str!("../../../data/cities/wuhan.toml")),
    ("jilin", include_str!("../../../data/cities/jilin.toml")),
];

/// Built-in network datasets: `(id, file name, CSV text)`.
pub const DATASETS: &[(&str, &str, &str)] = &[(
    "beijing-subway",
    "beijing_subway_line_stations.csv",
    include_str!("../../../data/beijing-subway/beijing_subway_line_stations.csv"),
)];

/// Resolves a built-in dataset id.
pub fn dataset(id: &str) -> Option<(&'static str, String)> {
    DATASETS
        .iter()
        .find(|d| d.0 == id)
        .map(|d| (d.1, d.2.to_string()))
}

/// Loads a built-in city by id.
pub fn city(id: &str) -> Result<City> {
    let text = CITIES
        .iter()
        .find(|c| c.0 == id)
        .map(|c| c.1)
        .ok_or_else(|| {
            FareError::UnknownCity(
                id.to_string(),
                CITIES.iter().map(|c| c.0).collect::<Vec<_>>().join(", "),
            )
        })?;
    City::new(CityRules::from_toml(text)?, dataset)
}

/// Loads a city from a TOML text; `network` may name a built-in dataset.
pub fn city_from_toml(text: &str) -> Result<City> {
    City::new(CityRules::from_toml(text)?, dataset)
}
