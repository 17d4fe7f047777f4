//! Logging on stderr: text lines or one flat JSON object a line, the level from `-q`/`-v`
//! or `$REGDROP_LOG`, a syslog priority prefix on every line when stderr is the systemd
//! journal (sd-daemon(3): `<3>` error ... `<7>` debug), and each line written above any
//! progress bar ([`crate::progress::suspend`]).

use crate::cmd::cli::LogFormat;
use std::io::Write;
use std::sync::OnceLock;
use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer};

/// How much to log.
#[derive(Debug, Clone, Copy)]
pub struct Verbosity {
    /// `-q`: errors only.
    pub quiet: bool,
    /// `-v` count.
    pub verbose: u8,
    /// The level when neither flag is given (`info`, or `warn` where the command prints its
    /// own lines for a person).
    pub default: &'static str,
}

impl Verbosity {
    /// The env-filter directive: the flags first (typed for this run), then
    /// `$REGDROP_LOG`, then the default.
    fn filter(&self) -> EnvFilter {
        let flag = match (self.quiet, self.verbose) {
            (true, _) => Some("error"),
            (false, 0) => None,
            (false, 1) => Some("info,regdrop=debug"),
            (false, _) => Some("debug,regdrop=trace"),
        };
        match flag {
            Some(f) => EnvFilter::new(f),
            None => EnvFilter::try_from_env("REGDROP_LOG")
                .unwrap_or_else(|_| EnvFilter::new(self.default)),
        }
    }
}

/// Installs the global subscriber; `-q` also hides the progress bars.
pub fn init(format: LogFormat, v: Verbosity) {
    if v.quiet {
        crate::progress::hide();
    }
    use std::io::IsTerminal;
    let journal = journal();
    let w = Stderr { journal };
    let layer = match format {
        // Every field at the top level, beside `timestamp`, `level`, `target` and `message`
        // (what Loki, Elasticsearch and journald's JSON readers index). regdrop puts all
        // fields on its events (it opens no spans), so dropping the span objects loses
        // nothing.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(w)
            .boxed(),
        // The journal stamps every line itself, and shows no colours.
        LogFormat::Text if journal => tracing_subscriber::fmt::layer()
            .without_time()
            .with_ansi(false)
            .with_writer(w)
            .boxed(),
        // Colours only for a person at a terminal; log files get plain text.
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(w)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(layer)
        .with(v.filter())
        .init();
}

/// Whether stderr is the systemd journal's stream: `$JOURNAL_STREAM` (set by systemd for
/// a service whose output goes to the journal) names stderr's device and inode.
pub fn journal() -> bool {
    static JOURNAL: OnceLock<bool> = OnceLock::new();
    *JOURNAL.get_or_init(|| {
        std::env::var("JOURNAL_STREAM")
            .ok()
            .is_some_and(|v| stream_is_stderr(&v))
    })
}

fn stream_is_stderr(value: &str) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = value.trim().split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// The syslog priority of a level (sd-daemon(3)).
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Prints `message` as the error it is: `error: ...` on stderr, with the error priority
/// when stderr is the journal.
pub fn print_error(message: &str) {
    let line = format!("error: {message}\n");
    write_stderr(line.as_bytes(), journal().then_some(3));
}

/// Writes `text` to stderr above the bars, each line prefixed with `<prio>` when given.
fn write_stderr(text: &[u8], prio: Option<u8>) {
    let out = match prio {
        None => text.to_vec(),
        Some(p) => {
            let mut out = Vec::with_capacity(text.len() + 4);
            for line in text.split_inclusive(|&b| b == b'\n') {
                out.extend_from_slice(format!("<{p}>").as_bytes());
                out.extend_from_slice(line);
            }
            out
        }
    };
    crate::progress::suspend(|| {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(&out);
        let _ = e.flush();
    });
}

/// The subscriber's writer: one [`Event`] buffer per log event.
struct Stderr {
    journal: bool,
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Event;
    fn make_writer(&'a self) -> Event {
        Event {
            prio: self.journal.then_some(6),
            buf: Vec::new(),
        }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Event {
        Event {
            prio: self.journal.then(|| priority(meta.level())),
            buf: Vec::new(),
        }
    }
}

/// One formatted event, written out whole when the subscriber drops it.
struct Event {
    prio: Option<u8>,
    buf: Vec<u8>,
}

impl Write for Event {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            write_stderr(&self.buf, self.prio);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_sd_daemon_priorities() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::DEBUG), 7);
        assert_eq!(priority(&Level::TRACE), 7);
    }

    #[test]
    fn a_journal_stream_that_is_not_stderr_or_not_a_pair_is_not_the_journal() {
        assert!(!stream_is_stderr("garbage"));
        assert!(!stream_is_stderr("1:x"));
        // No file has inode 0.
        assert!(!stream_is_stderr("0:0"));
    }
}
