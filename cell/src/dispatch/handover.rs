//! Handover: a connected driver whose position lies in a region another cell owns (they drove
//! across, or SREs moved the region) is told to reconnect there, but only while idle, so a
//! delivery in progress finishes on the cell that holds its order.
//!
//! A pass reads the cell map and a snapshot of the geostore; the gateway closes the
//! connection once the `Handover` is acknowledged. A draining cell keeps an idle driver
//! while one of its orders waiting for a driver is within matching range of them.

use super::Dispatch;
use cellmap::{CellMap, CellState, RegionKey};
use domain::{CellId, DriverId, RegionId, UnixMs};
use geostore::DriverState;
use schemas::{CellBody, Handover, HandoverReason};
use std::collections::{HashMap, HashSet};

/// Do not repeat a handover to the same driver sooner than this (the gateway needs up to a
/// second to get the acknowledgement and close).
const REPEAT_AFTER_MS: i64 = 5_000;

/// Remembers recent handovers so each driver is told once.
#[derive(Default)]
pub struct HandoverState {
    sent: HashMap<DriverId, UnixMs>,
    /// Regions this cell owned in any map it has seen: a driver there moves because the
    /// region did.
    once_mine: HashSet<RegionKey>,
}

impl Dispatch {
    /// One pass over the online drivers; returns how many were told to move.
    pub fn handover_pass(
        &self,
        map: &CellMap,
        me: CellId,
        seen: &mut HandoverState,
        now: UnixMs,
    ) -> usize {
        if map.version == 0 {
            return 0;
        }
        seen.sent.retain(|_, at| now.0 - at.0 < REPEAT_AFTER_MS);
        seen.once_mine.extend(map.regions_of(me));
        let draining = map.cell(me).is_some_and(|c| c.state != CellState::Active);
        let drivers = self.geo.drivers();
        let st = self.state.lock();
        // A draining cell keeps the idle drivers its waiting orders may need (see
        // `crate::drain`): an order never moves, so nobody else could carry it.
        let waiting: Vec<(f64, f64)> = if draining {
            st.jobs
                .values()
                .map(|o| (o.restaurant_lat, o.restaurant_lng))
                .collect()
        } else {
            Vec::new()
        };
        let reach = self.cfg.matching.wide_radius_m;
        let mut told = 0;
        for d in drivers {
            let driver = DriverId(d.id.0);
            if d.state != DriverState::Available || seen.sent.contains_key(&driver) {
                continue;
            }
            let Ok(region) = RegionId::from_latlng(d.lat, d.lng) else {
                continue;
            };
            let Some(owner) = map.owner(region).filter(|c| c.id != me) else {
                continue;
            };
            if waiting
                .iter()
                .any(|&(lat, lng)| geostore::haversine_m(lat, lng, d.lat, d.lng) <= reach)
            {
                continue;
            }
            let (Some(addr), Some(server_name)) = (
                owner.quic.as_deref().and_then(|a| a.parse().ok()),
                owner.quic_server_name.clone(),
            ) else {
                continue;
            };
            let reason = if draining {
                HandoverReason::CellDraining
            } else if seen.once_mine.contains(&RegionKey(region)) {
                HandoverReason::RegionMoved
            } else {
                HandoverReason::DriverMoved
            };
            let msg = CellBody::Handover(Handover {
                addr,
                server_name,
                reason,
            });
            if self.send(&st, driver, msg) {
                seen.sent.insert(driver, now);
                metrics::counter!("cell_driver_handovers_total").increment(1);
                told += 1;
            }
        }
        told
    }
}
