//! One `Config`, from flags or environment variables.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to serve on.
    #[arg(
        long,
        env = "ROLLCALL_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,

    /// PostgreSQL URL. Without it, Rollcall runs its own cluster under the data directory.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Where the managed PostgreSQL cluster, uploads and drop folders live.
    #[arg(
        long,
        env = "ROLLCALL_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Public URL of the portal (e.g. https://rollcall.example.org). When it starts with
    /// https, session cookies are marked Secure.
    #[arg(long, env = "ROLLCALL_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Largest accepted upload, in MiB.
    #[arg(
        long,
        env = "ROLLCALL_MAX_UPLOAD_MB",
        default_value_t = 200,
        global = true
    )]
    pub max_upload_mb: u64,

    /// Seconds a client has to send a request's headers, counted from the connection's
    /// opening or from the end of its previous answer (so it is also how long an idle
    /// keep-alive connection stays open). A connection over it is closed.
    #[arg(
        long,
        env = "ROLLCALL_HEADER_TIMEOUT_SECS",
        default_value_t = 20,
        global = true
    )]
    pub header_timeout_secs: u64,

    /// Longest pause, in seconds, between two pieces of a request body (an upload that
    /// stalls longer is refused with 408).
    #[arg(
        long,
        env = "ROLLCALL_BODY_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub body_timeout_secs: u64,

    /// Connections served at once; further ones wait, unaccepted, until one closes. Keep
    /// it well below the open-files limit (`ulimit -n`).
    #[arg(
        long,
        env = "ROLLCALL_MAX_CONNECTIONS",
        default_value_t = 512,
        global = true
    )]
    pub max_connections: usize,

    /// Failed sign-ins allowed per account and address within 15 minutes.
    #[arg(
        long,
        env = "ROLLCALL_LOGIN_MAX_FAILURES",
        default_value_t = 5,
        global = true
    )]
    pub login_max_failures: i64,

    /// Failed sign-ins allowed from one address within 15 minutes, whatever the accounts
    /// (a school behind one NAT address shares it: raise it there).
    #[arg(
        long,
        env = "ROLLCALL_LOGIN_MAX_FAILURES_PER_ADDRESS",
        default_value_t = 50,
        global = true
    )]
    pub login_max_failures_per_address: i64,

    /// The server is reached only through one reverse proxy that appends the client's
    /// address to X-Forwarded-For: sign-in limits count that address, not the proxy's.
    #[arg(
        long,
        env = "ROLLCALL_TRUST_PROXY",
        default_value_t = false,
        global = true
    )]
    pub trust_proxy: bool,

    /// Passwords hashed or checked at once (sign-ins, password changes); 0 = one per core.
    /// Never more than half the database pool's connections.
    #[arg(
        long,
        env = "ROLLCALL_PASSWORD_HASHING_SLOTS",
        default_value_t = 0,
        global = true
    )]
    pub password_hashing_slots: usize,

    /// Requests that may wait for a password slot; beyond them sign-ins answer 503 with
    /// Retry-After at once.
    #[arg(
        long,
        env = "ROLLCALL_PASSWORD_HASHING_QUEUE",
        default_value_t = 32,
        global = true
    )]
    pub password_hashing_queue: usize,

    /// Background workers that apply queued runs.
    #[arg(long, env = "ROLLCALL_WORKERS", default_value_t = 2, global = true)]
    pub workers: usize,

    /// Seconds between scans of the drop folders.
    #[arg(
        long,
        env = "ROLLCALL_DROP_POLL_SECS",
        default_value_t = 5,
        global = true
    )]
    pub drop_poll_secs: u64,

    /// A dropped file is taken once untouched for this many seconds.
    #[arg(
        long,
        env = "ROLLCALL_DROP_SETTLE_SECS",
        default_value_t = 5,
        global = true
    )]
    pub drop_settle_secs: u64,

    /// Days uploaded, completed and error files are kept.
    #[arg(
        long,
        env = "ROLLCALL_RETENTION_DAYS",
        default_value_t = 90,
        global = true
    )]
    pub retention_days: u64,

    /// Days temporary passwords stay in completed files.
    #[arg(
        long,
        env = "ROLLCALL_TEMP_PASSWORD_RETENTION_DAYS",
        default_value_t = 30,
        global = true
    )]
    pub temp_password_retention_days: u64,

    /// Key that encrypts roster sync secrets at rest: 32 bytes, base64 or hex. Without it a
    /// key is generated into the data directory (with a warning): fine for trying Rollcall,
    /// not for production.
    #[arg(
        long,
        env = "ROLLCALL_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub secret_key: Option<KeyText>,

    /// Pauses, in milliseconds, before each retry of a failed roster sync request.
    #[arg(
        long,
        env = "ROLLCALL_SYNC_RETRY_MS",
        value_delimiter = ',',
        default_value = "1000,4000,16000",
        global = true
    )]
    pub sync_retry_ms: Vec<u64>,

    /// Let roster syncs reach loopback, private, link-local and other non-public addresses
    /// (an on-premise provider). Off, such a connection is refused on save, test and run.
    #[arg(
        long,
        env = "ROLLCALL_SYNC_ALLOW_PRIVATE",
        default_value_t = false,
        global = true
    )]
    pub sync_allow_private: bool,

    /// Seconds a whole sync may spend fetching from its provider before it stops (Failed).
    #[arg(
        long,
        env = "ROLLCALL_SYNC_DEADLINE_SECS",
        default_value_t = 1800,
        global = true
    )]
    pub sync_deadline_secs: u64,

    /// Seconds "Test connection" waits for the provider before it answers.
    #[arg(
        long,
        env = "ROLLCALL_SYNC_TEST_DEADLINE_SECS",
        default_value_t = 30,
        global = true
    )]
    pub sync_test_deadline_secs: u64,

    /// Pages a sync reads of one list (orgs, users, users of a role) before it stops: a
    /// 1,000,000-user district at 100 records a page (the smallest page a provider may cap
    /// us to) is 10,000 pages.
    #[arg(
        long,
        env = "ROLLCALL_SYNC_MAX_PAGES",
        default_value_t = 10_000,
        global = true
    )]
    pub sync_max_pages: usize,

    /// Largest provider response (one page), in MiB.
    #[arg(
        long,
        env = "ROLLCALL_SYNC_MAX_RESPONSE_MB",
        default_value_t = 32,
        global = true
    )]
    pub sync_max_response_mb: u64,

    /// Districts with at least this many live users get an in-memory search index (built at
    /// their first search; smaller districts are searched in PostgreSQL alone).
    #[arg(
        long,
        env = "ROLLCALL_SEARCH_INDEX_MIN_USERS",
        default_value_t = 20_000,
        global = true
    )]
    pub search_index_min_users: i64,

    /// Memory, in MiB, all search indexes together may hold (about 180 MiB per 1,000,000
    /// users); 0 turns them off.
    #[arg(
        long,
        env = "ROLLCALL_SEARCH_INDEX_MAX_MB",
        default_value_t = 2048,
        global = true
    )]
    pub search_index_max_mb: u64,

    /// SMTP server alerts are emailed through. Without it, email alerts wait (pending) and
    /// the Settings → Alerts page says so.
    #[arg(long, env = "ROLLCALL_SMTP_HOST", global = true)]
    pub smtp_host: Option<String>,

    /// SMTP port; default 25 (none), 587 (starttls) or 465 (tls).
    #[arg(long, env = "ROLLCALL_SMTP_PORT", global = true)]
    pub smtp_port: Option<u16>,

    /// How the SMTP connection is secured: none, starttls or tls.
    #[arg(
        long,
        env = "ROLLCALL_SMTP_TLS",
        value_enum,
        default_value = "starttls",
        global = true
    )]
    pub smtp_tls: SmtpTls,

    /// SMTP user name (with ROLLCALL_SMTP_PASSWORD), when the server wants one.
    #[arg(long, env = "ROLLCALL_SMTP_USERNAME", global = true)]
    pub smtp_username: Option<String>,

    /// SMTP password; never logged.
    #[arg(
        long,
        env = "ROLLCALL_SMTP_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub smtp_password: Option<KeyText>,

    /// The From address of alert emails.
    #[arg(
        long,
        env = "ROLLCALL_SMTP_FROM",
        default_value = "Rollcall <rollcall@localhost>",
        global = true
    )]
    pub smtp_from: String,

    /// Log as JSON lines instead of readable text.
    #[arg(
        long,
        env = "ROLLCALL_LOG_JSON",
        default_value_t = false,
        global = true
    )]
    pub log_json: bool,
}

