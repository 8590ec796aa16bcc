//! API tokens: made from random bytes, shown once, stored as a SHA-256 and a prefix.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A freshly made API token: the secret is shown once; only its hash is stored.
pub struct ApiToken {
    pub secret: String,
    pub hash: Vec<u8>,
    pub prefix: String,
}

impl ApiToken {
    pub fn generate() -> ApiToken {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let secret = format!("rc_{}", hex::encode(bytes));
        ApiToken {
            hash: hash_token(&secret),
            prefix: secret[..10].to_string(),
            secret,
        }
    }
}

/// SHA-256 of a token (tokens carry 256 random bits, so a fast hash is enough).
pub fn hash_token(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = ApiToken::generate();
        let b = ApiToken::generate();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.hash, hash_token(&a.secret));
        assert!(a.secret.starts_with("rc_") && a.secret.len() == 67);
        assert!(a.secret.starts_with(&a.prefix));
    }
}
