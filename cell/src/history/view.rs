//! The dispute view of one delivery: its path as a GeoJSON Feature (a LineString, a time per
//! point in its properties) and as an encoded polyline (Google's algorithm, precision 5), the
//! order's status timeline, and the driver's distance to the dropoff at `delivered`.
//!
//! Geofence events, the PIN check and dispatch rounds are not recorded by the cell yet; the
//! view names them in `not_recorded` and leaves their fields null rather than inventing them.

use super::Hold;
use crate::http::dto::HistoryDto;
use domain::{HistoryEntry, Order, OrderStatus};
use pathcodec::Fix;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the dispute view lists that the cell does not record today.
pub const NOT_RECORDED: [&str; 3] = ["geofence_events", "pin_verified", "dispatch_rounds"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum FeatureType {
    Feature,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum LineStringType {
    LineString,
}

/// A GeoJSON LineString (RFC 7946): positions are `[longitude, latitude]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LineString {
    #[serde(rename = "type")]
    pub kind: LineStringType,
    pub coordinates: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PathProperties {
    pub delivery_id: String,
    /// The phone's time of each point (ms since the Unix epoch), in the order of the points.
    pub times_ms: Vec<i64>,
}

/// A GeoJSON Feature holding the path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PathFeature {
    #[serde(rename = "type")]
    pub kind: FeatureType,
    /// Null when fewer than two points were recorded (a LineString needs two).
    pub geometry: Option<LineString>,
    pub properties: PathProperties,
}

/// `GET /api/v1/admin/deliveries/{id}/path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DisputeView {
    pub delivery_id: String,
    pub order_id: String,
    pub driver_id: Option<String>,
    /// Points recorded (flushed to the store; the newest minute of an active path may be
    /// missing).
    pub points: usize,
    pub path: PathFeature,
    /// The same points as an encoded polyline (precision 5).
    pub polyline: String,
    /// The order's status history, oldest first.
    pub timeline: Vec<HistoryDto>,
    /// Metres from the driver's last recorded point at or before `delivered` to the dropoff;
    /// null before delivery or without points.
    pub delivered_distance_m: Option<f64>,
    /// The dispute hold on this path, if any.
    pub hold: Option<Hold>,
    /// Not recorded by the cell yet: always null.
    pub geofence_events: Option<Vec<String>>,
    /// Not recorded by the cell yet: always null.
    pub pin_verified: Option<bool>,
    /// Not recorded by the cell yet: always null.
    pub dispatch_rounds: Option<Vec<String>>,
    /// The fields above that are null because the cell does not record them yet.
    pub not_recorded: Vec<String>,
}

/// Google's encoded polyline of `points` (`(lat, lng)`), precision 5.
pub fn encode_polyline(points: &[(f64, f64)]) -> String {
    let mut out = String::with_capacity(points.len() * 6);
    let (mut plat, mut plng) = (0i64, 0i64);
    for &(lat, lng) in points {
        let (ilat, ilng) = ((lat * 1e5).round() as i64, (lng * 1e5).round() as i64);
        put(&mut out, ilat - plat);
        put(&mut out, ilng - plng);
        (plat, plng) = (ilat, ilng);
    }
    out
}

fn put(out: &mut String, v: i64) {
    let mut v = if v < 0 { !(v << 1) } else { v << 1 } as u64;
    while v >= 0x20 {
        out.push(char::from((0x20 | (v & 0x1f)) as u8 + 63));
        v >>= 5;
    }
    out.push(char::from(v as u8 + 63));
}

/// Decodes an encoded polyline (precision 5); `None` for a malformed one.
pub fn decode_polyline(s: &str) -> Option<Vec<(f64, f64)>> {
    let bytes = s.as_bytes();
    let (mut i, mut lat, mut lng) = (0, 0i64, 0i64);
    let mut out = Vec::new();
    let next = |i: &mut usize| -> Option<i64> {
        let (mut result, mut shift) = (0u64, 0u32);
        loop {
            let b = u64::from(bytes.get(*i)?.checked_sub(63)?);
            *i += 1;
            if shift > 60 {
                return None;
            }
            result |= (b & 0x1f) << shift;
            shift += 5;
            if b < 0x20 {
                break;
            }
        }
        let v = (result >> 1) as i64;
        Some(if result & 1 == 1 { !v } else { v })
    };
    while i < bytes.len() {
        lat += next(&mut i)?;
        lng += next(&mut i)?;
        out.push((lat as f64 / 1e5, lng as f64 / 1e5));
    }
    Some(out)
}

