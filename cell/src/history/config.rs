//! `[history]`: recording delivery paths, their encryption key files and their retention.

use serde::{Deserialize, Serialize};
use service::config::{Section, Validate};
use std::path::{Path, PathBuf};

/// Bounds of `segment_ms`: at least a few pings per segment, at most the crash loss the issue
/// allows to grow to a few minutes.
pub const SEGMENT_MS_RANGE: std::ops::RangeInclusive<u64> = 1_000..=600_000;
/// Bounds of `retention_days`.
pub const RETENTION_DAYS_RANGE: std::ops::RangeInclusive<u32> = 1..=3_650;
/// Bounds of `purge_interval_ms`: from a minute (tests of a shorter retention) to a day.
pub const PURGE_INTERVAL_MS_RANGE: std::ops::RangeInclusive<u64> = 60_000..=86_400_000;
/// Bounds of the batch sizes (segments per flush transaction, keys per purge transaction):
/// one transaction stays far below FoundationDB's 10 MB.
pub const BATCH_RANGE: std::ops::RangeInclusive<usize> = 1..=10_000;

/// Where the demo's generated key-encryption key goes, in the data directory.
pub const DEMO_KEK_FILE: &str = "history.kek";
/// The key store's file name, in the data directory unless `key_store_file` says otherwise.
pub const KEY_STORE_FILE: &str = "history-keys.redb";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Record the assigned driver's accepted pings per delivery.
    pub enabled: bool,
    /// Active paths are sealed and written this often: what a crash can lose of one.
    pub segment_ms: u64,
    /// Days a path is kept (whole UTC days after the day it started).
    pub retention_days: u32,
    /// How often the purge looks for expired days.
    pub purge_interval_ms: u64,
    /// Most segments written in one store transaction (group commit).
    pub flush_batch_segments: usize,
    /// Most keys cleared in one purge transaction.
    pub purge_batch_keys: usize,
    /// The key-encryption key: a file of 64 hex digits, mode 0600. Empty in demo mode: one is
    /// generated in the data directory. Outside demo mode it must be set.
    pub kek_file: PathBuf,
    /// The key store (wrapped day keys). Empty: `history-keys.redb` in the data directory. Keep
    /// it out of the data store's backups, so destroying a key reaches every backup.
    pub key_store_file: PathBuf,
    /// The version of `kek_file` (0: the first key). A new file with a higher version starts a
    /// rotation: new data keys are wrapped by it, a background job rewraps the others.
    pub kek_version: u32,
    /// Earlier key-encryption keys, `"<version>:<path>"`, still needed to unwrap keys during
    /// a rotation; drop one once the log reports its version retired.
    pub previous_kek_files: Vec<String>,
    /// Keys rewrapped per page of the rotation job (ten pages a second at most).
    pub rewrap_batch_keys: usize,
}

/// One of `previous_kek_files`: its version and file.
pub fn parse_previous(entry: &str) -> Option<(u32, PathBuf)> {
    let (v, path) = entry.split_once(':')?;
    let v = v.trim().parse().ok()?;
    (!path.is_empty()).then(|| (v, PathBuf::from(path)))
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            segment_ms: 60_000,
            retention_days: 30,
            purge_interval_ms: 3_600_000,
            flush_batch_segments: 500,
            purge_batch_keys: 1_000,
            kek_file: PathBuf::new(),
            key_store_file: PathBuf::new(),
            kek_version: 0,
            previous_kek_files: Vec::new(),
            rewrap_batch_keys: 1_000,
        }
    }
}

impl HistoryConfig {
    /// The key-encryption key file in effect: the configured one, or the demo's in `data_dir`.
    pub fn kek_path(&self, data_dir: &Path) -> PathBuf {
        if self.kek_file.as_os_str().is_empty() {
            data_dir.join(DEMO_KEK_FILE)
        } else {
            self.kek_file.clone()
        }
    }

    /// The key store file in effect.
    pub fn key_store_path(&self, data_dir: &Path) -> PathBuf {
        if self.key_store_file.as_os_str().is_empty() {
            data_dir.join(KEY_STORE_FILE)
        } else {
            self.key_store_file.clone()
        }
    }

    /// Outside demo mode: the key file is set, readable, a key, and only its owner's.
    /// Checked with history off too: customers' personal data is sealed under the same key.
    pub fn production_rules(&self, s: &mut Section<'_>) {
        if self.kek_file.as_os_str().is_empty() {
            s.push(
                "kek_file",
                "is empty; outside demo mode location history and customers' addresses are \
                 encrypted under a key from a file: write 32 random bytes as 64 hex digits to a \
                 file of mode 0600 (openssl rand -hex 32) and set history.kek_file",
            );
            return;
        }
        if let Err(e) = crate::envelope::Kek::load(&self.kek_file) {
            s.push("kek_file", e.to_string());
        }
        for (_, path) in self
            .previous_kek_files
            .iter()
            .filter_map(|e| parse_previous(e))
        {
            if let Err(e) = crate::envelope::Kek::load(&path) {
                s.push("previous_kek_files", e.to_string());
            }
        }
    }
}

impl Validate for HistoryConfig {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(
            SEGMENT_MS_RANGE.contains(&self.segment_ms),
            "segment_ms",
            || {
                format!(
                    "must be {}..={} (got {})",
                    SEGMENT_MS_RANGE.start(),
                    SEGMENT_MS_RANGE.end(),
                    self.segment_ms
                )
            },
        );
        s.ensure(
            RETENTION_DAYS_RANGE.contains(&self.retention_days),
            "retention_days",
            || {
                format!(
                    "must be {}..={} (got {})",
                    RETENTION_DAYS_RANGE.start(),
                    RETENTION_DAYS_RANGE.end(),
                    self.retention_days
                )
            },
        );
        s.ensure(
            PURGE_INTERVAL_MS_RANGE.contains(&self.purge_interval_ms),
            "purge_interval_ms",
            || {
                format!(
                    "must be {}..={} (got {})",
                    PURGE_INTERVAL_MS_RANGE.start(),
                    PURGE_INTERVAL_MS_RANGE.end(),
                    self.purge_interval_ms
                )
            },
        );
        for entry in &self.previous_kek_files {
            match parse_previous(entry) {
                Some((v, _)) if v >= self.kek_version => s.push(
                    "previous_kek_files",
                    format!(
                        "{entry:?}: an earlier key's version must be below kek_version = {}",
                        self.kek_version
                    ),
                ),
                Some(_) => {}
                None => s.push(
                    "previous_kek_files",
                    format!("{entry:?} must be \"<version>:<path>\""),
                ),
            }
        }
        for (key, v) in [
            ("flush_batch_segments", self.flush_batch_segments),
            ("purge_batch_keys", self.purge_batch_keys),
            ("rewrap_batch_keys", self.rewrap_batch_keys),
        ] {
            s.ensure(BATCH_RANGE.contains(&v), key, || {
                format!(
                    "must be {}..={} (got {v})",
                    BATCH_RANGE.start(),
                    BATCH_RANGE.end()
                )
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_keys_are_a_version_and_a_path() {
        assert_eq!(
            parse_previous("0:/k/old.kek"),
            Some((0, PathBuf::from("/k/old.kek")))
        );
        assert_eq!(parse_previous("old.kek"), None);
        assert_eq!(parse_previous("x:/k"), None);
        assert_eq!(parse_previous("1:"), None);
    }
}
