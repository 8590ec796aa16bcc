//! Sending deliveries: email over SMTP (lettre) and signed webhooks (through the sync's
//! guarded HTTP client), each attempt recorded, failures retried with backoff.

use super::message;
use crate::config::{Config, SmtpTls};
use crate::crypto::SecretKey;
use crate::db;
use crate::db::alert_delivery::{Claimed, Outcome};
use crate::domain::alerts::{AfterFailure, Channel, Facts, after_failure, webhook_body};
use crate::domain::health::EventKind;
use anyhow::{Context, Result};
use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use sqlx::PgPool;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use time::OffsetDateTime;
use uuid::Uuid;

/// Deliveries claimed per pass (each attempt waits at most [`ATTEMPT_TIMEOUT`], well within
/// the lease).
const SEND_BATCH: i64 = 10;
const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The row id a district's webhook secret is sealed to (the sync secrets' slot is the
/// connection id; this one can never be a connection's).
const WEBHOOK_SECRET_SLOT: Uuid = Uuid::from_u128(0x616c_6572_7473_7765_6268_6f6f_6b00_0001);

/// A new webhook secret: 32 random bytes, hex.
pub fn generate_webhook_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}

pub fn seal_webhook_secret(config: &Config, district_id: Uuid, secret: &str) -> Result<Vec<u8>> {
    Ok(SecretKey::from_config(config)?.seal(secret, district_id, WEBHOOK_SECRET_SLOT))
}

pub fn open_webhook_secret(
    config: &Config,
    district_id: Uuid,
    sealed: &[u8],
) -> Result<SecretString> {
    SecretKey::from_config(config)?.open(sealed, district_id, WEBHOOK_SECRET_SLOT)
}

/// The `X-Rollcall-Signature` value: `sha256=` and the lowercase hex HMAC-SHA256 of the
/// exact body, keyed by the district's webhook secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The installation's SMTP transport; None without `ROLLCALL_SMTP_HOST`.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn from_config(config: &Config) -> Result<Option<Mailer>> {
        let Some(host) = config.smtp_host.as_deref().filter(|h| !h.is_empty()) else {
            return Ok(None);
        };
        let builder = match config.smtp_tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .context("ROLLCALL_SMTP_HOST")?,
            SmtpTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(host).context("ROLLCALL_SMTP_HOST")?
            }
        };
        let mut builder = builder
            .port(config.smtp_port.unwrap_or(config.smtp_tls.default_port()))
            .timeout(Some(ATTEMPT_TIMEOUT));
        if let Some(user) = config.smtp_username.as_deref().filter(|u| !u.is_empty()) {
            let password = config
                .smtp_password
                .as_ref()
                .map(|p| p.0.clone())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.to_string(), password));
        }
        let from: Mailbox = config
            .smtp_from
            .parse()
            .context("ROLLCALL_SMTP_FROM is not an email address")?;
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
        }))
    }

    /// Send one plain-text message now (a password reset link): an error says why not.
    pub async fn send_now(&self, to: &str, subject: &str, body: &str) -> Result<()> {
        match self.send(to, subject.to_string(), body.to_string()).await {
            Attempt::Ok(_) => Ok(()),
            Attempt::Again(_, why) | Attempt::Fatal(_, why) => Err(anyhow::anyhow!(why)),
        }
    }

    async fn send(&self, to: &str, subject: String, body: String) -> Attempt {
        let to: Mailbox = match to.parse() {
            Ok(m) => m,
            Err(_) => return Attempt::fatal(None, "the recipient is not an email address"),
        };
        let email = match lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
        {
            Ok(m) => m,
            Err(e) => return Attempt::fatal(None, &format!("the message cannot be built: {e}")),
        };
        match self.transport.send(email).await {
            Ok(r) => Attempt::Ok(code_of(r.code())),
            Err(e) => Attempt::Again(
                e.status().and_then(code_of),
                format!("the mail server: {e}"),
            ),
        }
    }
}

fn code_of(c: lettre::transport::smtp::response::Code) -> Option<i32> {
    c.to_string().parse().ok()
}

/// One attempt's result.
enum Attempt {
    Ok(Option<i32>),
    /// Worth retrying (with backoff).
    Again(Option<i32>, String),
    /// Never going to work as it is: Failed at once.
    Fatal(Option<i32>, String),
}

impl Attempt {
    fn fatal(code: Option<i32>, why: &str) -> Attempt {
        Attempt::Fatal(code, why.to_string())
    }
}

/// What the sender needs about a district, read once per pass.
struct DistrictInfo {
    name: String,
    slug: String,
    sync_names: HashMap<Uuid, String>,
    webhook_secret: Option<Vec<u8>>,
}

/// The base of the links in alerts: `ROLLCALL_PUBLIC_URL`, else the bound address.
pub fn public_base(config: &Config) -> String {
    match &config.public_url {
        Some(u) if !u.is_empty() => u.trim_end_matches('/').to_string(),
        _ => format!("http://{}", config.bind),
    }
}

