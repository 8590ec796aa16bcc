//! Password hashing (argon2id) and checking, with a dummy check for unknown accounts.

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// argon2 verifications this process has run (real and dummy): sign-in paths are checked to
/// cost the same work by counting them, not by timing them.
static ARGON2_VERIFICATIONS: AtomicU64 = AtomicU64::new(0);

/// How many argon2 verifications this process has run so far.
pub fn argon2_verifications() -> u64 {
    ARGON2_VERIFICATIONS.load(Ordering::Relaxed)
}

/// A temporary password unused for this many days expires.
pub const TEMP_PASSWORD_DAYS: i64 = 90;

/// Letters and digits that cannot be mistaken for each other when read aloud or printed.
const TEMP_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const TEMP_LEN: usize = 14;

fn argon2() -> Argon2<'static> {
    // OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// argon2id hash (PHC string) of a password a person chose. CPU-heavy: call it from
/// `spawn_blocking`.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters")
        .to_string()
}

/// A random temporary password (about 80 bits).
pub fn generate_temporary() -> String {
    let mut rng = rand::thread_rng();
    (0..TEMP_LEN)
        .map(|_| TEMP_ALPHABET[rng.gen_range(0..TEMP_ALPHABET.len())] as char)
        .collect()
}

/// Hash of a generated temporary password. These are long random strings, not something a
/// person chose, so a salted SHA-256 is as strong as argon2 for them, and lets a run create
/// hundreds of thousands of accounts in seconds. Chosen passwords always use argon2id.
pub fn hash_temporary(password: &str) -> String {
    let salt: [u8; 16] = rand::thread_rng().r#gen();
    let digest = Sha256::new()
        .chain_update(salt)
        .chain_update(password.as_bytes())
        .finalize();
    format!("tmp-sha256${}${}", hex::encode(salt), hex::encode(digest))
}

/// Check a password against a stored hash (argon2id PHC string or a temporary hash).
pub fn verify_password(password: &str, stored: &str) -> bool {
    verify(password, stored).0
}

/// Whether the password matches, and whether an argon2 verification was run for it.
fn verify(password: &str, stored: &str) -> (bool, bool) {
    if let Some(rest) = stored.strip_prefix("tmp-sha256$") {
        let Some((salt_hex, digest_hex)) = rest.split_once('$') else {
            return (false, false);
        };
        let (Ok(salt), Ok(expected)) = (hex::decode(salt_hex), hex::decode(digest_hex)) else {
            return (false, false);
        };
        let digest = Sha256::new()
            .chain_update(&salt)
            .chain_update(password.as_bytes())
            .finalize();
        use subtle::ConstantTimeEq;
        return (digest.as_slice().ct_eq(&expected).into(), false);
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => {
            ARGON2_VERIFICATIONS.fetch_add(1, Ordering::Relaxed);
            let ok = argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            (ok, true)
        }
        Err(_) => (false, false),
    }
}

/// Run one argon2 verification against a fixed hash, for sign-ins that matched no argon2
/// hash, so they cost the same argon2 work as a wrong password for a real account. Only that
/// work is evened out: the database lookups before it are not.
pub fn dummy_verify(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password("rollcall-dummy-password"));
    let _ = verify_password(password, hash);
}

/// Check a password against every account a sign-in name matched (`None`: an account
/// without a password, which never matches). The argon2 work is the same whatever the
/// accounts hold: one verification per argon2 hash, and one dummy when there was none
/// (no account, a temporary password's fast hash, no password) — so a failed sign-in does
/// the same argon2 work for a name that does not exist, or holds a temporary password, as
/// for one account with a chosen password (a name matching several such accounts does more).
pub fn verify_candidates(password: &str, stored: &[Option<&str>]) -> Vec<bool> {
    let mut argon2_runs = 0;
    let matches = stored
        .iter()
        .map(|hash| {
            let (ok, ran) = hash.map_or((false, false), |h| verify(password, h));
            argon2_runs += usize::from(ran);
            ok
        })
        .collect();
    if argon2_runs == 0 {
        dummy_verify(password);
    }
    matches
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must be at least 8 characters long")]
    TooShort,
    #[error("the password must not be your username or email")]
    SameAsIdentity,
    #[error("the two passwords do not match")]
    Mismatch,
}

/// Fewest characters in a password a person chooses, or a file gives for a new account.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// The strength rule for a password a person chooses.
pub fn check_new_password(
    password: &str,
    confirm: &str,
    username: &str,
    email: Option<&str>,
) -> Result<(), PasswordError> {
    if password != confirm {
        return Err(PasswordError::Mismatch);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let lower = password.to_lowercase();
    if lower == username.to_lowercase() || email.is_some_and(|e| lower == e.to_lowercase()) {
        return Err(PasswordError::SameAsIdentity);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_round_trip() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
    }

    #[test]
    fn temporary_round_trip() {
        let pw = generate_temporary();
        assert_eq!(pw.len(), TEMP_LEN);
        let h = hash_temporary(&pw);
        assert!(verify_password(&pw, &h));
        assert!(!verify_password("nope", &h));
        assert_ne!(hash_temporary(&pw), h, "salted");
    }

    #[test]
    fn garbage_hash_never_verifies() {
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password("x", "tmp-sha256$zz$zz"));
    }

    #[test]
    fn every_candidate_set_costs_one_argon2_verification() {
        let argon = hash_password("right-password");
        let temp = hash_temporary("right-password");
        dummy_verify("warm up"); // the dummy hash is made once, by hashing
        let cases = [
            ("no account", vec![], vec![]),
            ("no password", vec![None], vec![false]),
            ("temporary", vec![Some(temp.as_str())], vec![false]),
            ("argon2", vec![Some(argon.as_str())], vec![false]),
            ("garbage", vec![Some("not a hash")], vec![false]),
            (
                "both",
                vec![Some(temp.as_str()), Some(argon.as_str())],
                vec![false, false],
            ),
        ];
        for (what, stored, expected) in cases {
            let before = argon2_verifications();
            assert_eq!(verify_candidates("wrong", &stored), expected, "{what}");
            // Exact under nextest (a process per test, as scripts/test runs them).
            assert_eq!(argon2_verifications() - before, 1, "{what}");
        }
        assert_eq!(
            verify_candidates("right-password", &[Some(&temp), None, Some(&argon)]),
            vec![true, false, true]
        );
    }

    #[test]
    fn strength_rule() {
        assert_eq!(
            check_new_password("short", "short", "u", None),
            Err(PasswordError::TooShort)
        );
        assert_eq!(
            check_new_password("jane.doe1", "jane.doe1", "Jane.Doe1", None),
            Err(PasswordError::SameAsIdentity)
        );
        assert_eq!(
            check_new_password("a@b.org1", "a@b.org1", "x", Some("A@B.org1")),
            Err(PasswordError::SameAsIdentity)
        );
        assert_eq!(
            check_new_password("abcdefgh", "abcdefgX", "x", None),
            Err(PasswordError::Mismatch)
        );
        assert!(check_new_password("abcdefgh", "abcdefgh", "x", None).is_ok());
    }
}
