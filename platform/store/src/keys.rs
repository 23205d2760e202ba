//! Key encoding. Every key is a `foundationdb-tuple` packed tuple, on both backends, so a
//! dump of either store has the same layout. Top-level tuple element 0 names the key space.

pub use foundationdb_tuple::{
    Bytes, Element, TuplePack, TupleUnpack, Versionstamp, pack, pack_with_versionstamp, unpack,
};

/// Key space of the event logs: `("ev", log_id, position)`, value
/// `(versionstamp, payload bytes)` (see [`event_value`]).
pub const EVENTS: &str = "ev";
/// Head position of each log: `("evh", log_id)`.
pub const EVENT_HEADS: &str = "evh";
/// Backend bookkeeping: `("meta", name)`.
pub const META: &str = "meta";

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

/// Key of the embedded backend's commit counter, the first 8 bytes of its versionstamps.
pub fn commit_seq_key() -> Vec<u8> {
    pack(&(META, "commit_seq"))
}

/// Key the embedded backend writes to probe, after a failed commit, whether commits work again.
pub fn probe_key() -> Vec<u8> {
    pack(&(META, "probe"))
}

/// Value of an event record: the tuple `(versionstamp, payload)`. On FoundationDB the stamp is
/// the commit versionstamp (written with an incomplete stamp via `SetVersionstampedValue`); the
/// embedded backend writes `commit_seq (8 bytes) ++ index in batch (2 bytes)` as the 10-byte
/// transaction version. The user version is the event's index within its transaction.
pub fn event_value(stamp: &Versionstamp, payload: &[u8]) -> Vec<u8> {
    pack(&(stamp, Bytes::from(payload)))
}

/// Decodes an [`event_value`] into its stamp and payload.
pub fn decode_event_value(value: &[u8]) -> Result<(Versionstamp, Vec<u8>), String> {
    let (stamp, payload): (Versionstamp, Bytes<'_>) =
        unpack(value).map_err(|e| format!("event value: {e:?}"))?;
    Ok((stamp, payload.into_owned()))
}

/// Encodes a log head (big-endian u64).
pub fn encode_head(pos: u64) -> [u8; 8] {
    pos.to_be_bytes()
}

/// Decodes a log head written by [`encode_head`].
pub fn decode_head(value: &[u8]) -> Result<u64, String> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| format!("log head is {} bytes, expected 8", value.len()))?;
    Ok(u64::from_be_bytes(bytes))
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

    #[test]
    fn event_values_round_trip() {
        let stamp = Versionstamp::complete([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 3);
        let v = event_value(&stamp, b"\x00payload\xff");
        let (s, p) = decode_event_value(&v).unwrap();
        assert_eq!(s, stamp);
        assert_eq!(p, b"\x00payload\xff");
        assert_eq!(decode_head(&encode_head(42)).unwrap(), 42);
        assert!(decode_head(b"abc").is_err());
    }
}
