//! The trace: one canonical line per event, folded into a fixed-key hash (FNV-1a, 64 bits,
//! the same on every machine and build), with the last lines kept for a failure report.

use std::collections::VecDeque;

/// Lines kept for the failure report.
pub const KEEP: usize = 20;

#[derive(Debug, Clone)]
pub struct Trace {
    hash: u64,
    lines: u64,
    last: VecDeque<String>,
    /// Print every line as it is traced (`sim run --verbose`).
    pub echo: bool,
}

impl Default for Trace {
    fn default() -> Self {
        Self {
            hash: 0xcbf2_9ce4_8422_2325,
            lines: 0,
            last: VecDeque::with_capacity(KEEP),
            echo: false,
        }
    }
}

impl Trace {
    pub fn line(&mut self, line: String) {
        for b in line.as_bytes().iter().chain(b"\n") {
            self.hash ^= u64::from(*b);
            self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.lines += 1;
        if self.echo {
            println!("{line}");
        }
        if self.last.len() == KEEP {
            self.last.pop_front();
        }
        self.last.push_back(line);
    }

    /// Folds a frequent event (a driver's move or ping) into the hash without formatting a
    /// line: its step, time and Debug text's bytes are hashed as a line would be, but it is
    /// not kept among the last lines.
    pub fn fold(&mut self, step: u64, t: i64, ev: &impl std::fmt::Debug) {
        use std::fmt::Write;
        let mut line = String::with_capacity(48);
        let _ = write!(line, "{step} {t} {ev:?}");
        for b in line.as_bytes().iter().chain(b"\n") {
            self.hash ^= u64::from(*b);
            self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.lines += 1;
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub fn last(&self) -> impl Iterator<Item = &String> {
        self.last.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_depends_on_every_line_and_their_order() {
        let h = |lines: &[&str]| {
            let mut t = Trace::default();
            for l in lines {
                t.line((*l).to_owned());
            }
            t.hash()
        };
        assert_eq!(h(&["a", "b"]), h(&["a", "b"]));
        assert_ne!(h(&["a", "b"]), h(&["b", "a"]));
        assert_ne!(h(&["ab"]), h(&["a", "b"]));
    }

    #[test]
    fn only_the_last_lines_are_kept() {
        let mut t = Trace::default();
        for i in 0..30 {
            t.line(i.to_string());
        }
        assert_eq!(t.last().count(), KEEP);
        assert_eq!(t.last().next().map(String::as_str), Some("10"));
    }
}
