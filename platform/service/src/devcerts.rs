//! A development CA and leaf certificates for the HTTPS listeners of a local city (`router
//! dev-certs`) and for tests: generated in-process with rcgen so a fresh machine needs no
//! openssl. Never for production: the CA's key sits next to its certificate.

use crate::tls::TlsError;
use std::path::{Path, PathBuf};

/// The CA's certificate, the file clients trust (`curl --cacert`, `ROUTER_CA`).
pub const CA_FILE: &str = "ca.pem";

/// Where the certificate chain and key of leaf `name` are written.
pub fn leaf_files(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

fn err(e: impl std::fmt::Display) -> TlsError {
    TlsError::new(format!("generating dev certificates: {e}"))
}

fn write(path: &Path, text: &str, private: bool) -> Result<(), TlsError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    std::io::Write::write_all(&mut f, text.as_bytes())
        .map_err(|e| err(format!("{}: {e}", path.display())))
}

/// Writes a CA ([`CA_FILE`]) and, for each name, a leaf it signs ([`leaf_files`]), valid
/// for that name, `localhost`, 127.0.0.1 and ::1, usable by a server and as a client
/// certificate (mutual TLS). Keeps what is there when the CA and every leaf already exist,
/// so clients that trust the CA keep working across restarts; otherwise writes them all anew.
/// Returns whether anything was written.
///
/// # Errors
/// [`TlsError`] when generating or writing fails.
pub fn generate(dir: &Path, names: &[&str]) -> Result<bool, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let complete = dir.join(CA_FILE).exists()
        && names.iter().all(|n| {
            let (c, k) = leaf_files(dir, n);
            c.exists() && k.exists()
        });
    if complete {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;

    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "delivery dev CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).map_err(err)?;

    for name in names {
        let mut sans = vec![(*name).to_owned()];
        for n in ["localhost", "127.0.0.1", "::1"] {
            if n != *name {
                sans.push(n.to_owned());
            }
        }
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(sans).map_err(err)?;
        params.distinguished_name.push(DnType::CommonName, *name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let leaf = params.signed_by(&key, &ca, &ca_key).map_err(err)?;
        let (cert_file, key_file) = leaf_files(dir, name);
        // The key first: a crash between writes leaves no certificate without its key.
        write(&key_file, &key.serialize_pem(), true)?;
        write(&cert_file, &format!("{}{}", leaf.pem(), ca.pem()), false)?;
    }
    write(&dir.join(CA_FILE), &ca.pem(), false)?;
    Ok(true)
}
