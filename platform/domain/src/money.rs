//! Money is integer cents, always. There is no float anywhere money is computed.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Mul, Sub};

/// An amount in cents (of the cell's currency). Signed so refunds and adjustments are
/// representable; arithmetic is checked where overflow could come from input.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Cents(pub i64);

impl Cents {
    pub const ZERO: Cents = Cents(0);

    pub fn checked_add(self, rhs: Cents) -> Option<Cents> {
        self.0.checked_add(rhs.0).map(Cents)
    }

    pub fn checked_mul(self, n: i64) -> Option<Cents> {
        self.0.checked_mul(n).map(Cents)
    }

    /// `self × basis_points / 10_000`, rounded half up: used for tax (825 bp = 8.25%).
    pub fn apply_basis_points(self, basis_points: u32) -> Cents {
        let product = i128::from(self.0) * i128::from(basis_points);
        let rounded = (product + 5_000).div_euclid(10_000);
        Cents(i64::try_from(rounded).unwrap_or(i64::MAX))
    }
}

impl Add for Cents {
    type Output = Cents;
    fn add(self, rhs: Cents) -> Cents {
        Cents(self.0 + rhs.0)
    }
}

impl AddAssign for Cents {
    fn add_assign(&mut self, rhs: Cents) {
        self.0 += rhs.0;
    }
}

impl Sub for Cents {
    type Output = Cents;
    fn sub(self, rhs: Cents) -> Cents {
        Cents(self.0 - rhs.0)
    }
}

impl Mul<i64> for Cents {
    type Output = Cents;
    fn mul(self, rhs: i64) -> Cents {
        Cents(self.0 * rhs)
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tax_rounds_half_up() {
        assert_eq!(Cents(1000).apply_basis_points(825), Cents(83)); // 82.5 -> 83
        assert_eq!(Cents(999).apply_basis_points(825), Cents(82)); // 82.4175 -> 82
        assert_eq!(Cents(0).apply_basis_points(825), Cents(0));
    }

    #[test]
    fn displays_as_decimal() {
        assert_eq!(Cents(2850).to_string(), "28.50");
        assert_eq!(Cents(-5).to_string(), "-0.05");
    }
}
