//! Key layout of location history in the cell's store (under the cell's subspace like every
//! other family, `orders::keys`). Paths are keyed day first, so a day is one key range the
//! purge clears in bounded batches.
//!
//! | key                           | value                         | purpose                        |
//! |-------------------------------|-------------------------------|--------------------------------|
//! | `("hp", day, delivery, part)` | sealed block                  | a segment, or the compacted block (`part` = [`COMPACT`]) |
//! | `("hx", delivery)`            | [`super::PathIndex`] JSON     | the delivery's day, order, next part |
//! | `("hh", delivery)`            | [`super::Hold`] JSON          | a dispute hold                 |
//! | `("hd", delivery, part)`      | sealed block (hold key)       | a held path after its day went |
//! | `("au", seq)`                 | [`super::audit::Record`] JSON | the audit log, hash-chained    |
//! | `("auh",)`                    | [`super::audit::Head`] JSON   | the audit log's last record    |

use domain::DeliveryId;
use store::keys::pack;

/// The part number of a delivery's compacted block: after every segment.
pub const COMPACT: u32 = u32::MAX;

pub fn path(day: u32, delivery: DeliveryId, part: u32) -> Vec<u8> {
    pack(&("hp", day, delivery.0, part))
}

pub fn path_prefix(day: u32, delivery: DeliveryId) -> Vec<u8> {
    pack(&("hp", day, delivery.0))
}

/// Every path of `day`: the purge's range.
pub fn day_prefix(day: u32) -> Vec<u8> {
    pack(&("hp", day))
}

/// Every path of every day.
pub fn paths_prefix() -> Vec<u8> {
    pack(&("hp",))
}

/// `(day, delivery, part)` of a path key.
pub fn parse_path(key: &[u8]) -> Option<(u32, DeliveryId, u32)> {
    let (tag, day, d, part): (String, u32, u64, u32) = store::keys::unpack(key).ok()?;
    (tag == "hp").then_some((day, DeliveryId(d), part))
}

pub fn index(delivery: DeliveryId) -> Vec<u8> {
    pack(&("hx", delivery.0))
}

pub fn hold(delivery: DeliveryId) -> Vec<u8> {
    pack(&("hh", delivery.0))
}

pub fn holds_prefix() -> Vec<u8> {
    pack(&("hh",))
}

pub fn held(delivery: DeliveryId, part: u32) -> Vec<u8> {
    pack(&("hd", delivery.0, part))
}

pub fn held_prefix(delivery: DeliveryId) -> Vec<u8> {
    pack(&("hd", delivery.0))
}

pub fn audit(seq: u64) -> Vec<u8> {
    pack(&("au", seq))
}

pub fn audit_prefix() -> Vec<u8> {
    pack(&("au",))
}

pub fn audit_head() -> Vec<u8> {
    pack(&("auh",))
}

/// The associated data a path ciphertext is sealed with: where it belongs, so a copy moved to
/// another cell, delivery, day or part does not open.
pub fn aad(cell: u16, delivery: DeliveryId, day: u32, part: u32) -> Vec<u8> {
    format!("hist/{cell}/{}/{day}/{part}", delivery.0).into_bytes()
}

/// The associated data of a held block (sealed under the delivery's hold key).
pub fn held_aad(cell: u16, delivery: DeliveryId, part: u32) -> Vec<u8> {
    format!("hold/{cell}/{}/{part}", delivery.0).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_one_range_holding_exactly_its_paths() {
        let d = DeliveryId(42);
        let (p, next) = (day_prefix(7), day_prefix(8));
        for part in [0, 1, COMPACT] {
            let k = path(7, d, part);
            assert!(k.starts_with(&p) && !k.starts_with(&next));
            assert_eq!(parse_path(&k), Some((7, d, part)));
        }
        assert!(path(7, d, COMPACT) < path(8, DeliveryId(0), 0));
        assert!(path(7, d, 0) < path(7, d, COMPACT));
        assert!(!index(d).starts_with(&paths_prefix()));
    }
}
