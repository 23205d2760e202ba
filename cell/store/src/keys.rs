//! Key encoding. Every key is a `foundationdb-tuple` packed tuple, on both backends, so a
//! dump of either store has the same layout. Top-level tuple element 0 names the key space.

pub use foundationdb_tuple::{Element, TuplePack, TupleUnpack, pack, unpack};

/// Key space of the event logs: `("ev", log_id, position)`.
pub const EVENTS: &str = "ev";
/// Head position of each log: `("evh", log_id)`.
pub const EVENT_HEADS: &str = "evh";

/// The smallest key greater than every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): everything sorts before this.
    vec![0xff; prefix.len() + 1]
}

/// Key of event `pos` in `log`.
pub fn event_key(log: u16, pos: u64) -> Vec<u8> {
    pack(&(EVENTS, log, pos))
}

/// Prefix of every event key in `log`.
pub fn event_prefix(log: u16) -> Vec<u8> {
    // Packing a tuple without the last element gives a prefix of every longer tuple.
    pack(&(EVENTS, log))
}

/// Key holding `log`'s head position (big-endian u64 value).
pub fn event_head_key(log: u16) -> Vec<u8> {
    pack(&(EVENT_HEADS, log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_sort_by_position() {
        let keys: Vec<_> = [1u64, 2, 255, 256, 65_536, u64::MAX / 2]
            .iter()
            .map(|p| event_key(7, *p))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(keys.iter().all(|k| k.starts_with(&event_prefix(7))));
        assert!(!event_key(8, 1).starts_with(&event_prefix(7)));
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        let p = event_prefix(3);
        let end = prefix_end(&p);
        assert!(event_key(3, u64::MAX) < end);
        assert!(p < end);
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
    }
}