impl Config {
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"))
    }

    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_mb * 1024 * 1024
    }

    /// A config for tests: everything default, the given database.
    pub fn for_tests(data_dir: PathBuf) -> Config {
        Config {
            bind: "127.0.0.1:0".into(),
            database_url: None,
            data_dir,
            public_url: None,
            max_upload_mb: 200,
            header_timeout_secs: 20,
            body_timeout_secs: 30,
            max_connections: 512,
            login_max_failures: 5,
            login_max_failures_per_address: 50,
            trust_proxy: false,
            password_hashing_slots: 0,
            password_hashing_queue: 32,
            workers: 1,
            drop_poll_secs: 1,
            drop_settle_secs: 1,
            retention_days: 90,
            temp_password_retention_days: 30,
            secret_key: None,
            sync_retry_ms: vec![5, 20, 50],
            // The fake providers of the tests listen on 127.0.0.1.
            sync_allow_private: true,
            sync_deadline_secs: 1800,
            sync_test_deadline_secs: 30,
            sync_max_pages: 10_000,
            sync_max_response_mb: 32,
            search_index_min_users: 20_000,
            search_index_max_mb: 2048,
            log_json: false,
            smtp_host: None,
            smtp_port: None,
            smtp_tls: SmtpTls::None,
            smtp_username: None,
            smtp_password: None,
            smtp_from: "Rollcall <rollcall@localhost>".into(),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SmtpTls {
    /// Plain SMTP (a relay on the same machine or network).
    None,
    /// Plain, upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

/// A secret given in the configuration: its Debug output never shows it.
#[derive(Clone)]
pub struct KeyText(pub String);

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyText(<redacted>)")
    }
}

impl std::str::FromStr for KeyText {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(KeyText(s.trim().to_string()))
    }
}
