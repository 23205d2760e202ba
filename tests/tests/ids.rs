//! Order ids across a restart with the clock set back (demo mode's `clock_offset_ms`): the
//! restarted cell continues above the persisted id high-water mark, so no id repeats, and
//! every order placed before the restart still belongs to its customer.

use itest::fixtures::{PM_VISA, get_order, idem_key, place, simple_order};
use itest::{Cell, CellOpts};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Orders back to back from 32 customers for seconds: far past the hourly order limit, so off.
/// `[demo]` last: the restart appends `clock_offset_ms` to it.
const CONFIG: &str = "[limits]\norders_per_window = 0\n[demo]\nrestaurants = 300\n";
/// How far the restarted cell's clock is set back.
const BACK_MS: i64 = 10_000;

/// Places orders back to back for `secs`, round robin over the customers; returns
/// `order id -> customer index`.
fn place_for(cell: &Cell, customers: &[String], span: Duration) -> Vec<(String, usize)> {
    let body = simple_order(cell, 0, PM_VISA);
    let started = Instant::now();
    let mut placed = Vec::new();
    while started.elapsed() < span {
        let c = placed.len() % customers.len();
        let r = place(cell, &customers[c], &body, &idem_key("ids"));
        assert_eq!(r.status, 201, "placing order {}: {}", placed.len(), r.text);
        placed.push((r.json["order_id"].as_str().expect("order_id").to_owned(), c));
    }
    placed
}

#[test]
fn a_cell_restarted_with_its_clock_set_back_never_reissues_an_order_id() {
    let mut cell = Cell::start(CellOpts {
        config_toml: Some(CONFIG.into()),
        ..CellOpts::default()
    });
    let customers: Vec<String> = (0..32).map(|i| cell.token("customer", 8200 + i)).collect();
    // Longer than the step back, so the restarted clock lands among these ids' milliseconds:
    // a generator that trusted its clock would hand them out again.
    let before = place_for(
        &cell,
        &customers,
        Duration::from_millis(BACK_MS as u64 + 500),
    );

    cell.restart_with(|o| {
        o.config_toml = Some(format!("{CONFIG}clock_offset_ms = -{BACK_MS}\n"));
    });
    let after = place_for(&cell, &customers, Duration::from_secs(2));
    println!(
        "ids: {} orders before the restart, {} after it with the clock {BACK_MS} ms back",
        before.len(),
        after.len()
    );

    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (id, c) in before.iter().chain(&after) {
        assert!(
            owner.insert(id.as_str(), *c).is_none(),
            "order id {id} was issued twice"
        );
    }
    let newest_before = before
        .iter()
        .map(|(id, _)| id.parse::<u64>().unwrap())
        .max();
    let oldest_after = after.iter().map(|(id, _)| id.parse::<u64>().unwrap()).min();
    assert!(
        oldest_after > newest_before,
        "ids after the restart continue above the mark"
    );
    // The orders placed before the restart are still their customers' own.
    for (id, c) in before.iter().step_by(97).chain(after.iter().step_by(97)) {
        let o = get_order(&cell, &customers[*c], id);
        assert_eq!(o["order_id"].as_str(), Some(id.as_str()), "{o}");
    }
}
