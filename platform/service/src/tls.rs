//! TLS 1.3 configuration for both sides of our HTTP connections: the listener's server
//! config (certificate reloaded from disk when its files change, client certificates required
//! when a client CA is given) and the client config a router uses towards its cells (the
//! cells' CA as the only root, optionally its own certificate for mutual TLS).
//!
//! Only TLS 1.3: every client we serve (our apps, browsers, curl) speaks it, and its handshake
//! has no negotiable downgrade left to attack.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub use tokio_rustls::TlsAcceptor;

/// How often a handshake looks at the certificate files' modification times. Renewal tools
/// (certbot, cert-manager) replace the files minutes to days before the old one expires, so a
/// few seconds' delay costs nothing; checking on every handshake would cost two `stat`s each.
pub const RELOAD_CHECK_EVERY: Duration = Duration::from_secs(5);

/// A certificate, key or CA that cannot be loaded, or a pair rustls refuses.
#[derive(Debug, thiserror::Error)]
#[error("tls: {0}")]
pub struct TlsError(String);

impl TlsError {
    pub(crate) fn new(msg: String) -> Self {
        Self(msg)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_chain(file: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError(format!("{}: {e}", file.display())))?;
    if chain.is_empty() {
        return Err(TlsError(format!(
            "{}: no certificate in it",
            file.display()
        )));
    }
    Ok(chain)
}

fn read_key(file: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(file).map_err(|e| TlsError(format!("{}: {e}", file.display())))
}

fn read_roots(ca_file: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_chain(ca_file)? {
        roots
            .add(cert)
            .map_err(|e| TlsError(format!("{}: {e}", ca_file.display())))?;
    }
    Ok(roots)
}

fn load_certified(cert_file: &Path, key_file: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = read_chain(cert_file)?;
    let key = provider()
        .key_provider
        .load_private_key(read_key(key_file)?)
        .map_err(|e| TlsError(format!("{}: {e}", key_file.display())))?;
    let ck = CertifiedKey::new(chain, key);
    // A renewal caught between writing the certificate and the key must not pair them.
    ck.keys_match().map_err(|e| {
        TlsError(format!(
            "{} does not belong to {}: {e}",
            key_file.display(),
            cert_file.display()
        ))
    })?;
    Ok(Arc::new(ck))
}

/// What identifies a version of a file without reading it.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(file: &Path) -> Stamp {
    let m = std::fs::metadata(file).ok()?;
    Some((m.modified().ok()?, m.len()))
}

struct Loaded {
    key: Arc<CertifiedKey>,
    stamps: [Stamp; 2],
    checked: Instant,
}

/// The server certificate, re-read from its files when they change (checked at most every
/// `check_every`, during a handshake). Connections already open keep the certificate they
/// were made with; a pair that fails to load (half-written, mismatched) is logged and the
/// previous one kept, and tried again at the next check.
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    check_every: Duration,
    loaded: Mutex<Loaded>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the pair now.
    ///
    /// # Errors
    /// [`TlsError`] naming the file that could not be read, or a key that is not the
    /// certificate's.
    pub fn new(cert_file: &Path, key_file: &Path, check_every: Duration) -> Result<Self, TlsError> {
        let stamps = [stamp(cert_file), stamp(key_file)];
        let key = load_certified(cert_file, key_file)?;
        Ok(Self {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            check_every,
            loaded: Mutex::new(Loaded {
                key,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The certificate new handshakes present, reloading it first if the files changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut l = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if l.checked.elapsed() >= self.check_every {
            l.checked = Instant::now();
            let stamps = [stamp(&self.cert_file), stamp(&self.key_file)];
            if stamps != l.stamps {
                match load_certified(&self.cert_file, &self.key_file) {
                    Ok(key) => {
                        l.key = key;
                        l.stamps = stamps;
                        tracing::info!(cert = %self.cert_file.display(), "TLS certificate reloaded");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS certificate not reloaded; keeping the previous one")
                    }
                }
            }
        }
        l.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A TLS 1.3 server config presenting the certificate chain (PEM, leaf first) and key in
/// these files, reloaded when they change; with `client_ca_file`, every client must present
/// a certificate that CA signed (mutual TLS).
///
/// # Errors
/// [`TlsError`] naming the file that could not be read or parsed.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: Option<&Path>,
    check_every: Duration,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError(e.to_string()))?;
    let builder = match client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(read_roots(ca)?),
                provider(),
            )
            .build()
            .map_err(|e| TlsError(format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let resolver = ReloadingCert::new(cert_file, key_file, check_every)?;
    let mut server = builder.with_cert_resolver(Arc::new(resolver));
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

/// [`server_config`] without client certificates, checked every [`RELOAD_CHECK_EVERY`].
///
/// # Errors
/// [`TlsError`] naming the file that could not be read or parsed.
pub fn tls_acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, TlsError> {
    server_config(cert_file, key_file, None, RELOAD_CHECK_EVERY).map(TlsAcceptor::from)
}

/// A TLS 1.3 client config trusting only the CA(s) in `ca_file` (PEM), presenting
/// `identity` (certificate chain and key files) when given, for mutual TLS.
///
/// # Errors
/// [`TlsError`] naming the file that could not be read or parsed.
pub fn client_config(
    ca_file: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError(e.to_string()))?
        .with_root_certificates(read_roots(ca_file)?);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => builder
            .with_client_auth_cert(read_chain(cert)?, read_key(key)?)
            .map_err(|e| TlsError(format!("{}: {e}", cert.display()))),
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
