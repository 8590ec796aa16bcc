//! Connection secrets at rest: XChaCha20-Poly1305 with a key from `ROLLCALL_SECRET_KEY`,
//! bound to the connection it belongs to (district and connection ids as associated data),
//! so a sealed secret copied onto another row does not open. Keys and secrets never reach
//! a log: their Debug output is redacted.

use crate::config::Config;
use anyhow::{Context, Result, bail};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::io::Write;
use std::sync::Once;
use uuid::Uuid;

const VERSION: u8 = 1;
const NONCE: usize = 24;
const KEY_FILE: &str = "secret.key";

pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Associated data: which connection a secret belongs to.
fn aad(district_id: Uuid, connection_id: Uuid) -> Vec<u8> {
    let mut v = Vec::with_capacity(32);
    v.extend_from_slice(district_id.as_bytes());
    v.extend_from_slice(connection_id.as_bytes());
    v
}

impl SecretKey {
    /// 32 bytes as base64 (standard or URL-safe, padded or not) or as 64 hex digits.
    pub fn parse(text: &str) -> Result<SecretKey> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::STANDARD_NO_PAD,
                &base64::engine::general_purpose::URL_SAFE,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ]
            .iter()
            .find_map(|e| e.decode(text).ok())
        };
        match bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
            Some(key) => Ok(SecretKey(key)),
            None => bail!(
                "ROLLCALL_SECRET_KEY must be 32 bytes, as base64 or 64 hex digits (e.g. `openssl rand -base64 32`)"
            ),
        }
    }

    /// The key that fingerprints passwords given in feeds (see [`FeedPasswordKey`]): derived
    /// from this one, so one installation secret serves both purposes without the two uses
    /// ever sharing a key.
    pub fn feed_password_key(&self) -> FeedPasswordKey {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(b"rollcall feed password fingerprint v1");
        FeedPasswordKey(mac.finalize().into_bytes().into())
    }

    /// The configured key; without one, a key generated once into the data directory
    /// (a warning says so).
    pub fn from_config(config: &Config) -> Result<SecretKey> {
        if let Some(text) = &config.secret_key {
            return SecretKey::parse(&text.0);
        }
        static WARN: Once = Once::new();
        let path = config.data_dir.join(KEY_FILE);
        WARN.call_once(|| {
            tracing::warn!(
                path = %path.display(),
                "ROLLCALL_SECRET_KEY is not set: roster sync secrets are encrypted with a key generated into the data directory; set ROLLCALL_SECRET_KEY in production"
            )
        });
        if let Ok(text) = std::fs::read_to_string(&path) {
            return SecretKey::parse(&text);
        }
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let text = base64::engine::general_purpose::STANDARD.encode(key);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        match opts.open(&path) {
            Ok(mut f) => {
                f.write_all(text.as_bytes())?;
                Ok(SecretKey(key))
            }
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                SecretKey::parse(&std::fs::read_to_string(&path)?)
            }
            Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
        }
    }

    pub fn seal(&self, secret: &str, district_id: Uuid, connection_id: Uuid) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = aad(district_id, connection_id);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail");
        let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(
        &self,
        sealed: &[u8],
        district_id: Uuid,
        connection_id: Uuid,
    ) -> Result<SecretString> {
        if sealed.len() < 1 + NONCE || sealed[0] != VERSION {
            bail!("the stored secret is not in a known format");
        }
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let aad = aad(district_id, connection_id);
        let plain = cipher
            .decrypt(
                XNonce::from_slice(&sealed[1..1 + NONCE]),
                Payload {
                    msg: &sealed[1 + NONCE..],
                    aad: &aad,
                },
            )
            .map_err(|_| {
                anyhow::anyhow!(
                    "the stored secret cannot be decrypted (was ROLLCALL_SECRET_KEY changed?); enter the secret again"
                )
            })?;
        let text = String::from_utf8(plain).context("the stored secret is not text")?;
        Ok(SecretString::from(text))
    }
}

type HmacSha256 = Hmac<Sha256>;

/// Fingerprints of passwords given in feeds (SPEC §4, "Passwords in files"): HMAC-SHA256 of
/// the user's GUID and the password, keyed with a key derived from the installation's
/// [`SecretKey`] (which is not in the database). Stored as `users.feed_password_mac`, it lets
/// a run tell "the same password as last time" (nothing to do) from a new one without an
/// argon2 verification per row, and without anything in the database that a stolen dump
/// could test guesses against.
#[derive(Clone)]
pub struct FeedPasswordKey([u8; 32]);

impl std::fmt::Debug for FeedPasswordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FeedPasswordKey(<redacted>)")
    }
}

impl FeedPasswordKey {
    /// For runs whose rows never carry a password (an undo puts back values from the audit
    /// log, which holds none): nothing is ever fingerprinted with it.
    pub fn unused() -> FeedPasswordKey {
        FeedPasswordKey([0; 32])
    }

    /// The fingerprint of `password` given for user `user_guid` (16 bytes of GUID, then the
    /// password: unambiguous).
    pub fn fingerprint(&self, user_guid: Uuid, password: &str) -> [u8; 32] {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(user_guid.as_bytes());
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// For call sites that only need to hand a secret on.
pub fn expose(s: &SecretString) -> &str {
    s.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let key = SecretKey::parse(&"ab".repeat(32)).unwrap();
        let (d, c) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = key.seal("s3cret-value", d, c);
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(expose(&key.open(&sealed, d, c).unwrap()), "s3cret-value");
        assert!(
            key.open(&sealed, d, Uuid::new_v4()).is_err(),
            "bound to its row"
        );
        let other =
            SecretKey::parse(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap();
        assert!(other.open(&sealed, d, c).is_err());
        assert!(SecretKey::parse("short").is_err());
        assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
    }

    #[test]
    fn feed_password_fingerprints_depend_on_key_user_and_password() {
        let key = SecretKey::parse(&"ab".repeat(32))
            .unwrap()
            .feed_password_key();
        let other = SecretKey::parse(&"cd".repeat(32))
            .unwrap()
            .feed_password_key();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let fp = key.fingerprint(a, "Summer2026!");
        assert_eq!(fp, key.fingerprint(a, "Summer2026!"), "stable");
        assert_ne!(fp, key.fingerprint(a, "Summer2026?"));
        assert_ne!(fp, key.fingerprint(b, "Summer2026!"), "bound to the user");
        assert_ne!(fp, other.fingerprint(a, "Summer2026!"), "bound to the key");
        assert_eq!(format!("{key:?}"), "FeedPasswordKey(<redacted>)");
    }

    #[test]
    fn a_generated_key_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::for_tests(dir.path().to_path_buf());
        let (d, c) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = SecretKey::from_config(&config).unwrap().seal("x", d, c);
        let again = SecretKey::from_config(&config).unwrap();
        assert_eq!(expose(&again.open(&sealed, d, c).unwrap()), "x");
    }
}
