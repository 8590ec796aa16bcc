//! Passwords and secrets: argon2id for chosen passwords, random temporary passwords, API
//! tokens and the TOTP second factor. Plain Rust, no SQL.

mod gate;
pub mod mfa;
mod password;
mod token;

pub use gate::{Busy, PasswordGate, Slot, slots as password_slots};
pub use password::{
    MIN_PASSWORD_CHARS, PasswordError, TEMP_PASSWORD_DAYS, argon2_verifications,
    check_new_password, dummy_verify, generate_temporary, hash_password, hash_temporary,
    verify_candidates, verify_password,
};
pub use token::{ApiToken, hash_token};
