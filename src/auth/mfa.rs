//! TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of drift either
//! way) by the `totp-rs` crate, its enrolment QR code as SVG (the `qrcode` crate), and
//! one-time recovery codes stored as SHA-256 hashes. Plain Rust, no SQL.

use qrcode::QrCode;
use qrcode::render::svg;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use totp_rs::{Algorithm, Secret, TOTP};

/// How many recovery codes an enrolment hands out.
pub const RECOVERY_CODES: usize = 10;
const STEP_SECS: u64 = 30;
const ISSUER: &str = "Rollcall";
/// Recovery codes: letters and digits that cannot be mistaken for each other.
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A new random TOTP secret (160 bits), base32 as authenticator apps show it.
pub fn generate_secret() -> String {
    match Secret::generate_secret().to_encoded() {
        Secret::Encoded(s) => s,
        Secret::Raw(_) => unreachable!("to_encoded gives an encoded secret"),
    }
}

fn totp(secret_base32: &str, account: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_base32.to_string()).to_bytes().ok()?;
    // Labels may not hold a colon (the otpauth URL's separator).
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECS,
        bytes,
        Some(ISSUER.to_string()),
        account.replace(':', " "),
    )
    .ok()
}

/// The time step a moment falls in.
pub fn step_of(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(STEP_SECS as i64)
}

/// The code for a moment (tests and the enrolment check use it).
pub fn code_at(secret_base32: &str, at: OffsetDateTime) -> Option<String> {
    let t = totp(secret_base32, "x")?;
    Some(t.generate(at.unix_timestamp().max(0) as u64))
}

/// The step a code is valid for at `now` (this step, the one before or the one after),
/// if it is later than `last_step` (a code works once, and never an older one).
pub fn check_code(
    secret_base32: &str,
    code: &str,
    now: OffsetDateTime,
    last_step: Option<i64>,
) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret_base32, "x")?;
    let here = step_of(now);
    let mut found = None;
    for step in [here - 1, here, here + 1] {
        if step < 0 || last_step.is_some_and(|last| step <= last) {
            continue;
        }
        let expected = t.generate(step as u64 * STEP_SECS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` URL an authenticator app reads from the QR code.
pub fn otpauth_url(secret_base32: &str, account: &str) -> Option<String> {
    Some(totp(secret_base32, account)?.get_url())
}

/// The QR code of a URL as an SVG document (server-side, no script, no external image).
pub fn qr_svg(url: &str) -> Option<String> {
    let code = QrCode::new(url.as_bytes()).ok()?;
    let doc = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // Inline in a page: the element without the XML declaration before it.
    Some(doc[doc.find("<svg")?..].to_string())
}

/// Ten fresh recovery codes, shown once (`xxxxx-xxxxx`, about 49 bits each).
pub fn generate_recovery_codes() -> Vec<String> {
    let mut rng = rand::thread_rng();
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut s: String = (0..10)
                .map(|_| RECOVERY_ALPHABET[rng.gen_range(0..RECOVERY_ALPHABET.len())] as char)
                .collect();
            s.insert(5, '-');
            s
        })
        .collect()
}

/// The stored form of a recovery code: SHA-256 of it lower-cased, without spaces or dashes.
pub fn hash_recovery_code(code: &str) -> Vec<u8> {
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Sha256::digest(norm.as_bytes()).to_vec()
}

/// Whether what was typed looks like a recovery code rather than a TOTP code.
pub fn looks_like_recovery_code(typed: &str) -> bool {
    typed.chars().filter(|c| c.is_ascii_alphanumeric()).count() == 10
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn codes_check_within_one_step_and_once() {
        let secret = generate_secret();
        // Five seconds into a step, so that 31 seconds later is exactly the next step (from
        // the wall clock, 31 s later was two steps on once in thirty runs).
        let now = OffsetDateTime::from_unix_timestamp(1_796_000_000 / 30 * 30 + 5).unwrap();
        let code = code_at(&secret, now).unwrap();
        let step = check_code(&secret, &code, now, None).expect("the current code works");
        assert_eq!(step, step_of(now));
        assert_eq!(check_code(&secret, &code, now, Some(step)), None, "once");
        let later = now + Duration::seconds(31);
        assert_eq!(step_of(later), step + 1);
        assert_eq!(
            check_code(&secret, &code, later, None),
            Some(step),
            "one step late"
        );
        let early = now - Duration::seconds(30);
        assert_eq!(
            check_code(&secret, &code, early, None),
            Some(step),
            "one step early"
        );
        let much_later = now + Duration::minutes(5);
        assert_eq!(check_code(&secret, &code, much_later, None), None);
        assert_eq!(check_code(&secret, "12345", now, None), None);
        assert_eq!(check_code(&secret, "abcdef", now, None), None);
        let other = generate_secret();
        assert_ne!(other, secret);
    }

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); the 6-digit code is
        // its last six digits.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"
        let at = OffsetDateTime::from_unix_timestamp(59).unwrap();
        assert_eq!(code_at(secret, at).as_deref(), Some("287082"));
    }

    #[test]
    fn url_and_qr() {
        let secret = generate_secret();
        let url = otpauth_url(&secret, "admin@example.org").unwrap();
        assert!(url.starts_with("otpauth://totp/Rollcall:"), "{url}");
        assert!(url.contains(&format!("secret={secret}")));
        let svg = qr_svg(&url).unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_loosely() {
        let codes = generate_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut seen = codes.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), RECOVERY_CODES);
        let c = &codes[0];
        assert!(looks_like_recovery_code(c));
        assert!(!looks_like_recovery_code("123456"));
        assert_eq!(
            hash_recovery_code(c),
            hash_recovery_code(&c.replace('-', " ").to_uppercase())
        );
    }
}
