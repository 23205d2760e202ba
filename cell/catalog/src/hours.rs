//! Weekly operating hours, written in the restaurant's local wall-clock time.
//!
//! An [`Interval`] belongs to the weekday it opens on. `close > open` is a same-day interval;
//! `close < open` runs past midnight into the next day (Friday 18:00–02:00 is open until
//! Saturday 02:00); `00:00–24:00` is the whole day. Wall-clock semantics make DST do what a
//! restaurant expects: "11:00–22:00" means eleven to ten on the local clock, whatever the UTC
//! offset is that day.

use crate::error::ValidationError;
use chrono::{Datelike, TimeZone, Timelike};
use domain::UnixMs;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

const MINUTES_PER_DAY: u16 = 24 * 60;
/// More intervals than this on one day is a data error, not a schedule.
pub const MAX_INTERVALS_PER_DAY: usize = 8;

/// Minutes since local midnight, 0..=1440 (1440 = "24:00", only valid as a closing time).
/// Serialized as "HH:MM".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

impl ClockTime {
    /// `None` past 24:00.
    pub fn new(hour: u16, minute: u16) -> Option<ClockTime> {
        let m = hour.checked_mul(60)?.checked_add(minute)?;
        (minute < 60 && m <= MINUTES_PER_DAY).then_some(ClockTime(m))
    }

    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for ClockTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let parsed = s.split_once(':').and_then(|(h, m)| {
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            ClockTime::new(h.parse().ok()?, m.parse().ok()?)
        });
        parsed.ok_or_else(|| serde::de::Error::custom(format!("not a HH:MM time: {s:?}")))
    }
}

/// One opening interval; see the module doc for past-midnight intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub open: ClockTime,
    pub close: ClockTime,
}

impl Interval {
    /// From "HH:MM"-style hours and minutes; panics on an invalid time (for literals and the
    /// generator, whose inputs are constants).
    pub fn hm(open: (u16, u16), close: (u16, u16)) -> Interval {
        Interval {
            open: ClockTime::new(open.0, open.1).expect("valid opening time"),
            close: ClockTime::new(close.0, close.1).expect("valid closing time"),
        }
    }

    /// The whole day, 00:00–24:00.
    pub fn all_day() -> Interval {
        Interval::hm((0, 0), (24, 0))
    }
}

/// Opening intervals per weekday (local time). A missing day means closed that day.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WeeklyHours {
    #[serde(default)]
    pub mon: Vec<Interval>,
    #[serde(default)]
    pub tue: Vec<Interval>,
    #[serde(default)]
    pub wed: Vec<Interval>,
    #[serde(default)]
    pub thu: Vec<Interval>,
    #[serde(default)]
    pub fri: Vec<Interval>,
    #[serde(default)]
    pub sat: Vec<Interval>,
    #[serde(default)]
    pub sun: Vec<Interval>,
}

impl WeeklyHours {
    /// The same intervals every day.
    pub fn every_day(intervals: &[Interval]) -> WeeklyHours {
        let mut h = WeeklyHours::default();
        for d in 0..7 {
            *h.day_mut(d) = intervals.to_vec();
        }
        h
    }

    /// Intervals of weekday `d` (0 = Monday … 6 = Sunday).
    pub fn day(&self, d: u8) -> &[Interval] {
        match d % 7 {
            0 => &self.mon,
            1 => &self.tue,
            2 => &self.wed,
            3 => &self.thu,
            4 => &self.fri,
            5 => &self.sat,
            _ => &self.sun,
        }
    }

    pub fn day_mut(&mut self, d: u8) -> &mut Vec<Interval> {
        match d % 7 {
            0 => &mut self.mon,
            1 => &mut self.tue,
            2 => &mut self.wed,
            3 => &mut self.thu,
            4 => &mut self.fri,
            5 => &mut self.sat,
            _ => &mut self.sun,
        }
    }

    /// Open at local weekday `d` (0 = Monday), minute of day `minute` (0..1440)?
    pub fn is_open_local(&self, d: u8, minute: u16) -> bool {
        let pairs = |d: u8| self.day(d).iter().map(|i| (i.open.0, i.close.0));
        open_at(pairs(d), pairs(d + 6), minute)
    }

    /// Open at `now` in time zone `tz`?
    pub fn is_open_at(&self, tz: chrono_tz::Tz, now: UnixMs) -> bool {
        let (d, m) = local_day_minute(tz, now);
        self.is_open_local(d, m)
    }

