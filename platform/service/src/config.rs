//! Config files of our binaries: TOML layered over an embedded default ([`load_toml`]), and
//! one validation pass that collects every problem of every section ([`Problems`]) before the
//! binary binds a socket or opens a store.
//!
//! Each section type implements [`Validate`] and pushes what is wrong into a [`Section`],
//! which prefixes the key with the section's path, so a report reads
//! `pricing.road_factor: must be in 1..=5 (got 0)`. A binary's `Config::validate` walks its
//! sections and returns [`ConfigError::Invalid`] with all of them; its `main` exits with
//! [`EX_CONFIG`] through [`or_exit`].

use std::fmt;

/// Exit status for an unusable config file (`EX_CONFIG` in BSD's `sysexits.h`), so a
/// supervisor can tell "fix the file" from a crash.
pub const EX_CONFIG: i32 = 78;

/// A config layer that could not be read or parsed, or a result that does not fit the type.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct LoadError {
    /// The file, or `<embedded default>`.
    pub path: String,
    pub message: String,
}

/// Why a binary cannot start with its config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer could not be read or parsed (unknown keys included).
    #[error("config {path}: {message}")]
    Parse { path: String, message: String },
    /// The config parsed but some values are unusable; all of them are listed.
    #[error("invalid config ({}):\n{}", .0.count(), .0)]
    Invalid(Problems),
}

impl From<LoadError> for ConfigError {
    fn from(e: LoadError) -> Self {
        ConfigError::Parse {
            path: e.path,
            message: e.message,
        }
    }
}

/// One unusable value: its dotted key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path from the file's root, e.g. `dispatch.matching.radius_m`.
    pub key: String,
    /// What is wrong, with the value found, e.g. `must be greater than 0 (got 0)`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found in a config, in the order the sections were checked. Displays one
/// problem per line, indented.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(Vec<Problem>);

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `value`'s checks with keys under `section` (a top-level table of the file).
    pub fn validate(&mut self, section: &str, value: &impl Validate) {
        value.validate(&mut self.section(section));
    }

    /// A handle that pushes problems with keys under `name`.
    pub fn section(&mut self, name: &str) -> Section<'_> {
        Section {
            problems: self,
            prefix: name.to_owned(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// "1 problem", "3 problems".
    pub fn count(&self) -> String {
        match self.0.len() {
            1 => "1 problem".to_owned(),
            n => format!("{n} problems"),
        }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    /// `Ok` when nothing was found, else [`ConfigError::Invalid`] with everything.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when at least one problem was pushed.
    pub fn into_result(self) -> Result<(), ConfigError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(self))
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {p}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Where one section's checks push their problems; keys are relative to the section.
pub struct Section<'a> {
    problems: &'a mut Problems,
    prefix: String,
}

impl Section<'_> {
    /// The full dotted key of `key` in this section, for messages that name another key.
    pub fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    /// Records that `key` (relative to this section) is unusable.
    pub fn push(&mut self, key: &str, message: impl Into<String>) {
        self.problems.0.push(Problem {
            key: format!("{}.{key}", self.prefix),
            message: message.into(),
        });
    }

    /// Records `message()` under `key` unless `ok`.
    pub fn ensure(&mut self, ok: bool, key: &str, message: impl FnOnce() -> String) {
        if !ok {
            self.push(key, message());
        }
    }

    /// A handle for the nested table `name` (e.g. `matching` inside `dispatch`).
    pub fn section(&mut self, name: &str) -> Section<'_> {
        Section {
            prefix: format!("{}.{name}", self.prefix),
            problems: self.problems,
        }
    }

    /// Runs `value`'s checks with keys under the nested table `name`.
    pub fn validate(&mut self, name: &str, value: &impl Validate) {
        value.validate(&mut self.section(name));
    }
}

/// A config section that can tell which of its values are unusable. Implementations push
/// every problem they find (never stop at the first), each under its own key.
pub trait Validate {
    fn validate(&self, section: &mut Section<'_>);
}

/// Validates one section on its own (a library checking the part of the config it was
/// handed), with keys under `section`.
///
/// # Errors
/// [`ConfigError::Invalid`] listing every problem of the section.
pub fn check(section: &str, value: &impl Validate) -> Result<(), ConfigError> {
    let mut problems = Problems::new();
    problems.validate(section, value);
    problems.into_result()
}

/// For a binary's `main`: the value, or the error on stderr (every problem on its own line)
/// and exit with [`EX_CONFIG`]. Called before logging is set up, hence plain stderr.
pub fn or_exit<T>(bin: &str, result: Result<T, ConfigError>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{bin}: {e}");
            std::process::exit(EX_CONFIG)
        }
    }
}

