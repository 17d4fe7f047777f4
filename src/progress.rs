//! Progress bars for long operations, shown only when stderr is a terminal (logs and CI
//! output stay clean).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// A bar that may be hidden; cheap to update from hot loops.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(label: &str, template: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        Progress { bar: Some(bar) }
    }

    /// A bar counting rows.
    pub fn rows(label: &str) -> Progress {
        Progress::new(
            label,
            "{msg:>10} [{bar:30}] {human_pos}/{human_len} rows ({elapsed}, eta {eta})",
        )
    }

    /// A bar counting bytes.
    pub fn bytes(label: &str) -> Progress {
        Progress::new(
            label,
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
    }

    pub fn update(&self, done: u64, total: u64) {
        if let Some(b) = &self.bar {
            if b.length() != Some(total) {
                b.set_length(total);
            }
            b.set_position(done);
        }
    }

    /// Changes the label (a new phase of the same work).
    pub fn message(&self, label: &str) {
        if let Some(b) = &self.bar {
            b.set_message(label.to_string());
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
