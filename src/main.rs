//! The `regdrop` binary: parse the command line, set up logging, run, map errors to exit
//! codes (78 for configuration errors, 1 for everything else).

use clap::Parser;
use regdrop::cmd::cli::Cli;
use regdrop::cmd::logging::{self, Verbosity};
use regdrop::cmd::{self, Exit};
use std::process::ExitCode;

/// glibc's malloc, tuned for a process that streams through buffers of 64 KiB to 1 MiB
/// on a few threads: fixed thresholds (the dynamic ones hand freed buffers back to the
/// kernel and fault them in again, page by page: 36,000-120,000 minor faults and ~0.3 s
/// of system time per 1M-vehicle delivery, ~9,000 with these) and two arenas for all
/// threads (fewer half-empty heaps). Peak RSS of that delivery stays ~50 MiB
/// (docs/performance.md, "Memory").
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first in main, before any thread is started; mallopt only sets
    // allocator parameters.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    tune_malloc();
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
