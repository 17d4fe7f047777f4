//! The `regdrop` binary: parse the command line, set up logging, run, map errors to exit
//! codes (78 for configuration errors, 1 for everything else).

use clap::Parser;
use regdrop::cmd::cli::Cli;
use regdrop::cmd::logging::{self, Verbosity};
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
            | C::Init(_)
            | C::Completions { .. }
            | C::Man
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
    // The demo, and `deliver` at a terminal, talk to a person in their own lines; INFO log
    // lines would only repeat them (-v brings them back). Elsewhere (the journal, a cron
    // mail, a script) the log lines are the record.
    use std::io::IsTerminal;
    let person = match cli.command {
        C::Demo { .. } => true,
        C::Deliver { .. } => std::io::stderr().is_terminal(),
        _ => false,
    };
    logging::init(
        cli.log_format,
        Verbosity {
            quiet: cli.quiet,
            verbose: cli.verbose,
            default: if person { "warn" } else { "info" },
        },
    );
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
                logging::print_error(&exit.message);
                return ExitCode::from(exit.code);
            }
            // The message and each cause once (docs/design.md §9).
            logging::print_error(&format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}