/// Send every due delivery (claimed with a lease, so two senders never send one twice):
/// email only when SMTP is configured (otherwise emails stay pending), webhooks always.
/// Returns the deliveries attempted.
pub async fn send_due_once(pool: &PgPool, config: &Config, now: OffsetDateTime) -> Result<usize> {
    let mailer = Mailer::from_config(config)?;
    let channels: Vec<&str> = match mailer {
        Some(_) => vec![Channel::Email.as_str(), Channel::Webhook.as_str()],
        None => vec![Channel::Webhook.as_str()],
    };
    let http = crate::sync::http::client(config.sync_allow_private);
    let base = public_base(config);
    let mut districts: HashMap<Uuid, DistrictInfo> = HashMap::new();
    let mut attempted = 0;
    loop {
        let claimed = db::alert_delivery::claim_due(pool, now, &channels, SEND_BATCH).await?;
        if claimed.is_empty() {
            return Ok(attempted);
        }
        for c in claimed {
            if let Entry::Vacant(slot) = districts.entry(c.district_id) {
                let Some(d) = db::districts::by_id(pool, c.district_id).await? else {
                    continue; // deleted: its deliveries went with it
                };
                let settings = db::alert_delivery::settings(pool, c.district_id).await?;
                slot.insert(DistrictInfo {
                    name: d.name,
                    slug: d.slug,
                    sync_names: db::syncs::names(pool, c.district_id).await?,
                    webhook_secret: settings.webhook_secret_sealed,
                });
            }
            let info = &districts[&c.district_id];
            let attempt = attempt(config, mailer.as_ref(), &http, &base, info, &c).await;
            let attempts = c.attempts + 1;
            let outcome = match &attempt {
                Attempt::Ok(code) => Outcome::Delivered { code: *code },
                Attempt::Again(code, error) => match after_failure(attempts) {
                    AfterFailure::Retry(wait) => Outcome::Retry {
                        code: *code,
                        error,
                        at: now + wait,
                    },
                    AfterFailure::GiveUp => Outcome::Failed { code: *code, error },
                },
                Attempt::Fatal(code, error) => Outcome::Failed { code: *code, error },
            };
            if let Attempt::Again(_, e) | Attempt::Fatal(_, e) = &attempt {
                tracing::warn!(district = %c.district_id, delivery = c.id, channel = %c.channel,
                               attempts, error = %e, "alerts: a delivery did not go through");
            }
            db::alert_delivery::record_attempt(pool, c.district_id, c.id, now, outcome).await?;
            attempted += 1;
        }
    }
}

async fn attempt(
    config: &Config,
    mailer: Option<&Mailer>,
    http: &reqwest::Client,
    base: &str,
    info: &DistrictInfo,
    c: &Claimed,
) -> Attempt {
    let Some(kind) = EventKind::parse(&c.kind) else {
        return Attempt::fatal(None, "unknown event kind");
    };
    let source_name = c
        .source
        .as_deref()
        .map(|s| crate::reconcile::report::source_name(s, &info.sync_names));
    let facts = Facts {
        event_id: c.event_id,
        kind,
        at: c.at,
        district_id: c.district_id,
        district_name: &info.name,
        district_slug: &info.slug,
        source: c.source.as_deref().zip(source_name.as_deref()),
        run_id: c.run_id,
        link: c.run_id.map(|id| format!("{base}/uploads/{id}")),
        detail: &c.detail,
    };
    match Channel::parse(&c.channel) {
        Some(Channel::Email) => match mailer {
            Some(m) => {
                m.send(&c.target, message::subject(&facts), message::text(&facts))
                    .await
            }
            None => Attempt::Again(None, "no SMTP server is configured".into()),
        },
        Some(Channel::Webhook) => {
            let Some(sealed) = &info.webhook_secret else {
                return Attempt::fatal(None, "the webhook has no secret");
            };
            let secret = match open_webhook_secret(config, c.district_id, sealed) {
                Ok(s) => s,
                Err(e) => return Attempt::Fatal(None, e.to_string()),
            };
            let body = serde_json::to_vec(&webhook_body(&facts)).unwrap_or_default();
            post_webhook(http, config, &c.target, secret.expose_secret(), body).await
        }
        None => Attempt::fatal(None, "unknown channel"),
    }
}

async fn post_webhook(
    http: &reqwest::Client,
    config: &Config,
    url: &str,
    secret: &str,
    body: Vec<u8>,
) -> Attempt {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Attempt::fatal(None, "the webhook URL is not a URL");
    };
    if let Err(e) = crate::sync::policy::check_url(&parsed, config.sync_allow_private) {
        return Attempt::Fatal(None, e.to_string());
    }
    let sent = http
        .post(parsed)
        .timeout(ATTEMPT_TIMEOUT)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Rollcall-Signature", signature(secret, &body))
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Attempt::Ok(Some(r.status().as_u16() as i32)),
        Ok(r) => Attempt::Again(
            Some(r.status().as_u16() as i32),
            format!("the receiver answered {}", r.status()),
        ),
        Err(e) => {
            let f = crate::sync::http::request_failure("webhook", e);
            if f.retry {
                Attempt::Again(None, f.message)
            } else {
                Attempt::Fatal(None, f.message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hex_hmac_of_the_exact_body() {
        // RFC 4231 test case 2.
        let s = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            s,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(signature("Jefe", b"what do ya want for nothing? "), s);
    }

    #[test]
    fn webhook_secrets_are_sealed_to_their_district() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::for_tests(dir.path().to_path_buf());
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let secret = generate_webhook_secret();
        assert!(secret.starts_with("whsec_") && secret.len() == 6 + 64);
        let sealed = seal_webhook_secret(&config, a, &secret).unwrap();
        let opened = open_webhook_secret(&config, a, &sealed).unwrap();
        assert_eq!(opened.expose_secret(), secret);
        assert!(open_webhook_secret(&config, b, &sealed).is_err());
    }

    #[test]
    fn no_smtp_host_no_mailer() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path().to_path_buf());
        assert!(Mailer::from_config(&config).unwrap().is_none());
        config.smtp_host = Some("127.0.0.1".into());
        assert!(Mailer::from_config(&config).unwrap().is_some());
        assert_eq!(public_base(&config), "http://127.0.0.1:0");
        config.public_url = Some("https://rc.example/".into());
        assert_eq!(public_base(&config), "https://rc.example");
    }
}
