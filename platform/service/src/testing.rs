//! The config tests every binary runs, written once (feature `testing`): the embedded default
//! round-trips and validates clean, a file setting every key parses and names every key the
//! config has, and a table of one bad value per section is reported key by key and all at once.

use crate::config::ConfigError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::path::Path;

/// One binary's config under test.
pub struct ConfigSuite<C> {
    /// Layers a `--config` file (or none) over the embedded default, without validating.
    pub load: fn(Option<&Path>) -> Result<C, ConfigError>,
    pub validate: fn(&C) -> Result<(), ConfigError>,
    /// One unusable value per section, and the key its problem must name.
    pub bad: &'static [(&'static str, &'static str)],
}

impl<C: Serialize + DeserializeOwned> ConfigSuite<C> {
    /// Loads `text` as the `--config` file over the embedded default.
    pub fn load_text(&self, text: &str) -> C {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("config.toml");
        std::fs::write(&p, text).expect("write config");
        (self.load)(Some(&p)).expect("config parses")
    }

    /// The problem keys `validate` reports for `cfg`, in order.
    pub fn problem_keys(&self, cfg: &C) -> Vec<String> {
        match (self.validate)(cfg) {
            Ok(()) => Vec::new(),
            Err(ConfigError::Invalid(p)) => p.iter().map(|p| p.key.clone()).collect(),
            Err(e) => panic!("not a validation error: {e}"),
        }
    }

    pub fn default_round_trips_and_validates_clean(&self) {
        let c = (self.load)(None).expect("default parses");
        assert_eq!(self.problem_keys(&c), Vec::<String>::new());
        let text = toml::to_string(&c).expect("serializes");
        let again: C = toml::from_str(&text).expect("reparses");
        assert_eq!(toml::to_string(&again).expect("serializes"), text);
    }

    /// `every_key` sets every key of every section to a usable value. Returns the parsed file
    /// for the caller's own spot checks.
    pub fn every_key_parses_and_validates(&self, every_key: &str) -> C {
        let c = self.load_text(every_key);
        assert_eq!(self.problem_keys(&c), Vec::<String>::new());
        // The file names every key the config has: a new key must be added there too.
        let (mut in_file, mut in_config) = (BTreeSet::new(), BTreeSet::new());
        key_paths(
            &toml::from_str(every_key).expect("file is TOML"),
            "",
            &mut in_file,
        );
        key_paths(
            &toml::Table::try_from(&c).expect("config is a table"),
            "",
            &mut in_config,
        );
        assert_eq!(in_file, in_config);
        c
    }

    pub fn each_section_reports_its_own_bad_value(&self) {
        for (text, key) in self.bad {
            assert_eq!(self.problem_keys(&self.load_text(text)), [*key], "{text}");
        }
    }

    /// Returns the one error message, for the caller to check a line of it.
    pub fn a_bad_value_in_every_section_is_reported_at_once(&self) -> String {
        let text: String = self.bad.iter().map(|(t, _)| *t).collect();
        let c = self.load_text(&text);
        let want: Vec<&str> = self.bad.iter().map(|(_, k)| *k).collect();
        assert_eq!(self.problem_keys(&c), want);
        let err = (self.validate)(&c).expect_err("invalid").to_string();
        assert_eq!(err.lines().count(), 1 + self.bad.len(), "{err}");
        err
    }
}

/// Every dotted key path of a TOML table, tables included.
fn key_paths(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (k, v) in table {
        let path = format!("{prefix}{k}");
        if let toml::Value::Table(t) = v {
            key_paths(t, &format!("{path}."), out);
        }
        out.insert(path);
    }
}
