//! A what-if day: one seed's whole day under one matching configuration, as the records the
//! report compares ([`run_day`]).

use crate::config::{DAY_START_MS, HOUR_MS, SimConfig};
use crate::report::{DayRecord, DriverRecord, OrderRecord};
use crate::world::World;
use cell::dispatch::matching::machine::MatchConfig;
use domain::EventKind;

/// A city's size.
#[derive(Debug, Clone, Copy)]
pub struct CitySize {
    pub orders_per_day: u32,
    pub drivers: u32,
    pub restaurants: usize,
    /// Hours simulated from midnight (24 for the whole day).
    pub hours: f64,
}

impl Default for CitySize {
    fn default() -> Self {
        Self {
            orders_per_day: 5_000,
            drivers: 300,
            restaurants: 300,
            hours: 24.0,
        }
    }
}

/// Runs the day of `seed` (no faults) under `matching` and records every order's timeline
/// and every driver's shift and trips.
pub fn run_day(seed: u64, matching: MatchConfig, size: CitySize) -> Result<DayRecord, String> {
    let cfg = SimConfig {
        orders_per_day: size.orders_per_day,
        drivers: size.drivers,
        restaurants: size.restaurants,
        start_hour: 0.0,
        hours: size.hours,
        matching,
        ..SimConfig::small(seed)
    };
    let mut w = World::new(cfg).map_err(|e| e.to_string())?;
    w.run()
        .map_err(|f| format!("SIM_SEED={} SIM_STEP={}: {}", f.seed, f.step, f.violation))?;
    record(&mut w, seed, size)
}

fn record(w: &mut World, seed: u64, size: CitySize) -> Result<DayRecord, String> {
    let kv = w.kv.clone();
    let mut orders = Vec::new();
    let acked: Vec<_> = w
        .customers
        .acked
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    for (id, a) in acked {
        let view = w
            .block(cell::orders::repo::get_with_history(&*kv, id))
            .map_err(|e| e.to_string())?;
        let Some((_, h)) = view else { continue };
        let when = |k: EventKind| h.iter().find(|e| e.event == k).map(|e| e.at.0);
        orders.push(OrderRecord {
            order: id.0,
            placed_ms: a.placed_ms,
            assigned_ms: when(EventKind::DriverAssigned),
            picked_up_ms: when(EventKind::OrderPickedUp),
            delivered_ms: when(EventKind::OrderDelivered),
            cancelled_ms: when(EventKind::OrderCancelled).or(when(EventKind::OrderRejected)),
            offers: w.drivers.offers.get(&id.0).copied().unwrap_or(0),
            promised_ms: Some(a.promised_ms),
        });
    }
    let drivers = w
        .drivers
        .list
        .iter()
        .map(|d| DriverRecord {
            driver: d.id.0,
            shifts: vec![d.shift],
            busy: d.busy.clone(),
        })
        .collect();
    Ok(DayRecord {
        label: String::new(),
        seed,
        start_ms: DAY_START_MS,
        end_ms: DAY_START_MS + (size.hours * HOUR_MS as f64) as i64,
        orders,
        drivers,
    })
}
