//! Operations shared by the command line and the web pages.

use crate::auth;
use crate::clock::Clock;
use crate::db;
use crate::db::audit::{Actor, Entry};
use crate::domain::{ActorKind, RunKind, RunStatus};
use anyhow::{Context, Result, bail};
use sqlx::PgPool;

pub struct CreatedDistrict {
    pub district: db::districts::District,
    pub admin_id: uuid::Uuid,
    /// The one-time temporary password, when none was given.
    pub temporary_password: Option<String>,
}

/// Make a district and its first admin. Without a password the admin gets a temporary one
/// (shown once) that must be changed at first sign-in.
pub async fn create_district(
    pool: &PgPool,
    clock: &Clock,
    actor: &Actor,
    name: &str,
    slug: &str,
    admin_email: &str,
    password: Option<String>,
) -> Result<CreatedDistrict> {
    let name = name.trim();
    let slug = slug.trim().to_lowercase();
    let Some(email) = crate::domain::parse_email(admin_email) else {
        bail!("\"{admin_email}\" is not a valid email address");
    };
    if name.is_empty() {
        bail!("the district name is required");
    }
    if !slug
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || slug.is_empty()
        || slug.len() > 63
        || slug.starts_with('-')
    {
        bail!("the slug must be 1-63 lower-case letters, digits and dashes (e.g. springfield-usd)");
    }
    if let Some(pw) = &password {
        auth::check_new_password(pw, pw, &email, Some(&email))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let (secret, temporary) = match password {
        Some(pw) => (pw, false),
        None => (auth::generate_temporary(), true),
    };
    let to_hash = secret.clone();
    let hash = tokio::task::spawn_blocking(move || {
        if temporary {
            auth::hash_temporary(&to_hash)
        } else {
            auth::hash_password(&to_hash)
        }
    })
    .await?;
    let username = email.split('@').next().unwrap_or("admin").to_string();
    let mut tx = pool.begin().await?;
    let district = match db::districts::insert(&mut *tx, &slug, name).await {
        Ok(d) => d,
        Err(e) => match db::constraint_message(&e) {
            Some(msg) => bail!("{msg}"),
            None => return Err(e.into()),
        },
    };
    let admin = db::users::NewAdmin {
        email: &email,
        username: &username,
        first_name: "District",
        last_name: "Admin",
        password_hash: &hash,
        temporary,
    };
    let admin_id = db::users::insert_admin(&mut *tx, district.id, &admin, clock.now()).await?;
    db::audit::record(
        &mut *tx,
        district.id,
        actor,
        Entry {
            action: "district.create",
            entity_kind: "district",
            entity_id: Some(district.id),
            run_id: None,
            before: None,
            after: Some(serde_json::json!({ "name": name, "slug": slug, "admin_email": email })),
        },
    )
    .await?;
    db::audit::record(&mut *tx, district.id, actor, Entry {
        action: "user.create",
        entity_kind: "user",
        entity_id: Some(admin_id),
        run_id: None,
        before: None,
        after: Some(serde_json::json!({ "email": email, "username": username, "portal_role": "district_admin" })),
    })
    .await?;
    tx.commit().await?;
    Ok(CreatedDistrict {
        district,
        admin_id,
        temporary_password: temporary.then_some(secret),
    })
}

/// A new API token for a district; the secret is returned once and only its hash is kept.
pub async fn create_token(
    pool: &PgPool,
    district_id: uuid::Uuid,
    name: &str,
    actor: &Actor,
) -> Result<String> {
    let token = auth::ApiToken::generate();
    let name = if name.trim().is_empty() {
        "API token"
    } else {
        name.trim()
    };
    let mut tx = pool.begin().await?;
    let id = db::tokens::insert(
        &mut *tx,
        district_id,
        name,
        &token.hash,
        &token.prefix,
        &actor.label,
    )
    .await?;
    db::audit::record(
        &mut *tx,
        district_id,
        actor,
        Entry {
            action: "token.create",
            entity_kind: "token",
            entity_id: Some(id),
            run_id: None,
            before: None,
            after: Some(serde_json::json!({ "name": name, "prefix": token.prefix })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(token.secret)
}

pub async fn district_by_slug(pool: &PgPool, slug: &str) -> Result<db::districts::District> {
    db::districts::by_slug(pool, slug)
        .await?
        .with_context(|| format!("no district with slug \"{slug}\" (see `rollcall district list`)"))
}

/// Parse and apply a schools CSV in one transaction (the Schools page and `rollcall schools
/// import`). `Ok(Err(messages))`: the file's problems; nothing changed.
pub async fn import_schools(
    pool: &PgPool,
    district_id: uuid::Uuid,
    actor: &db::audit::Actor,
    bytes: &[u8],
) -> sqlx::Result<Result<db::schools::UpsertCounts, Vec<String>>> {
    let rows = match crate::feed::schools::parse(bytes) {
        Ok(rows) => rows,
        Err(errors) => return Ok(Err(errors)),
    };
    let mut tx = pool.begin().await?;
    let counts = db::schools::upsert_many(&mut *tx, district_id, &rows).await?;
    db::audit::record(
        &mut *tx,
        district_id,
        actor,
        Entry {
            action: "school.import",
            entity_kind: "district",
            entity_id: Some(district_id),
            run_id: None,
            before: None,
            after: Some(serde_json::to_value(&counts).unwrap_or_default()),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(counts))
}

/// Run a user CSV from the command line (a run of kind `cli`). `options.scope` is the
/// scope asked for (`--scope`); the intake decides it otherwise, as for every way in.
#[allow(clippy::too_many_arguments)]
pub async fn import_file(
    pool: &PgPool,
    clock: &Clock,
    config: &crate::config::Config,
    district_id: uuid::Uuid,
    file: &std::path::Path,
    source: Option<String>,
    dry_run: bool,
    approve: bool,
    mut options: crate::reconcile::run::RunOptions,
) -> Result<crate::reconcile::run::Summary> {
    let path = file
        .canonicalize()
        .with_context(|| format!("reading {}", file.display()))?;
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("import.csv")
        .to_string();
    let (p, max) = (path.clone(), config.max_upload_bytes());
    let headers = tokio::task::spawn_blocking(move || crate::intake::file_headers(&p, max))
        .await?
        .ok();
    let decided = crate::intake::decide(
        pool,
        district_id,
        &file_name,
        headers.as_deref(),
        source.as_deref(),
        options.scope,
    )
    .await?;
    options.scope = Some(decided.scope);
    options.error_file_of = decided.error_file_of;
    options.intake_note = decided.note;
    let source = crate::domain::Source::File(decided.source_key.into());
    let stored_options = serde_json::to_value(&options)?;
    let run_id = uuid::Uuid::new_v4();
    // The run's liveness lock is taken before the run exists and held until it ends (on
    // every path), so neither a worker nor a server's orphan check sharing the database
    // takes this run.
    db::run_lock::with_run_lock(pool, run_id, async {
        db::runs::insert_started(
            pool,
            district_id,
            run_id,
            &db::runs::NewRun {
                kind: RunKind::Cli,
                source: &source.to_db(),
                file_name: Some(&file_name),
                file_sha256: None,
                file_path: path.to_str(),
                dry_run,
                approved: approve,
                options: stored_options,
                submitted_kind: ActorKind::Cli,
                submitted_by: "command line",
                status: RunStatus::InProgress,
            },
            clock.now(),
        )
        .await?;
        let req = crate::reconcile::run::RunRequest {
            district_id,
            run_id,
            path,
            source,
            dry_run,
            approved: approve,
            options,
            actor_kind: ActorKind::Cli,
            actor_id: None,
            actor_label: "command line",
            max_bytes: config.max_upload_bytes(),
            progress: Default::default(),
            password_key: crate::crypto::SecretKey::from_config(config)?.feed_password_key(),
        };
        crate::reconcile::run::execute(pool, clock, &req).await
    })
    .await
}

/// Stream the master CSV (every non-archived user) into `out`, as the Users screen's
/// download: UTF-8 with a BOM.
pub async fn export_master(
    pool: &PgPool,
    district_id: uuid::Uuid,
    out: impl std::io::Write,
) -> Result<()> {
    use futures::StreamExt;
    let mut out = out;
    out.write_all(crate::reconcile::report::UTF8_BOM)?;
    let mut w = csv::Writer::from_writer(out);
    w.write_record(crate::reconcile::report::MASTER_HEADER)?;
    let district = db::districts::external_id(pool, district_id).await?;
    let mut rows = db::export::master_rows(pool.clone(), district_id, Default::default(), None);
    while let Some(row) = rows.next().await {
        let row = row?;
        let record = crate::reconcile::report::master_record(&row, district.as_deref());
        w.write_record(record.iter().map(|c| c.as_bytes()))?;
    }
    w.flush()?;
    Ok(())
}

/// Write one of a run's downloads to a file (`rollcall import --errors/--completed`).
pub async fn write_run_file(
    pool: &PgPool,
    config: &crate::config::Config,
    district_id: uuid::Uuid,
    run_id: uuid::Uuid,
    kind: crate::reconcile::report::FileKind,
    path: &std::path::Path,
) -> Result<()> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let run = db::runs::get(pool, district_id, run_id)
        .await?
        .context("the run vanished")?;
    let Some(download) =
        crate::intake::download(pool.clone(), &run, kind, config.max_upload_bytes()).await?
    else {
        bail!("the run's file is not available");
    };
    let mut out = tokio::fs::File::create(path)
        .await
        .with_context(|| format!("creating {}", path.display()))?;
    // A set that carried rosters writes a zip (its users' file and its classes or roster
    // errors), whatever `path` is named.
    let mut stream = Box::pin(download.body);
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk?).await?;
    }
    out.flush().await?;
    Ok(())
}
