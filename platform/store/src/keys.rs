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
/// Signal key of each log on FoundationDB and the model: `("evs", log_id)`, blind-written by every
/// appending transaction so `wait_for_events` can watch it.
pub const EVENT_SIGNALS: &str = "evs";
/// Backend bookkeeping: `("meta", name)`.
pub const META: &str = "meta";

/// Key space of one cell's data: `("c", cell_id, ...)`. Every key family a cell writes lives
/// under its cell's subspace, so cells sharing one cluster never read each other's keys.
pub const CELL: &str = "c";
/// Key space of data shared by all cells and the router: `("g", name, ...)`.
pub const SHARED: &str = "g";

/// A key prefix that scopes a family of keys, the tuple layer's subspace: `pack` appends a
/// tuple to the prefix, so keys of one subspace sort together and `range` covers exactly them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subspace {
    prefix: Vec<u8>,
}

impl Subspace {
    /// The subspace of cell `cell`'s data.
    pub fn cell(cell: u16) -> Self {
        Self {
            prefix: pack(&(CELL, cell)),
        }
    }

    /// A subspace for data shared across cells (the router's map is `shared("map")`).
    pub fn shared(name: &str) -> Self {
        Self {
            prefix: pack(&(SHARED, name)),
        }
    }

    /// The subspace of tuple `t` at the top of the store the caller sees: inside a store
    /// scoped with [`crate::SubspaceKv`] that is below the scope's prefix, which the caller's
    /// keys never carry.
    pub fn new<T: TuplePack>(t: &T) -> Self {
        Self { prefix: pack(t) }
    }

    /// A nested subspace: this prefix followed by the packed tuple `t`.
    pub fn sub<T: TuplePack>(&self, t: &T) -> Self {
        Self {
            prefix: self.pack(t),
        }
    }

    /// The key for tuple `t` in this subspace.
    pub fn pack<T: TuplePack>(&self, t: &T) -> Vec<u8> {
        let mut key = self.prefix.clone();
        key.extend_from_slice(&pack(t));
        key
    }

    /// Decodes a key of this subspace back into its tuple; `None` if the key is not in it.
    pub fn unpack<'de, T: TupleUnpack<'de>>(&self, key: &'de [u8]) -> Option<T> {
        unpack(key.strip_prefix(self.prefix.as_slice())?).ok()
    }

    /// The raw prefix.
    pub fn bytes(&self) -> &[u8] {
        &self.prefix
    }

    /// `[begin, end)` covering every key of this subspace.
    pub fn range(&self) -> (Vec<u8>, Vec<u8>) {
        (self.prefix.clone(), prefix_end(&self.prefix))
    }
}

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

/// Signal key of `log` (FoundationDB and the model; see [`EVENT_SIGNALS`]).
pub fn event_signal_key(log: u16) -> Vec<u8> {
    pack(&(EVENT_SIGNALS, log))
}

/// Key of the event at versionstamp position `pos` of `log` (FoundationDB and the model).
pub fn stamped_event_key(log: u16, pos: crate::LogPos) -> Vec<u8> {
    pack(&(EVENTS, log, pos_to_stamp(pos)))
}

/// A versionstamp position as the stamp: the low 96 bits are the 10-byte transaction version
/// and the 2-byte user version.
pub fn pos_to_stamp(pos: crate::LogPos) -> Versionstamp {
    let b = pos.0.to_be_bytes();
    let mut tr = [0u8; 10];
    tr.copy_from_slice(&b[4..14]);
    Versionstamp::complete(tr, u16::from_be_bytes([b[14], b[15]]))
}

/// A complete versionstamp as a position (`commit version << 32 | batch order << 16 | user
/// version`).
pub fn stamp_to_pos(stamp: &Versionstamp) -> crate::LogPos {
    let mut b = [0u8; 16];
    b[4..].copy_from_slice(stamp.as_bytes());
    crate::LogPos(u128::from_be_bytes(b))
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
    fn subspaces_keep_cells_apart() {
        let a = Subspace::cell(1);
        let b = Subspace::cell(2);
        let ka = a.pack(&("o", 7u64));
        assert!(ka.starts_with(a.bytes()) && !ka.starts_with(b.bytes()));
        let (begin, end) = a.range();
        assert!(begin <= ka && ka < end);
        assert!(!(begin <= b.pack(&("o", 7u64)) && b.pack(&("o", 7u64)) < end));
        assert_eq!(a.unpack::<(String, u64)>(&ka), Some(("o".into(), 7)));
        assert_eq!(b.unpack::<(String, u64)>(&ka), None);
        let nested = a.sub(&("cursor",));
        assert!(nested.pack(&("x",)).starts_with(a.bytes()));
        assert_ne!(Subspace::shared("map").bytes(), a.bytes());
    }

    #[test]
    fn stamped_positions_round_trip_and_sort_by_commit() {
        let early = crate::LogPos((5u128 << 32) | (1 << 16) | 2);
        let late = crate::LogPos(6u128 << 32);
        assert_eq!(stamp_to_pos(&pos_to_stamp(early)), early);
        assert!(stamped_event_key(1, early) < stamped_event_key(1, late));
        assert!(stamped_event_key(1, late).starts_with(&event_prefix(1)));
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
