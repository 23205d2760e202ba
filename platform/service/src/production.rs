//! Rules a config must pass outside demo mode, beyond its values being usable: no plain HTTP
//! on a public address, and a store directory that is there and writable. The secret rules
//! are in [`crate::secret`]. Each binary decides when they apply (`[demo] enabled = false`)
//! and calls them from its `Config::validate`.

use crate::config::Section;
use std::net::SocketAddr;
use std::path::Path;

/// `listen_key` (relative to `s`) binds `addr`: refused when that is not a loopback address
/// and `tls` is false. `tls_keys` names the keys that turn TLS on, for the message. A loopback
/// listener is fine: only a proxy on the same host reaches it, and that proxy terminates TLS.
pub fn check_public_listener(
    s: &mut Section<'_>,
    listen_key: &str,
    addr: SocketAddr,
    tls: bool,
    tls_keys: &str,
) {
    s.ensure(tls || addr.ip().is_loopback(), listen_key, || {
        format!(
            "{addr} is not a loopback address and TLS is off; set {tls_keys} (PEM files), or \
             listen on 127.0.0.1 behind a proxy that terminates TLS"
        )
    });
}

/// A certificate and key pair of PEM files: both set or both empty (plain), and when set,
/// loadable as a TLS server identity, so a wrong path fails the config check instead of the
/// first bind. Applies in every mode.
pub fn check_tls_files(s: &mut Section<'_>, cert: (&str, &Path), key: (&str, &Path)) {
    let (cert_set, key_set) = (
        !cert.1.as_os_str().is_empty(),
        !key.1.as_os_str().is_empty(),
    );
    if cert_set != key_set {
        let (missing, other) = if cert_set {
            (key.0, cert.0)
        } else {
            (cert.0, key.0)
        };
        s.push(
            missing,
            format!("must be set together with {other}, or both left empty (plain HTTP)"),
        );
    } else if cert_set && let Err(e) = crate::http::tls_acceptor(cert.1, key.1) {
        s.push(
            cert.0,
            format!("{e}; give a readable PEM certificate chain and its key"),
        );
    }
}

/// The store's directory `dir` (under `key`) exists, is a directory and can be written. Demo
/// mode creates it when missing; production does not, so that a mistyped path or an unmounted
/// volume fails here instead of quietly starting with an empty store.
pub fn check_data_dir(s: &mut Section<'_>, key: &str, dir: &Path) {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => s.push(
            key,
            format!(
                "{shown} does not exist; create it, writable by the service's user (systemd: \
                 StateDirectory=; Kubernetes: a volume), or fix the path"
            ),
        ),
        Err(e) => s.push(key, format!("{shown}: {e}")),
        Ok(m) if !m.is_dir() => s.push(key, format!("{shown} is not a directory")),
        Ok(_) => {
            if let Err(e) = probe_write(dir) {
                s.push(
                    key,
                    format!("{shown} is not writable ({e}); give the service's user write access"),
                );
            }
        }
    }
}

/// Creates and removes a file in `dir`: the only test that sees permissions, read-only mounts
/// and ACLs alike.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Problems;

    fn run(f: impl FnOnce(&mut Section<'_>)) -> Vec<String> {
        let mut p = Problems::new();
        f(&mut p.section("http"));
        p.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_public_listener_needs_tls_and_loopback_does_not() {
        let keys = "http.tls_cert_file and http.tls_key_file";
        for (addr, tls, bad) in [
            ("127.0.0.1:8081", false, false),
            ("[::1]:8081", false, false),
            ("0.0.0.0:8081", false, true),
            ("10.1.2.3:8081", false, true),
            ("0.0.0.0:8081", true, false),
        ] {
            let got =
                run(|s| check_public_listener(s, "listen_addr", addr.parse().unwrap(), tls, keys));
            assert_eq!(got.len(), usize::from(bad), "{addr} tls={tls}: {got:?}");
            if bad {
                assert!(got[0].starts_with(&format!("http.listen_addr: {addr} is not a loopback")));
                assert!(got[0].contains(keys));
            }
        }
    }

    #[test]
    fn the_data_dir_must_exist_and_be_writable() {
        let dir = tempfile::tempdir().unwrap();
        assert!(run(|s| check_data_dir(s, "data_dir", dir.path())).is_empty());
        let missing = dir.path().join("missing");
        let got = run(|s| check_data_dir(s, "data_dir", &missing));
        assert!(got[0].contains("does not exist; create it"), "{got:?}");
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let got = run(|s| check_data_dir(s, "data_dir", &file));
        assert!(got[0].ends_with("is not a directory"), "{got:?}");
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        // Root writes anyway; the check is only meaningful for other users.
        if probe_write(&ro).is_err() {
            let got = run(|s| check_data_dir(s, "data_dir", &ro));
            assert!(got[0].contains("is not writable"), "{got:?}");
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}
