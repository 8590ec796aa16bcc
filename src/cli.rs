//! The command line (SPEC §7). `rollcall` with no subcommand serves.

use crate::config::Config;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
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
    /// A new password for an operator (ends their sessions and clears their sign-in
    /// throttle); prints a one-time password unless --password-stdin.
    ResetPassword {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
        /// Also turn two-step sign-in off (a lost phone): it is set up again at sign-in.
        #[arg(long)]
        mfa_off: bool,
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

/// Options every command uses: where the database is, and how it logs.
const EVERY_COMMAND: &[&str] = &["database_url", "data_dir", "log_json"];

/// The options (besides [`EVERY_COMMAND`]'s) that a command uses, by its name; `None` for
/// the server, which uses them all.
fn options_of(command: &str) -> Option<&'static [&'static str]> {
    match command {
        "serve" => None,
        // A file is read within the upload limit; feed passwords and roster sets need the key.
        "import" => Some(&["max_upload_mb", "secret_key"]),
        _ => Some(&[]),
    }
}

/// The command line, with each subcommand's `--help` listing only the options it uses.
/// The server's options stay accepted everywhere (one environment may serve every
/// command), only hidden from the help of the commands that ignore them.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    let globals: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for name in names {
        let Some(used) = options_of(&name) else {
            continue;
        };
        cmd = cmd.mut_subcommand(&name, |mut sub| {
            // A global option already on a subcommand is not copied onto it again: this
            // hidden copy is the one its help (and its own subcommands) get.
            for arg in &globals {
                let id = arg.get_id().as_str();
                if !EVERY_COMMAND.contains(&id) && !used.contains(&id) {
                    sub = sub.arg(arg.clone().hide(true));
                }
            }
            sub
        });
    }
    cmd
}

/// Parses the process's arguments (exits with the help or the error on a bad one).
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn help(args: &[&str]) -> String {
        let e = command()
            .try_get_matches_from(args)
            .expect_err("--help stops");
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        e.to_string()
    }

    #[test]
    fn each_command_lists_only_the_options_it_uses() {
        let import = help(&["rollcall", "import", "--help"]);
        for own in [
            "--district",
            "--dry-run",
            "--database-url",
            "--data-dir",
            "--max-upload-mb",
        ] {
            assert!(import.contains(own), "import --help lacks {own}:\n{import}");
        }
        for server in [
            "--bind",
            "--workers",
            "--drop-poll-secs",
            "--smtp-host",
            "--trust-proxy",
        ] {
            assert!(
                !import.contains(server),
                "import --help lists {server}:\n{import}"
            );
        }
        let create = help(&["rollcall", "district", "create", "--help"]);
        assert!(create.contains("--admin-email"), "{create}");
        assert!(create.contains("--database-url"), "{create}");
        assert!(!create.contains("--bind"), "{create}");
        assert!(!create.contains("--max-upload-mb"), "{create}");
        // The server's own help keeps every option.
        let serve = help(&["rollcall", "serve", "--help"]);
        for server in ["--bind", "--workers", "--drop-poll-secs", "--database-url"] {
            assert!(serve.contains(server), "serve --help lacks {server}");
        }
        assert!(help(&["rollcall", "--help"]).contains("--bind"));
    }

    #[test]
    fn hidden_options_are_still_accepted() {
        let m = command()
            .try_get_matches_from([
                "rollcall",
                "import",
                "--workers",
                "7",
                "--district",
                "d",
                "f.csv",
                "--bind",
                "0.0.0.0:9",
            ])
            .unwrap();
        let cli = Cli::from_arg_matches(&m).unwrap();
        assert_eq!(cli.config.workers, 7);
        assert_eq!(cli.config.bind, "0.0.0.0:9");
        assert!(matches!(cli.command, Some(Command::Import { .. })));
        let m = command()
            .try_get_matches_from(["rollcall", "--workers", "3", "district", "list"])
            .unwrap();
        assert_eq!(Cli::from_arg_matches(&m).unwrap().config.workers, 3);
    }
}
