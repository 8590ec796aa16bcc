//! Passwords and secrets: argon2id for chosen passwords, random temporary passwords and
//! API tokens. Plain Rust, no SQL.

mod password;
mod token;

pub use password::{
    MIN_PASSWORD_CHARS, PasswordError, TEMP_PASSWORD_DAYS, check_new_password, dummy_verify,
    generate_temporary, hash_password, hash_temporary, verify_password,
};
pub use token::{ApiToken, hash_token};
