//! ZigZag + LEB128 varints (as Protocol Buffers encode them), with a reader that refuses
//! truncated and over-long input instead of panicking.

use crate::DecodeError;

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, zigzag(v));
}

/// Reads values from the front of a byte slice.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for (i, &b) in self.bytes.iter().enumerate().take(10) {
            // The tenth byte may only carry the top bit of a u64.
            if i == 9 && b > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.bytes = &self.bytes[i + 1..];
                return Ok(v);
            }
        }
        if self.bytes.len() >= 10 {
            Err(DecodeError::VarintOverflow)
        } else {
            Err(DecodeError::Truncated)
        }
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        self.u64().map(unzigzag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_take_one_byte_and_extremes_round_trip() {
        for (v, len) in [
            (0i64, 1),
            (-1, 1),
            (63, 1),
            (-64, 1),
            (64, 2),
            (i64::MAX, 10),
            (i64::MIN, 10),
        ] {
            let mut out = Vec::new();
            put_i64(&mut out, v);
            assert_eq!(out.len(), len, "{v}");
            let mut r = Reader::new(&out);
            assert_eq!(r.i64(), Ok(v));
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn truncated_and_over_long_varints_are_errors() {
        assert_eq!(Reader::new(&[0x80]).u64(), Err(DecodeError::Truncated));
        assert_eq!(Reader::new(&[]).u64(), Err(DecodeError::Truncated));
        assert_eq!(
            Reader::new(&[0xff; 11]).u64(),
            Err(DecodeError::VarintOverflow)
        );
        let mut ten = vec![0xff; 9];
        ten.push(0x02);
        assert_eq!(Reader::new(&ten).u64(), Err(DecodeError::VarintOverflow));
        ten[9] = 0x01;
        assert_eq!(Reader::new(&ten).u64(), Ok(u64::MAX));
    }
}
