//! The gateway's TLS identity: a configured certificate, or a generated dev CA and leaf.
//!
//! Dev mode (empty `cert_path`/`key_path`) writes `ca.pem`, `cert.pem` (leaf, then CA) and
//! `key.pem` into `dev_cert_dir` and reuses them on the next start, so a client that trusts
//! `ca.pem` (or pins the leaf's fingerprint) keeps working across restarts. Delete the directory
//! to get a fresh pair (e.g. after changing `server_name`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{ALPN, GatewayError, QuicConfig};

/// What the server presents, and what clients need to trust it.
pub(super) struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Dev mode: the generated CA clients trust.
    pub ca_pem_path: Option<PathBuf>,
    /// SHA-256 of the leaf certificate (DER), `AB:CD:…` as `openssl x509 -fingerprint -sha256`
    /// prints it.
    pub fingerprint: String,
}

/// SHA-256 of a DER certificate, upper-case hex pairs joined by `:`.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

pub(super) fn load(cfg: &QuicConfig) -> Result<Identity, GatewayError> {
    if !cfg.dev_mode() {
        let (chain, key) = read_pem(&cfg.cert_path, &cfg.key_path)?;
        let fingerprint = fingerprint(&chain[0]);
        return Ok(Identity {
            chain,
            key,
            ca_pem_path: None,
            fingerprint,
        });
    }
    let dir = &cfg.dev_cert_dir;
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    let reused = ca.exists() && cert.exists() && key.exists();
    if !reused {
        generate_dev(dir, &cfg.server_name)?;
    }
    let (chain, key) = read_pem(&cert, &key)?;
    let fingerprint = fingerprint(&chain[0]);
    tracing::info!(
        ca = %ca.display(),
        %fingerprint,
        server_name = %cfg.server_name,
        reused,
        "QUIC gateway in dev mode: self-signed certificate; clients trust the CA file or pin the fingerprint"
    );
    Ok(Identity {
        chain,
        key,
        ca_pem_path: Some(ca),
        fingerprint,
    })
}

fn read_pem(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), GatewayError> {
    let pem_err = |path: &Path, e: rustls::pki_types::pem::Error| {
        GatewayError::Cert(format!("{}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_err(cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(cert, e))?;
    if chain.is_empty() {
        return Err(GatewayError::Cert(format!(
            "{}: no certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, e))?;
    Ok((chain, key))
}

/// A CA (path length 0) and a leaf for `server_name`, localhost and the loopback addresses.
fn generate_dev(dir: &Path, server_name: &str) -> Result<(), GatewayError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let rc = |e: rcgen::Error| GatewayError::Cert(format!("generating the dev certificate: {e}"));

    let ca_key = KeyPair::generate().map_err(rc)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "delivery cell dev CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).map_err(rc)?;

    let mut names = vec![server_name.to_owned()];
    for n in ["localhost", "127.0.0.1", "::1"] {
        if n != server_name {
            names.push(n.to_owned());
        }
    }
    let leaf_key = KeyPair::generate().map_err(rc)?;
    let mut leaf_params = CertificateParams::new(names).map_err(rc)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, server_name);
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).map_err(rc)?;

    let io = |p: &Path, e: std::io::Error| GatewayError::Io(format!("{}", p.display()), e);
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let write = |name: &str, text: String, private: bool| -> Result<(), GatewayError> {
        let path = dir.join(name);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = opts.open(&path).map_err(|e| io(&path, e))?;
        std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| io(&path, e))
    };
    // The key first: a crash between writes leaves no cert.pem without its key.
    write("key.pem", leaf_key.serialize_pem(), true)?;
    write("ca.pem", ca.pem(), false)?;
    write("cert.pem", format!("{}{}", leaf.pem(), ca.pem()), false)
}

/// rustls server settings: TLS 1.3 only (QUIC requires it), ring, our ALPN.
pub(super) fn server_crypto(id: Identity) -> Result<rustls::ServerConfig, GatewayError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(GatewayError::Tls)?
        .with_no_client_auth()
        .with_single_cert(id.chain, id.key)
        .map_err(GatewayError::Tls)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // No 0-RTT: a replayed Hello would be accepted twice.
    tls.max_early_data_size = 0;
    Ok(tls)
}