/// `default` (the binary's embedded TOML), then `file` over it if given (see [`merge`]),
/// deserialized into `T`.
///
/// # Errors
/// [`LoadError`] naming the layer that failed.
pub fn load_toml<T: serde::de::DeserializeOwned>(
    default: &str,
    file: Option<&std::path::Path>,
) -> Result<T, LoadError> {
    const DEFAULT: &str = "<embedded default>";
    let fail = |path: &str, e: &dyn fmt::Display| LoadError {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let mut value: toml::Table = toml::from_str(default).map_err(|e| fail(DEFAULT, &e))?;
    let shown = file.map_or(DEFAULT.to_owned(), |p| p.display().to_string());
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| fail(&shown, &e))?;
        merge(
            &mut value,
            toml::from_str(&text).map_err(|e| fail(&shown, &e))?,
        );
    }
    value.try_into().map_err(|e| fail(&shown, &e))
}

/// Lays `overlay` over `base`: tables merge key by key, any other value replaces. So a config
/// file only names the keys it changes.
pub fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Conf {
        a: u32,
        t: T,
    }
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct T {
        x: u32,
        y: u32,
    }

    impl Validate for T {
        fn validate(&self, s: &mut Section<'_>) {
            s.ensure(self.x > 0, "x", || {
                format!("must be greater than 0 (got {})", self.x)
            });
            s.ensure(self.y < 10, "y", || {
                format!("must be below 10 (got {})", self.y)
            });
        }
    }

    #[test]
    fn file_layers_over_the_default_and_errors_name_the_layer() {
        let dir = std::env::temp_dir().join(format!("service-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(&f, "[t]\ny = 9\n").unwrap();
        let c: Conf = load_toml("a = 1\n[t]\nx = 1\ny = 2\n", Some(&f)).unwrap();
        assert_eq!(
            c,
            Conf {
                a: 1,
                t: T { x: 1, y: 9 }
            }
        );
        std::fs::write(&f, "[t\n").unwrap();
        let e = load_toml::<Conf>("a = 1\n[t]\nx = 1\ny = 2\n", Some(&f)).unwrap_err();
        assert_eq!(e.path, f.display().to_string());
        let e = load_toml::<Conf>("a = ", None).unwrap_err();
        assert_eq!(e.path, "<embedded default>");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn overlay_changes_only_the_keys_it_names() {
        let mut base: toml::Table =
            toml::from_str("a = 1\n[t]\nx = 1\ny = 2\n[u]\nz = 3\n").unwrap();
        let overlay: toml::Table = toml::from_str("a = 5\n[t]\ny = 9\nw = 0\n").unwrap();
        merge(&mut base, overlay);
        let want: toml::Table =
            toml::from_str("a = 5\n[t]\nx = 1\ny = 9\nw = 0\n[u]\nz = 3\n").unwrap();
        assert_eq!(base, want);
    }

    #[test]
    fn problems_of_every_section_are_kept_with_their_full_keys() {
        let bad = T { x: 0, y: 12 };
        let mut p = Problems::new();
        p.validate("t", &bad);
        p.section("outer").validate("inner", &bad);
        p.validate("fine", &T { x: 1, y: 1 });
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["t.x", "t.y", "outer.inner.x", "outer.inner.y"]);
        let err = p.into_result().unwrap_err();
        let text = err.to_string();
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "invalid config (4 problems):",
                "  t.x: must be greater than 0 (got 0)",
                "  t.y: must be below 10 (got 12)",
                "  outer.inner.x: must be greater than 0 (got 0)",
                "  outer.inner.y: must be below 10 (got 12)",
            ]
        );
        assert!(check("t", &T { x: 1, y: 1 }).is_ok());
        assert!(matches!(check("t", &bad), Err(ConfigError::Invalid(p)) if p.len() == 2));
    }
}