/// The view of `order`'s delivery from its stored `fixes` and status `history`.
pub fn build(
    delivery: domain::DeliveryId,
    order: &Order,
    history: &[HistoryEntry],
    fixes: &[Fix],
    hold: Option<Hold>,
) -> DisputeView {
    let coords: Vec<[f64; 2]> = fixes.iter().map(|f| [f.lng, f.lat]).collect();
    let latlng: Vec<(f64, f64)> = fixes.iter().map(|f| (f.lat, f.lng)).collect();
    let delivered_at = history
        .iter()
        .find(|e| e.status == OrderStatus::Delivered)
        .map(|e| e.at.0);
    let delivered_distance_m = delivered_at.and_then(|at| {
        // The phone's clock stamps the fixes, the cell's the event: close enough for a
        // dispute, and the last fix stands in when the phone's clock runs ahead.
        let last = fixes.iter().rev().find(|f| f.t_ms <= at).or(fixes.last())?;
        let a = &order.delivery_address;
        Some((geostore::haversine_m(last.lat, last.lng, a.lat, a.lng) * 10.0).round() / 10.0)
    });
    DisputeView {
        delivery_id: delivery.0.to_string(),
        order_id: order.id.0.to_string(),
        driver_id: order.driver_id.map(|d| d.0.to_string()),
        points: fixes.len(),
        path: PathFeature {
            kind: FeatureType::Feature,
            geometry: (coords.len() >= 2).then_some(LineString {
                kind: LineStringType::LineString,
                coordinates: coords,
            }),
            properties: PathProperties {
                delivery_id: delivery.0.to_string(),
                times_ms: fixes.iter().map(|f| f.t_ms).collect(),
            },
        },
        polyline: encode_polyline(&latlng),
        timeline: history.iter().map(HistoryDto::from_entry).collect(),
        delivered_distance_m,
        hold,
        geofence_events: None,
        pin_verified: None,
        dispatch_rounds: None,
        not_recorded: NOT_RECORDED.iter().map(|s| s.to_string()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn googles_example_encodes_as_documented() {
        // developers.google.com/maps/documentation/utilities/polylinealgorithm
        let pts = [(38.5, -120.2), (40.7, -120.95), (43.252, -126.453)];
        let s = encode_polyline(&pts);
        assert_eq!(s, "_p~iF~ps|U_ulLnnqC_mqNvxq`@");
        assert_eq!(decode_polyline(&s).unwrap(), pts.to_vec());
        assert_eq!(encode_polyline(&[]), "");
        assert!(
            decode_polyline("_p~iF~ps|").is_none(),
            "ends inside a value"
        );
        assert!(decode_polyline("\u{1}").is_none());
    }

    #[test]
    fn the_polyline_decodes_to_the_geojson_points_of_a_realistic_track() {
        let fixes = pathcodec::fuzzing::realistic_track(7, 720, (52.52, 13.405));
        // Through the codec first, as stored: 1e-5° coordinates, as the polyline's.
        let stored = pathcodec::decode(&pathcodec::encode(1, 0, &fixes))
            .unwrap()
            .fixes;
        let order = domain::testing::order(
            domain::OrderId(1),
            domain::CustomerId(2),
            domain::RestaurantId(3),
            domain::UnixMs(0),
        );
        let v = build(domain::DeliveryId(1), &order, &[], &stored, None);
        let line = v.path.geometry.as_ref().unwrap();
        let decoded = decode_polyline(&v.polyline).unwrap();
        assert_eq!(decoded.len(), line.coordinates.len());
        for (p, c) in decoded.iter().zip(&line.coordinates) {
            assert!(
                (p.0 - c[1]).abs() < 0.5e-5 && (p.1 - c[0]).abs() < 0.5e-5,
                "{p:?} vs {c:?}"
            );
        }
        assert_eq!(v.path.properties.times_ms.len(), 720);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["path"]["type"], "Feature");
        assert_eq!(json["path"]["geometry"]["type"], "LineString");
        assert!(json["pin_verified"].is_null());
        assert_eq!(json["not_recorded"].as_array().unwrap().len(), 3);
    }
}
