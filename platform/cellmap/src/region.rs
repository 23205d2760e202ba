//! Regions on the wire: the H3 index as its usual 15-hex-digit string ("851f1d4bfffffff").

use domain::RegionId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A [`RegionId`] that (de)serializes as its H3 string and orders like the packed id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionKey(pub RegionId);

impl fmt::Display for RegionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RegionKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cell = h3o::CellIndex::from_str(s).map_err(|e| format!("{s:?}: {e}"))?;
        RegionId::try_from_cell_index(u64::from(cell))
            .map(RegionKey)
            .map_err(|_| format!("{s:?} is not a resolution-5 H3 cell"))
    }
}

impl Serialize for RegionKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RegionKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_h3_string() {
        let r = RegionKey(RegionId::from_latlng(52.52, 13.405).unwrap());
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json.len(), 17, "15 hex digits in quotes: {json}");
        assert_eq!(serde_json::from_str::<RegionKey>(&json).unwrap(), r);
        // Finer cells are not regions.
        let fine = h3o::LatLng::new(52.52, 13.405)
            .unwrap()
            .to_cell(h3o::Resolution::Nine);
        assert!(fine.to_string().parse::<RegionKey>().is_err());
        assert!("zz".parse::<RegionKey>().is_err());
    }
}
