//! What a cell says about itself: its status and load (polled by the router's health checks
//! and read when a cell is added) and the map version it holds after a push.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The cell's QUIC gateway, as drivers must reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuicInfo {
    /// `host:port` the gateway listens on.
    pub addr: String,
    /// TLS server name drivers verify.
    pub server_name: String,
    /// PEM of the dev CA, when the gateway runs with generated certificates.
    pub ca_pem: Option<String>,
    /// SHA-256 of the gateway's leaf certificate, `AB:CD:…`.
    pub fingerprint: String,
}

/// Who the cell is and how loaded it is, for the router's health checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CellStatus {
    /// The router registers the cell under this id.
    pub cell_id: u16,
    pub name: String,
    /// Version of the last cell map the router pushed (0: none yet).
    pub map_version: u64,
    /// Orders not yet delivered or cancelled: a drain ends when this is 0.
    pub active_orders: u64,
    pub drivers_online: u64,
    pub restaurants: u64,
    // Absent while the gateway is not up (in-process tests).
    pub quic: Option<QuicInfo>,
    /// While the cell drains: how far it is (absent otherwise, and from older cells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainProgress>,
    /// A sample of live driver positions (at most [`MAX_DRIVER_SAMPLE`]) in the regions the
    /// cell owns, for the operations console's map (absent from older cells).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drivers_sample: Vec<DriverDot>,
}

/// How many driver positions a status carries at most: enough to show where drivers are on
/// a map, small enough for a health check every second (~60 bytes each).
pub const MAX_DRIVER_SAMPLE: usize = 100;

/// One driver's last position, in a [`CellStatus`] sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DriverDot {
    pub lat: f64,
    pub lng: f64,
    /// `available`, `offered` or `on_delivery`.
    pub state: String,
}

/// A draining cell's progress towards `drained`, for `router cells list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DrainProgress {
    /// When this cell first saw itself draining with every region moved away (Unix ms).
    pub since_ms: i64,
    /// Orders not yet delivered or cancelled.
    pub orders_left: u64,
    /// Of those, orders no driver has taken yet.
    pub waiting_for_driver: u64,
    /// Age of the oldest order left.
    pub oldest_order_age_ms: u64,
    /// Drivers still connected to the cell (kept while orders near them wait).
    pub drivers_online: u64,
    /// When the last order is expected to end (Unix ms): the latest promised delivery, or the
    /// deadline while orders still wait for a driver.
    pub expected_done_ms: i64,
    /// When orders still without a driver are cancelled (and refunded).
    pub deadline_ms: i64,
}

/// The answer to a cell-map push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MapAck {
    /// The version the cell now holds (an older push is ignored).
    pub version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quic() -> QuicInfo {
        QuicInfo {
            addr: "127.0.0.1:4433".into(),
            server_name: "cell-1.local".into(),
            ca_pem: Some("-----BEGIN CERTIFICATE-----".into()),
            fingerprint: "AB:CD".into(),
        }
    }

    fn status(quic: Option<QuicInfo>) -> CellStatus {
        CellStatus {
            cell_id: 7,
            name: "berlin".into(),
            map_version: 3,
            active_orders: 4,
            drivers_online: 5,
            restaurants: 6,
            quic,
            drain: None,
            drivers_sample: Vec::new(),
        }
    }

    fn round_trip<T>(v: &T) -> T
    where
        T: Serialize + serde::de::DeserializeOwned,
    {
        serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
    }

    #[test]
    fn round_trips() {
        assert_eq!(round_trip(&quic()), quic());
        for s in [status(Some(quic())), status(None)] {
            assert_eq!(round_trip(&s), s);
        }
        assert_eq!(round_trip(&MapAck { version: 9 }), MapAck { version: 9 });
    }

    /// The router reads these names (health checks, adding a cell); the cell writes them.
    #[test]
    fn field_names_are_pinned() {
        assert_eq!(
            serde_json::to_value(status(Some(quic()))).unwrap(),
            json!({
                "cell_id": 7,
                "name": "berlin",
                "map_version": 3,
                "active_orders": 4,
                "drivers_online": 5,
                "restaurants": 6,
                "quic": {
                    "addr": "127.0.0.1:4433",
                    "server_name": "cell-1.local",
                    "ca_pem": "-----BEGIN CERTIFICATE-----",
                    "fingerprint": "AB:CD",
                },
            })
        );
        assert_eq!(
            serde_json::to_value(status(None)).unwrap()["quic"],
            json!(null)
        );
        assert_eq!(
            serde_json::to_value(MapAck { version: 9 }).unwrap(),
            json!({ "version": 9 })
        );
    }

    #[test]
    fn a_cell_without_gateway_may_leave_quic_out() {
        let s: CellStatus = serde_json::from_value(json!({
            "cell_id": 1, "name": "c1", "map_version": 0, "active_orders": 0,
            "drivers_online": 0, "restaurants": 0,
        }))
        .unwrap();
        assert_eq!(s.quic, None);
    }
}
