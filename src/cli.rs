//! The command line (clap derive): what operators and sysadmins type.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "regdrop", version, about = "Delivers standing, encrypted vehicle-register extracts to customers' SFTP servers.")]
pub struct Cli {
    /// The daemon config file [default: $REGDROP_CONFIG, ./regdrop.toml, /etc/regdrop/regdrop.toml]
    #[arg(long, global = true, env = "REGDROP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config and every subscription; exit 78 when anything is invalid.
    Check,
    /// List the fields of the catalog (names for custom reports), marking personal data.
    Fields,
    /// Print the next fire times of one or all subscriptions.
    Next {
        /// Subscription id (all when omitted).
        sub: Option<String>,
        #[arg(long, default_value_t = 5)]
        count: usize,
        /// Start after this time (RFC 3339, e.g. 2026-03-28T12:00:00Z) instead of now.
        #[arg(long)]
        after: Option<String>,
    },
    /// Show the row count and the first rows of a subscription's extract (personal fields
    /// masked). Nothing is written.
    Preview {
        sub: String,
        #[arg(long, default_value_t = 10)]
        rows: usize,
        /// Evaluate the period as for a run scheduled at this time (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
        /// Print the SQL the extract runs (parameters written in) and nothing else.
        #[arg(long)]
        sql: bool,
    },
    /// Write exactly the sealed artifact a delivery would upload, and print its rows,
    /// bytes and both SHA-256 sums.
    Extract {
        sub: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        at: Option<String>,
    },
    /// Run the daemon: deliver every subscription on its schedule until SIGTERM/SIGINT
    /// (SIGHUP reloads). Exit 78 when the daemon config is invalid.
    Run,
    /// Go again with a run in `needs_attention` or `failed`, after fixing its cause.
    Retry {
        /// The run id (`regdrop status` lists them), e.g. acme-parking-20261125T050000Z.
        run: String,
    },
    /// Subscriptions with their last run and next fire time, and the runs needing attention.
    Status,
    /// The register: generate a synthetic one, import the authority's DSV dump, stats.
    #[command(subcommand)]
    Register(RegisterCmd),
}

#[derive(Debug, Subcommand)]
pub enum RegisterCmd {
    /// Create a deterministic synthetic register.
    Generate(GenerateArgs),
    /// Load the authority's technical DSV dump (`¤`, UTF-8 or ISO-8859-1, LF or CRLF).
    Import {
        file: PathBuf,
        /// `utf-8` or `iso-8859-1`; detected when omitted.
        #[arg(long)]
        encoding: Option<String>,
        #[command(flatten)]
        db: RegisterPath,
    },
    /// Counts and distributions of the register.
    Stats {
        #[command(flatten)]
        db: RegisterPath,
    },
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[arg(long, default_value_t = 100_000)]
    pub vehicles: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub db: RegisterPath,
}

#[derive(Debug, Args)]
pub struct RegisterPath {
    /// Register file [default: `register` of the config]
    #[arg(long)]
    pub register: Option<PathBuf>,
}
