//! Rollcall: keeps a school district's user accounts in step with its SIS.
//!
//! The pipeline a district's data flows through: read → map → validate → plan → apply → report.

pub mod alerts;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod download;
pub mod feed;
pub mod intake;
pub mod jobs;
pub mod ops;
pub mod pg_local;
pub mod reconcile;
pub mod search;
pub mod sso;
pub mod storage;
pub mod sync;
pub mod telemetry;
pub mod user_listing;
pub mod web;

use anyhow::{Context, Result, bail};
use cli::{Cli, Command, DistrictCmd, OperatorCmd, SchoolsCmd, TokenCmd};
use db::Database;
use db::audit::Actor;
use std::io::Read;
use std::sync::Arc;

/// Run one command of the CLI.
pub async fn run(cli: Cli) -> Result<()> {
    let config = cli.config;
    let db = Database::open(&config).await?;
    let result = dispatch(&config, &db, cli.command.unwrap_or(Command::Serve)).await;
    db.close().await;
    result
}

async fn dispatch(config: &config::Config, db: &Database, command: Command) -> Result<()> {
    let pool = &db.pool;
    let clock = clock::Clock::default();
    match command {
        Command::Serve => serve(config, pool.clone(), clock).await,
        Command::Migrate => {
            println!("migrations applied");
            Ok(())
        }
        Command::District(DistrictCmd::Create {
            name,
            slug,
            admin_email,
            admin_password_stdin,
        }) => {
            let password = admin_password_stdin.then(read_password_stdin).transpose()?;
            let created = ops::create_district(
                pool,
                &clock,
                &Actor::cli(),
                &name,
                &slug,
                &admin_email,
                password,
            )
            .await?;
            println!(
                "district {} ({}) created",
                created.district.name, created.district.slug
            );
            println!("admin: {}", admin_email.trim().to_lowercase());
            if let Some(pw) = created.temporary_password {
                println!("one-time password: {pw}");
                println!("(it must be changed at first sign-in and expires unused after 90 days)");
            }
            Ok(())
        }
        Command::District(DistrictCmd::List) => {
            for d in db::districts::list(pool).await? {
                println!(
                    "{}\t{}\t{} schools\t{} users",
                    d.slug, d.name, d.schools, d.users
                );
            }
            Ok(())
        }
        Command::Operator(OperatorCmd::Create {
            email,
            password_stdin,
        }) => {
            let Some(email) = domain::parse_email(&email) else {
                bail!("\"{email}\" is not a valid email address")
            };
            let (password, shown) = if password_stdin {
                let pw = read_password_stdin()?;
                auth::check_new_password(&pw, &pw, &email, Some(&email))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                (pw, false)
            } else {
                (
                    auth::generate_temporary() + &auth::generate_temporary(),
                    true,
                )
            };
            let pw = password.clone();
            let hash = tokio::task::spawn_blocking(move || auth::hash_password(&pw)).await?;
            let id = db::users::insert_operator(pool, &email, &hash)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        db::constraint_message(&e)
                            .map(str::to_string)
                            .unwrap_or(e.to_string())
                    )
                })?;
            // A generated password works once and must be changed at first sign-in.
            db::accounts::set_operator_password(pool, id, &hash, shown).await?;
            println!("operator {email} created");
            if shown {
                println!("one-time password: {password}");
                println!(
                    "(it works once: choose your own password and set up two-step sign-in at first sign-in)"
                );
            }
            Ok(())
        }
        Command::Operator(OperatorCmd::ResetPassword {
            email,
            password_stdin,
            mfa_off,
        }) => {
            let Some(id) = db::accounts::operator_id(pool, email.trim()).await? else {
                bail!("no operator has the email \"{}\"", email.trim())
            };
            let (password, shown) = if password_stdin {
                let pw = read_password_stdin()?;
                auth::check_new_password(&pw, &pw, &email, Some(&email))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                (pw, false)
            } else {
                (
                    auth::generate_temporary() + &auth::generate_temporary(),
                    true,
                )
            };
            let pw = password.clone();
            let hash = tokio::task::spawn_blocking(move || auth::hash_password(&pw)).await?;
            let mut tx = pool.begin().await?;
            db::accounts::set_operator_password(&mut *tx, id, &hash, shown).await?;
            if mfa_off {
                db::accounts::mfa_disable(&mut *tx, db::accounts::AccountId::Operator(id)).await?;
            }
            db::throttle::clear_account(&mut *tx, &db::throttle::operator_key(id)).await?;
            tx.commit().await?;
            println!(
                "operator {} password reset; their sessions ended",
                email.trim()
            );
            if mfa_off {
                println!("two-step sign-in turned off: it is set up again at the next sign-in");
            }
            if shown {
                println!("one-time password: {password}");
            }
            Ok(())
        }
        Command::Schools(SchoolsCmd::Import { district, file }) => {
            let d = ops::district_by_slug(pool, &district).await?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            match ops::import_schools(pool, d.id, &Actor::cli(), &bytes).await? {
                Ok(c) => {
                    println!(
                        "{}",
                        serde_json::json!({ "created": c.created, "updated": c.updated, "unchanged": c.unchanged })
                    );
                    Ok(())
                }
                Err(errors) => bail!(
                    "{} was not imported; nothing changed:\n{}",
                    file.display(),
                    errors.join("\n")
                ),
            }
        }
        Command::Import {
            district,
            file,
            source,
            scope,
            dry_run,
            map,
            set,
            approve,
            errors,
            completed,
        } => {
            let d = ops::district_by_slug(pool, &district).await?;
            if sync::is_oneroster_set(&file) || sync::is_sds_set(&file) {
                if dry_run
                    || !map.is_empty()
                    || !set.is_empty()
                    || source.is_some()
                    || scope.is_some()
                {
                    bail!("a OneRoster set takes no --dry-run, --map, --set, --source or --scope");
                }
                let summary = sync::import_set(pool, &clock, config, d.id, &file, approve).await?;
                print_summary(&summary)?;
                if summary.status == domain::RunStatus::Failed {
                    bail!("{}", summary.message.unwrap_or_default());
                }
                return Ok(());
            }
            let options = reconcile::run::RunOptions {
                overrides: map
                    .iter()
                    .map(|m| feed::headers::parse_override(m))
                    .collect::<Result<_, _>>()
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                fixed: set
                    .iter()
                    .map(|s| feed::headers::parse_fixed(s))
                    .collect::<Result<_, _>>()
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                save_mapping: false,
                scope,
                ..Default::default()
            };
            let summary = ops::import_file(
                pool, &clock, config, d.id, &file, source, dry_run, approve, options,
            )
            .await?;
            print_summary(&summary)?;
            for (path, kind) in [
                (errors, reconcile::report::FileKind::Errors),
                (completed, reconcile::report::FileKind::Completed),
            ] {
                if let Some(path) = path {
                    ops::write_run_file(pool, config, d.id, summary.run_id, kind, &path).await?;
                }
            }
            if summary.status == domain::RunStatus::Failed {
                bail!("{}", summary.message.unwrap_or_default());
            }
            Ok(())
        }
        Command::Undo {
            district,
            run_id,
            dry_run,
            approve,
        } => {
            let d = ops::district_by_slug(pool, &district).await?;
            let summary =
                reconcile::undo_run::undo_now(pool, &clock, d.id, run_id, dry_run, approve).await?;
            print_summary(&summary)?;
            if summary.summary.status == domain::RunStatus::Failed {
                bail!("{}", summary.summary.message.unwrap_or_default());
            }
            Ok(())
        }
        Command::Export { district } => {
            let d = ops::district_by_slug(pool, &district).await?;
            ops::export_master(pool, d.id, std::io::stdout().lock()).await
        }
        Command::Token(TokenCmd::Create { district, name }) => {
            let d = ops::district_by_slug(pool, &district).await?;
            println!(
                "{}",
                ops::create_token(pool, d.id, &name, &Actor::cli()).await?
            );
            Ok(())
        }
    }
}

fn read_password_stdin() -> Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s)?;
    let pw = s.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok(pw)
}

async fn serve(config: &config::Config, pool: sqlx::PgPool, clock: clock::Clock) -> Result<()> {
    let state = web::AppState::new(pool, Arc::new(config.clone()), clock);
    state.queue.requeue_orphans().await?;
    state.queue.start(config.workers);
    sync::schedule::spawn(
        state.pool.clone(),
        state.queue.clock.clone(),
        state.queue.notify.clone(),
    );
    alerts::spawn(
        state.pool.clone(),
        state.config.clone(),
        state.clock.clone(),
    );
    let server = web::start(state, shutdown_signal()).await?;
    tracing::info!(addr = %server.addr, "Rollcall is serving on http://{}", server.addr);
    server.handle.await??;
    tracing::info!("stopped serving");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// A command's JSON summary on standard output. A reader that stops early (`| head`) is no
/// failure: the command has done its work, and `println!` would panic on the closed pipe.
fn print_summary(summary: &impl serde::Serialize) -> Result<()> {
    use std::io::Write;
    let text = serde_json::to_string_pretty(summary)?;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
