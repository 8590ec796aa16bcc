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
