//! The command line (SPEC §7). `rollcall` with no subcommand serves.

use crate::config::Config;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "rollcall",
    version,
    about = "Keeps a school district's user accounts in step with its SIS"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the portal (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Districts (tenants).
    #[command(subcommand)]
    District(DistrictCmd),
    /// Installation operators (create districts in the browser).
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// Schools of a district.
    #[command(subcommand)]
    Schools(SchoolsCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Run a user CSV through the reconcile pipeline and print a JSON summary.
    Import {
        #[arg(long)]
        district: String,
        file: PathBuf,
        /// Source key (default: the file name). Uploading the same key again replaces that feed.
        #[arg(long)]
        source: Option<String>,
        /// What the file covers: source (its users missing from it are archived; the
        /// default), district (every user not from a roster sync; the master CSV sent back),
        /// patch (adds and updates only; the default for a fixed error file).
        #[arg(long, value_name = "source|district|patch", value_parser = crate::intake::scope_arg)]
        scope: Option<crate::domain::Scope>,
        /// Preview only: plan and report, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Map a column to a field for this run: COLUMN=FIELD (or COLUMN=ignore).
        #[arg(long = "map", value_name = "COLUMN=FIELD")]
        map: Vec<String>,
        /// Give a field a fixed value for every row: FIELD=VALUE (e.g. role=Student).
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        set: Vec<String>,
        /// Apply past the mass-change guard.
        #[arg(long)]
        approve: bool,
        /// Write the error file (failed rows plus an Error column) here.
        #[arg(long, value_name = "FILE")]
        errors: Option<PathBuf>,
        /// Write the completed file (user_guid, username, outcome, temporary password) here.
        #[arg(long, value_name = "FILE")]
        completed: Option<PathBuf>,
    },
    /// Undo a completed run (a preview with --dry-run) and print a JSON summary.
    Undo {
        #[arg(long)]
        district: String,
        /// The run to undo (its id, as `rollcall import` printed it).
        run_id: uuid::Uuid,
        /// Preview only: plan and report, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply past the mass-change guard.
        #[arg(long)]
        approve: bool,
    },
    /// Write the district's master CSV (every non-archived user) to standard output.
    Export {
        #[arg(long)]
        district: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DistrictCmd {
    /// Create a district and its first admin; prints a one-time password.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        slug: String,
        #[arg(long)]
        admin_email: String,
        /// Read the admin's password from standard input instead of generating one.
        #[arg(long)]
        admin_password_stdin: bool,
    },
    /// List districts.
    List,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCmd {
    /// Create an operator; prints a one-time password unless --password-stdin.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SchoolsCmd {
    /// Create or update schools from a CSV with columns external_id,name.
    Import {
        #[arg(long)]
        district: String,
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Print a new API token for a district.
    Create {
        #[arg(long)]
        district: String,
        #[arg(long, default_value = "command line")]
        name: String,
    },
}