    pub(crate) fn validate(&self) -> Result<(), ValidationError> {
        for d in 0..7u8 {
            let day = self.day(d);
            if day.len() > MAX_INTERVALS_PER_DAY {
                return Err(ValidationError::new(format!(
                    "more than {MAX_INTERVALS_PER_DAY} intervals on one day"
                )));
            }
            for i in day {
                if i.open.0 >= MINUTES_PER_DAY || i.open == i.close {
                    return Err(ValidationError::new(format!(
                        "interval {}-{} is empty or opens at 24:00",
                        i.open, i.close
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The one definition of "open": an interval of `today` covers `m` (to midnight if it runs
/// past it), or one of `yesterday` runs past midnight beyond `m`. Intervals are
/// (open, close) minutes.
fn open_at(
    today: impl IntoIterator<Item = (u16, u16)>,
    yesterday: impl IntoIterator<Item = (u16, u16)>,
    m: u16,
) -> bool {
    let today = today.into_iter().any(|(open, close)| {
        if close < open {
            m >= open
        } else {
            m >= open && m < close
        }
    });
    today
        || yesterday
            .into_iter()
            .any(|(open, close)| close < open && m < close)
}

/// Up to two intervals per weekday inline (almost every restaurant has one or two), so the
/// search loop checks hours from the row it is already scanning instead of chasing pointers to
/// the listing. `(0, 0)` marks an unused slot: validation forbids `open == close`, and such
/// an interval never matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompactWeek {
    days: [[(u16, u16); 2]; 7],
}

impl CompactWeek {
    /// `None` when a day has more than two intervals.
    pub fn new(h: &WeeklyHours) -> Option<CompactWeek> {
        let mut days = [[(0, 0); 2]; 7];
        for (d, slots) in days.iter_mut().enumerate() {
            let day = h.day(d as u8);
            if day.len() > 2 {
                return None;
            }
            for (slot, i) in slots.iter_mut().zip(day) {
                *slot = (i.open.0, i.close.0);
            }
        }
        Some(CompactWeek { days })
    }

    #[inline]
    pub fn is_open_local(&self, d: u8, minute: u16) -> bool {
        let d = usize::from(d % 7);
        open_at(self.days[d], self.days[(d + 6) % 7], minute)
    }
}

/// Local weekday (0 = Monday) and minute of day at `now` in `tz`. UTC → local is always
/// unambiguous, DST included; timestamps beyond chrono's range clamp to the epoch.
pub fn local_day_minute(tz: chrono_tz::Tz, now: UnixMs) -> (u8, u16) {
    let utc = chrono::DateTime::from_timestamp_millis(now.0).unwrap_or_default();
    let local = tz.from_utc_datetime(&utc.naive_utc());
    (
        local.weekday().num_days_from_monday() as u8,
        (local.hour() * 60 + local.minute()) as u16,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Europe};

    /// `y-m-d h:m` UTC as UnixMs.
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> UnixMs {
        let t = chrono::NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap();
        UnixMs(t.and_utc().timestamp_millis())
    }

    #[test]
    fn same_day_interval_is_half_open() {
        let h = WeeklyHours::every_day(&[Interval::hm((11, 0), (22, 0))]);
        assert!(!h.is_open_local(0, 10 * 60 + 59));
        assert!(h.is_open_local(0, 11 * 60));
        assert!(h.is_open_local(0, 21 * 60 + 59));
        assert!(!h.is_open_local(0, 22 * 60));
    }

    #[test]
    fn past_midnight_spills_into_next_day_only() {
        let mut h = WeeklyHours {
            fri: vec![Interval::hm((18, 0), (2, 0))],
            ..Default::default()
        };
        assert!(h.is_open_local(4, 23 * 60)); // Friday 23:00
        assert!(h.is_open_local(5, 60)); // Saturday 01:00
        assert!(!h.is_open_local(5, 2 * 60)); // Saturday 02:00: closed
        assert!(!h.is_open_local(4, 60)); // Friday 01:00: Thursday had no late shift
        assert!(!h.is_open_local(5, 19 * 60)); // Saturday evening: no interval
        // Sunday's late shift spills into Monday (weekday wrap).
        h.sun = vec![Interval::hm((20, 0), (1, 30))];
        assert!(h.is_open_local(0, 60));
        assert!(!h.is_open_local(0, 90));
    }

    #[test]
    fn all_day_and_split_shifts() {
        let h = WeeklyHours::every_day(&[Interval::all_day()]);
        assert!(h.is_open_local(3, 0) && h.is_open_local(3, 1439));
        let h = WeeklyHours::every_day(&[
            Interval::hm((11, 30), (14, 30)),
            Interval::hm((17, 30), (22, 0)),
        ]);
        assert!(h.is_open_local(2, 12 * 60));
        assert!(!h.is_open_local(2, 15 * 60));
        assert!(h.is_open_local(2, 18 * 60));
    }

    #[test]
    fn hours_are_read_in_the_restaurant_time_zone() {
        let h = WeeklyHours::every_day(&[Interval::hm((11, 0), (22, 0))]);
        // 2026-07-15 (Wednesday) 10:30 UTC = 12:30 in Berlin (CEST), 06:30 in New York (EDT).
        let now = utc(2026, 7, 15, 10, 30);
        assert!(h.is_open_at(Europe::Berlin, now));
        assert!(!h.is_open_at(America::New_York, now));
        assert_eq!(local_day_minute(Europe::Berlin, now), (2, 12 * 60 + 30));
    }

    #[test]
    fn dst_changes_keep_wall_clock_hours() {
        let h = WeeklyHours::every_day(&[Interval::hm((11, 0), (22, 0))]);
        // New York: 11:00 local is 16:00 UTC in winter (EST) and 15:00 UTC in summer (EDT).
        // 2026-03-08 is the spring-forward Sunday.
        assert!(!h.is_open_at(America::New_York, utc(2026, 3, 7, 15, 30)));
        assert!(h.is_open_at(America::New_York, utc(2026, 3, 7, 16, 0)));
        assert!(h.is_open_at(America::New_York, utc(2026, 3, 8, 15, 0)));
        assert!(!h.is_open_at(America::New_York, utc(2026, 3, 8, 14, 59)));
        // The skipped hour: 07:00 UTC on 2026-03-08 is 03:00 EDT (02:xx never happens).
        assert_eq!(
            local_day_minute(America::New_York, utc(2026, 3, 8, 7, 0)),
            (6, 3 * 60)
        );
        // Fall back (2026-11-01): 01:30 local happens twice; both are inside a 01:00–02:00 shift.
        let late = WeeklyHours {
            sun: vec![Interval::hm((1, 0), (2, 0))],
            ..Default::default()
        };
        assert!(late.is_open_at(America::New_York, utc(2026, 11, 1, 5, 30))); // 01:30 EDT
        assert!(late.is_open_at(America::New_York, utc(2026, 11, 1, 6, 30))); // 01:30 EST
        assert!(!late.is_open_at(America::New_York, utc(2026, 11, 1, 7, 0))); // 02:00 EST
    }

    #[test]
    fn past_midnight_across_a_dst_change() {
        // Saturday 22:00 – 03:00, Berlin, the night clocks go forward (2026-03-29 02:00 → 03:00).
        let h = WeeklyHours {
            sat: vec![Interval::hm((22, 0), (3, 0))],
            ..Default::default()
        };
        // 00:30 UTC = 01:30 CET: open. 01:00 UTC = 03:00 CEST: closed (the night was shorter).
        assert!(h.is_open_at(Europe::Berlin, utc(2026, 3, 29, 0, 30)));
        assert!(!h.is_open_at(Europe::Berlin, utc(2026, 3, 29, 1, 0)));
    }

    proptest::proptest! {
        #[test]
        fn compact_week_agrees_with_weekly_hours(
            raw in proptest::collection::vec(
                proptest::collection::vec((0u16..1440, 1u16..=1440), 0..3), 7),
            d in 0u8..7,
            m in 0u16..1440,
        ) {
            let mut h = WeeklyHours::default();
            for (day, ivs) in raw.iter().enumerate() {
                *h.day_mut(day as u8) = ivs
                    .iter()
                    .filter(|(o, c)| o != c)
                    .map(|&(o, c)| Interval { open: ClockTime(o), close: ClockTime(c) })
                    .collect();
            }
            let c = CompactWeek::new(&h).unwrap();
            proptest::prop_assert_eq!(c.is_open_local(d, m), h.is_open_local(d, m));
        }
    }

    #[test]
    fn serde_uses_hh_mm() {
        let h = WeeklyHours {
            fri: vec![Interval::hm((18, 0), (2, 0))],
            sun: vec![Interval::all_day()],
            ..Default::default()
        };
        let json = serde_json::to_string(&h).unwrap();
        assert!(
            json.contains(r#"{"open":"18:00","close":"02:00"}"#),
            "{json}"
        );
        assert!(json.contains(r#""close":"24:00""#));
        assert_eq!(serde_json::from_str::<WeeklyHours>(&json).unwrap(), h);
        for bad in ["\"24:01\"", "\"7:00\"", "\"12:60\"", "\"noon\""] {
            assert!(serde_json::from_str::<ClockTime>(bad).is_err(), "{bad}");
        }
        let empty = WeeklyHours::every_day(&[Interval::hm((9, 0), (9, 0))]);
        assert!(empty.validate().is_err());
    }
}
