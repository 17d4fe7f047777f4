//! Progress bars for long operations, shown only when stderr is a terminal and there is work
//! to show, and cleared when the work is done (logs and CI output stay clean); every other
//! line written to stderr while a bar may be up goes through [`suspend`], so it lands above
//! the bars instead of through them.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};

/// Every bar of the process, so that [`suspend`] can take them all off the screen.
static BARS: LazyLock<MultiProgress> = LazyLock::new(MultiProgress::new);

/// Set by `-q`: no bars at all.
static HIDDEN: AtomicBool = AtomicBool::new(false);

/// No bars from now on (`regdrop -q`).
pub fn hide() {
    HIDDEN.store(true, Ordering::SeqCst);
}

/// Runs `f` (which writes to stderr) with the bars cleared, then draws them again below
/// what it wrote. Without bars it just runs `f`.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    BARS.suspend(f)
}

/// Writes one line to stderr above the bars.
pub fn eprintln(line: &str) {
    suspend(|| eprintln!("{line}"));
}

/// A bar that may be hidden; cheap to update from hot loops. It appears at the first
/// update with a non-zero total, goes away at [`Progress::finish`] or when dropped (an
/// error path never leaves a frozen bar), and comes back at the next update after that.
pub struct Progress {
    template: &'static str,
    label: Mutex<String>,
    bar: Mutex<Option<ProgressBar>>,
    shown: bool,
}

impl Progress {
    fn new(label: &str, template: &'static str) -> Progress {
        Progress {
            template,
            label: Mutex::new(label.to_string()),
            bar: Mutex::new(None),
            shown: std::io::stderr().is_terminal() && !HIDDEN.load(Ordering::SeqCst),
        }
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
        if !self.shown || total == 0 {
            return;
        }
        let mut bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        let b = bar.get_or_insert_with(|| {
            let b = BARS.add(ProgressBar::new(total));
            b.set_style(
                ProgressStyle::with_template(self.template)
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b.set_message(self.label.lock().unwrap_or_else(|p| p.into_inner()).clone());
            b
        });
        if b.length() != Some(total) {
            b.set_length(total);
        }
        b.set_position(done);
    }

    /// Changes the label (a new phase of the same work).
    pub fn message(&self, label: &str) {
        *self.label.lock().unwrap_or_else(|p| p.into_inner()) = label.to_string();
        if let Some(b) = &*self.bar.lock().unwrap_or_else(|p| p.into_inner()) {
            b.set_message(label.to_string());
        }
    }

    /// Takes the bar off the screen (nothing is left behind).
    pub fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            b.finish_and_clear();
            BARS.remove(&b);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
