//! The key-encryption key (KEK) and the AES-256-GCM sealing every value uses: version byte,
//! random 96-bit nonce, ciphertext and tag.

use super::{KEY_LEN, KeyError, ks};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;

/// The first byte of every sealed value: its format.
const VERSION: u8 = 1;

/// The key-encryption key.
pub struct Kek(pub(super) LessSafeKey);

impl Kek {
    /// Reads a key file: 64 hex digits (a trailing newline is fine), mode 0600 or stricter.
    pub fn load(path: &Path) -> Result<Kek, KeyError> {
        let bad = |reason: String| KeyError::KekFile {
            path: path.display().to_string(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(bad(format!(
                    "is readable by others (mode {mode:o}); chmod 600 it"
                )));
            }
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let key = parse_hex(text.trim_end())
            .ok_or_else(|| bad("must hold 64 hex digits (openssl rand -hex 32)".into()))?;
        Ok(Kek::from_bytes(&key))
    }

    /// The demo's key file: read if it exists, else generated with mode 0600.
    pub fn load_or_generate(path: &Path) -> Result<Kek, KeyError> {
        if path.exists() {
            return Self::load(path);
        }
        let mut key = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| ks("no randomness"))?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(ks)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        use std::io::Write;
        let mut f = opts.open(path).map_err(|e| KeyError::KekFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        f.write_all(format!("{hex}\n").as_bytes()).map_err(ks)?;
        f.sync_all().map_err(ks)?;
        Ok(Kek::from_bytes(&key))
    }

    pub fn from_bytes(key: &[u8; KEY_LEN]) -> Kek {
        Kek(aead_key(key))
    }
}

fn parse_hex(s: &str) -> Option<[u8; KEY_LEN]> {
    if s.len() != 2 * KEY_LEN || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

pub(super) fn aead_key(key: &[u8; KEY_LEN]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key"))
}

/// `plaintext` sealed: version, a random nonce, ciphertext and tag.
pub(super) fn seal(key: &LessSafeKey, rng: &SystemRandom, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).expect("the system has randomness");
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut body,
    )
    .expect("sealing cannot fail for a sane length");
    out.extend_from_slice(&body);
    out
}

pub(super) fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
    if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
        return Err(KeyError::Open);
    }
    let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().expect("length checked");
    let mut body = sealed[1 + NONCE_LEN..].to_vec();
    let n = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut body,
        )
        .map_err(|_| KeyError::Open)?
        .len();
    body.truncate(n);
    Ok(body)
}
