//! The command line (clap derive): what operators and sysadmins type.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "regdrop",
    version = crate::cmd::VERSION,
    about = "Delivers standing, encrypted vehicle-register extracts to customers' SFTP servers."
)]
pub struct Cli {
    /// The daemon config file [default: $REGDROP_CONFIG, ./regdrop.toml, /etc/regdrop/regdrop.toml]
    #[arg(long, global = true, env = "REGDROP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format on stderr: `text` lines, or one flat JSON object a line (for a log
    /// shipper).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Only errors on stderr: no log lines below error level, no progress lines or bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log lines: -v regdrop's debug lines, -vv its trace lines and the libraries'
    /// debug lines. $REGDROP_LOG (an env-filter like `info,regdrop=debug`) overrides both.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line, every field at the top level.
    Json,
}

/// `regdrop check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Check only these subscription files (with the daemon file's defaults) instead of
    /// the whole subscriptions folder; the environment check then covers their secrets.
    pub files: Vec<PathBuf>,
    /// Check the TOML only (offline): no secret files, register or folders are looked at.
    #[arg(long)]
    pub no_environment: bool,
    /// Print one JSON document (problems with file, line, column, key, message, hint; notes;
    /// a summary) instead of lines (README "JSON output").
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config and every subscription file (every problem of every file, each
    /// as file:line:column: key: what is wrong; what to do), then check what the next run
    /// will need for the service user: secret files (exist, 0600, readable, load), the
    /// register, the spool and state folders. Exit 78 when anything is wrong.
    Check(CheckArgs),
    /// List the fields of the catalog (names for custom reports), marking personal data.
    Fields,
    /// Print the next fire times of one or all subscriptions, in the subscription's zone, in
    /// UTC and in the machine's local time.
    Next {
        /// Subscription id (all when omitted).
        sub: Option<String>,
        /// How many fire times per subscription.
        #[arg(long, default_value_t = 5)]
        count: usize,
        /// Start after this time (RFC 3339, e.g. 2026-03-28T12:00:00Z) instead of now.
        #[arg(long)]
        after: Option<String>,
        /// One JSON document on stdout (README "JSON output").
        #[arg(long)]
        json: bool,
    },
    /// Upcoming fires of all subscriptions in one list sorted by time, with time left, local
    /// time beside UTC and the last run's result (like `systemctl list-timers`).
    Agenda {
        /// At most this many lines.
        #[arg(long, default_value_t = 50)]
        count: usize,
        /// List every fire within this span (e.g. 36h, 7d, 2w) instead of each
        /// subscription's next fire.
        #[arg(long)]
        within: Option<String>,
        /// Start after this time (RFC 3339) instead of now.
        #[arg(long)]
        after: Option<String>,
        /// One JSON document on stdout (README "JSON output").
        #[arg(long)]
        json: bool,
    },
    /// Show the row count and the first rows of a subscription's extract (personal fields
    /// masked). Nothing is written.
    Preview {
        /// Subscription id.
        sub: String,
        /// How many rows to show.
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
        /// Subscription id.
        sub: String,
        /// The file to write (its code tables beside it).
        #[arg(long)]
        out: PathBuf,
        /// Evaluate the period as for a run scheduled at this time (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
        /// For a subscription with `[encryption] mode = "passphrase"` (e-mail deliveries
        /// make a passphrase per delivery): seal this extract with the passphrase in FILE
        /// (0600) instead.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Run the daemon: deliver every subscription on its schedule until SIGTERM/SIGINT
    /// (SIGHUP reloads). Exit 78 when the daemon config is invalid.
    Run,
    /// Go again with a run in `needs_attention` or `failed`, after fixing its cause.
    Retry {
        /// The run id (`regdrop status` lists them), e.g. acme-parking-20261125T050000Z.
        run: String,
    },
    /// Subscriptions with their last run and next fire time, the runs needing an operator,
    /// runs resolved lately and invalid subscription files. Exit 0 when nothing needs anyone,
    /// 3 when runs need attention, 4 when subscription files are invalid, 5 for both.
    Status {
        /// One JSON document on stdout instead of the table (README "JSON output").
        #[arg(long)]
        json: bool,
    },
    /// Close runs in `needs_attention` or `failed` with an operator's decision: who (the OS
    /// user, and --by), when and why are kept with the run. A resolved run no longer counts
    /// as needing attention and is never retried; a second resolution is refused.
    Resolve {
        /// The run id(s) (`regdrop status` lists them), e.g. acme-parking-20261125T050000Z.
        #[arg(required = true)]
        runs: Vec<String>,
        /// What was decided and why (required, not empty), e.g. "customer got it by hand".
        #[arg(long)]
        reason: String,
        /// Who decided, when that is not the OS user typing (kept beside the OS user).
        #[arg(long)]
        by: Option<String>,
    },
    /// The register: generate a synthetic one, import the authority's DSV dump, stats.
    #[command(subcommand)]
    Register(RegisterCmd),
    /// Deliver a subscription now: generate, seal, upload, verify, receipt. The run is for
    /// --at (default: now). A failed attempt is retried in the foreground under the
    /// subscription's [retry] policy (up to its deadline, hours by default; each wait is
    /// announced, Ctrl-C stops resumably); --no-retry makes one attempt.
    Deliver {
        /// Subscription id.
        sub: String,
        /// The run's scheduled time (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
        /// One attempt, then stop with its reason (a retryable failure leaves the run
        /// `failed`; `regdrop retry RUN` goes on with it).
        #[arg(long)]
        no_retry: bool,
    },
    /// Connect, check the host key, log in, check the folder is writable (a temp file that
    /// is removed), list the server's SFTP extensions. Uploads no data.
    Probe {
        /// Subscription id.
        sub: String,
        /// One JSON document on stdout (README "JSON output").
        #[arg(long)]
        json: bool,
    },
    /// Host keys.
    #[command(subcommand)]
    Hostkey(HostkeyCmd),
    /// Delivery receipts: list, show, verify the hash chain, export for billing.
    #[command(subcommand)]
    Receipts(ReceiptsCmd),
    /// See the main job on this machine: a small register, a loopback SFTP target, one
    /// subscription per report, scheduled deliveries, receipts, a decrypted sample.
    Demo {
        /// The demo's folder (replaced when it holds an earlier demo).
        #[arg(long, default_value = "regdrop-demo")]
        dir: PathBuf,
        /// Vehicles in the demo's synthetic register.
        #[arg(long, default_value_t = 50_000)]
        vehicles: u64,
        /// Scheduled fire times delivered per subscription.
        #[arg(long, default_value_t = 2)]
        cycles: usize,
    },
    /// Turn a customer's request into a subscription file: which data, contact e-mail and
    /// mobile, SFTP host/port and user, age recipient (flags; asked on a terminal when
    /// missing). Scans and pins the host key; never asks for secrets.
    NewSubscription(Box<crate::cmd::new_subscription::Args>),
    /// Serve one folder over SFTP on loopback (the demo target; not for production).
    DemoServer {
        /// The folder served (the SFTP root).
        #[arg(long)]
        root: PathBuf,
        /// 127.0.0.1:PORT (0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:2222")]
        listen: std::net::SocketAddr,
        /// The user name that may log in.
        #[arg(long, default_value = "demo")]
        user: String,
        /// An OpenSSH public-key line (or a .pub file) allowed to log in.
        #[arg(long)]
        authorized_key: Option<String>,
        /// A file holding a password that is allowed to log in.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Where the server's host key is kept (created when missing).
        #[arg(long)]
        host_key: Option<PathBuf>,
    },
    /// Lay out a machine for the service: /etc/regdrop (a config `check` accepts, an empty
    /// subscriptions/ with the commented examples beside it, secrets/), the systemd unit and
    /// the `regdrop` system user. Never overwrites a file; says what it made and skipped.
    Init(InitArgs),
    /// Print a shell completion script: `regdrop completions bash >
    /// /usr/share/bash-completion/completions/regdrop`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `regdrop man > /usr/share/man/man1/regdrop.1`.
    Man,
}

#[derive(Debug, Subcommand)]
pub enum HostkeyCmd {
    /// Print the server's keys as lines to paste into `host_keys`, with fingerprints.
    Scan {
        /// HOST or HOST:PORT (default port 22).
        addr: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 10)]
        timeout_secs: u64,
        /// One JSON document on stdout (README "JSON output").
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReceiptsCmd {
    /// One line per receipt.
    List {
        /// Only this subscription's receipts.
        #[arg(long)]
        subscription: Option<String>,
        /// Only receipts delivered on or after this date (YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
        /// One JSON document on stdout (README "JSON output").
        #[arg(long)]
        json: bool,
    },
    /// Everything one receipt records.
    Show {
        /// The receipt id (`regdrop receipts list` shows them).
        id: i64,
    },
    /// Walk the hash chain; exit 1 and name the first broken link.
    Verify,
    /// Export for billing and for the customer.
    Export {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        /// A calendar month (YYYY-MM) in the default time zone.
        #[arg(long)]
        month: Option<String>,
        /// Only this subscription's receipts.
        #[arg(long)]
        subscription: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExportFormat {
    /// One row a receipt, with a header.
    Csv,
    /// A JSON array of receipts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum RegisterCmd {
    /// Create a deterministic synthetic register.
    Generate(GenerateArgs),
    /// Load the authority's technical DSV dump (`¤`, UTF-8 or ISO-8859-1, LF or CRLF).
    Import {
        /// The authority's DSV file.
        file: PathBuf,
        /// `utf-8` or `iso-8859-1`; detected when omitted.
        #[arg(long)]
        encoding: Option<String>,
        /// The register already holds vehicles: add these to them.
        #[arg(long, conflicts_with = "replace")]
        append: bool,
        /// The register already holds vehicles: remove them (and their ownerships) first.
        #[arg(long)]
        replace: bool,
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
    /// How many vehicles.
    #[arg(long, default_value_t = 100_000)]
    pub vehicles: u64,
    /// The seed: the same seed and count give the same register.
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

/// `regdrop init`: where and how to install.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Install under this folder instead of / (a package's staging root, an image being
    /// built, a test). The user is created there only when DIR/etc/passwd exists and init
    /// runs as root (`useradd --prefix DIR`); otherwise the command is printed.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Print what would be made and kept; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}
