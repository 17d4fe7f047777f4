//! The `regdrop` binary: parse the command line, set up logging, run, map errors to exit
//! codes (78 for configuration errors, 1 for everything else).

use clap::Parser;
use regdrop::cmd::cli::{Cli, LogFormat};
use regdrop::cmd::{self, Exit};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    use regdrop::cmd::cli::Command as C;
    if matches!(
        cli.command,
        C::Check(_)
            | C::Fields
            | C::Next { .. }
            | C::Agenda { .. }
            | C::Preview { .. }
            | C::Receipts(_)
            | C::Status { .. }
            | C::Resolve { .. }
            | C::Extract { .. }
            | C::Register(_)
    ) {
        // Printing commands end quietly when the reader goes away (`| head`), as Unix
        // tools do; network commands keep Rust's ignored SIGPIPE (a closed socket is an
        // error to handle, not a signal) and print through `outln!`, which ends quietly
        // with 141 on a closed stdout.
        // SAFETY: called before any thread is started; resets one signal to its default.
        #[allow(unsafe_code)]
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // The demo talks to a person; its log lines would only interleave with its story.
    let quiet = matches!(cli.command, cmd::cli::Command::Demo { .. });
    init_logging(cli.log_format, if quiet { "warn" } else { "info" });
    // A panic is a bug: it goes to the log (the journal) with its place, never silently.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "regdrop panicked; this is a bug, please report it with the log");
        default_hook(info);
    }));
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<Exit>() {
                eprintln!("error: {}", exit.message);
                return ExitCode::from(exit.code);
            }
            // The message and each cause once (docs/design.md §9).
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REGDROP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a person at a terminal; the journal and log files get plain text.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
