//! What the assigned driver sees of the customer's address at each step (Uber Eats' "view as
//! delivery person"): an approximate area (the centre of the dropoff's H3 resolution-8 cell,
//! ≈ 0.7 km²) and the distance while offered and before pickup; the address, the notes and
//! the customer's first name and last initial from pickup (or from acceptance, as
//! `[privacy] driver_address_from` says) until the delivery ended plus the grace; then the
//! approximate area again. Pure: the status, the end time and `now` come in.

use super::config::{PrivacyConfig, RevealFrom};
use domain::{HistoryEntry, OrderStatus, UnixMs};

/// How much of the address the driver sees now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Approximate,
    Full,
}

/// The resolution of the approximate area.
pub const APPROXIMATE_RES: h3o::Resolution = h3o::Resolution::Eight;

/// What the order's driver sees at `status` (an open offer is `offered`). `ended_at`: when
/// the order was delivered or cancelled.
pub fn shown(
    cfg: &PrivacyConfig,
    status: OrderStatus,
    offered: bool,
    ended_at: Option<UnixMs>,
    now: UnixMs,
) -> Shown {
    if offered {
        return Shown::Approximate;
    }
    match status {
        OrderStatus::PaymentPending
        | OrderStatus::Pending
        | OrderStatus::Confirmed
        | OrderStatus::Preparing
        | OrderStatus::ReadyForPickup => Shown::Approximate,
        OrderStatus::DriverAssigned | OrderStatus::DriverAtRestaurant => {
            match cfg.driver_address_from {
                RevealFrom::Acceptance => Shown::Full,
                RevealFrom::Pickup => Shown::Approximate,
            }
        }
        OrderStatus::PickedUp | OrderStatus::Delivering => Shown::Full,
        OrderStatus::Delivered | OrderStatus::Cancelled => match ended_at {
            Some(t) if now.0 < revoke_at(cfg, t).0 => Shown::Full,
            _ => Shown::Approximate,
        },
    }
}

/// When a delivery that ended at `ended` stops showing the address.
pub fn revoke_at(cfg: &PrivacyConfig, ended: UnixMs) -> UnixMs {
    UnixMs(
        ended
            .0
            .saturating_add(i64::try_from(cfg.address_grace_ms).unwrap_or(i64::MAX)),
    )
}

/// When the order was delivered or cancelled, from its status history.
pub fn ended_at(history: &[HistoryEntry]) -> Option<UnixMs> {
    history
        .iter()
        .rev()
        .find(|e| e.status.is_terminal())
        .map(|e| e.at)
}

/// The centre of the H3 resolution-8 cell around a point: the approximate dropoff.
pub fn approximate(lat: f64, lng: f64) -> (f64, f64) {
    match h3o::LatLng::new(lat, lng) {
        Ok(p) => {
            let c = h3o::LatLng::from(p.to_cell(APPROXIMATE_RES));
            (c.lat(), c.lng())
        }
        // Placement checks coordinates; a bad one shows nothing precise either way.
        Err(_) => (0.0, 0.0),
    }
}

/// "Maya S.": the first name and the last name's initial of a display name.
pub fn first_name_last_initial(display: &str) -> String {
    let mut words = display.split_whitespace();
    let first = words.next().unwrap_or("");
    match words.last().and_then(|l| l.chars().next()) {
        Some(i) => format!("{first} {i}."),
        None => first.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_shows_what_the_window_allows() {
        let mut cfg = PrivacyConfig::default();
        let end = UnixMs(1_000_000);
        let grace_end = revoke_at(&cfg, end);
        let at = |s, ended, now| shown(&cfg, s, false, ended, now);
        assert_eq!(
            shown(&cfg, OrderStatus::Preparing, true, None, end),
            Shown::Approximate
        );
        assert_eq!(
            at(OrderStatus::DriverAssigned, None, end),
            Shown::Approximate
        );
        assert_eq!(at(OrderStatus::PickedUp, None, end), Shown::Full);
        assert_eq!(at(OrderStatus::Delivering, None, end), Shown::Full);
        assert_eq!(at(OrderStatus::Delivered, Some(end), end), Shown::Full);
        assert_eq!(
            at(OrderStatus::Delivered, Some(end), UnixMs(grace_end.0 - 1)),
            Shown::Full
        );
        assert_eq!(
            at(OrderStatus::Delivered, Some(end), grace_end),
            Shown::Approximate
        );
        assert_eq!(
            at(OrderStatus::Cancelled, Some(end), grace_end),
            Shown::Approximate
        );
        cfg.driver_address_from = RevealFrom::Acceptance;
        assert_eq!(
            shown(&cfg, OrderStatus::DriverAssigned, false, None, end),
            Shown::Full
        );
        assert_eq!(
            shown(&cfg, OrderStatus::ReadyForPickup, true, None, end),
            Shown::Approximate,
            "an offer is never the address"
        );
    }

    #[test]
    fn the_approximate_area_is_near_but_not_the_point() {
        let (lat, lng) = (52.520_08, 13.404_95);
        let (a, b) = approximate(lat, lng);
        assert!((a, b) != (lat, lng));
        let d = geostore::haversine_m(lat, lng, a, b);
        assert!(d < 1_000.0, "{d} m");
        assert_eq!(
            approximate(52.520_1, 13.405),
            (a, b),
            "a neighbour maps to the same centre"
        );
        assert_eq!(first_name_last_initial("Maya Schulz"), "Maya S.");
        assert_eq!(first_name_last_initial("Maya"), "Maya");
    }
}
