//! Mutation fuzzing of configuration files: takes the example subscriptions (and the
//! example daemon file), mutates them (numbers to extremes, strings to empty, huge or odd,
//! keys dropped, duplicated or added with extreme values, cron lines that never fire, bytes
//! cut or flipped), and checks that validation never panics and that for every file it
//! accepts the daemon's load/schedule/reload path never panics either. Deterministic for
//! a seed. Shared by [`crate::config::mutated_files`] and the fault campaign.

use rand::{Rng, SeedableRng};
use regdrop::core::retry::ErrorClass;
use regdrop::daemon::{self, Intent, Job, Options, TokioClock, Work};
use regdrop::loader::{daemon_from_str, subscription_from_str};
use regdrop::pipeline::delivery::{DeliveryError, Outcome};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "59",
    "86400",
    "86401",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "100000000000000",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "0.5",
    "1.0000000001",
    "65535",
    "65536",
];

const STRINGS: &[&str] = &[
    "\"\"",
    "\"   \"",
    "\"\\t\"",
    "\"../../etc/passwd\"",
    "\"{\"",
    "\"}\"",
    "\"{run:%}\"",
    "\"{run:%Q%Y}\"",
    "\"{id}/{id}\"",
    "\".hidden\"",
    "\"¤¤¤\"",
    "\"\\u0000\"",
    "\"æøå 🚗\"",
    "\"0 0 30 2 *\"",
    "\"0 0 31 4 *\"",
    "\"* * * * *\"",
    "\"*/0 * * * *\"",
    "\"60 24 32 13 8\"",
    "\"@reboot\"",
    "\"@yearly\"",
    "\"0 0 29 2 *\"",
    "\"Mars/Olympus\"",
    "\"UTC\"",
    "\"previous_century\"",
    "\"xlsx\"",
    "\"none\"",
    "[]",
    "[\"\"]",
    "{}",
    "true",
    "1979-05-27",
    "1979-05-27T07:32:00Z",
];

/// Keys added with extreme values into their tables.
const EXTRA_KEYS: &[(&str, &str)] = &[
    ("[schedule]", "jitter_secs"),
    ("[schedule]", "catch_up"),
    ("[target]", "connect_timeout_secs"),
    ("[target]", "port"),
    ("[target]", "create_dirs"),
    ("[target]", "known_hosts"),
    ("[retry]", "base_secs"),
    ("[retry]", "factor"),
    ("[retry]", "cap_secs"),
    ("[retry]", "max_attempts"),
    ("[retry]", "deadline_secs"),
    ("[delivery]", "file_name"),
    ("[delivery]", "if_exists"),
    ("[extract]", "period"),
    ("[extract]", "period_field"),
    ("[extract]", "columns"),
];

fn pick<'a, R: Rng>(rng: &mut R, v: &'a [&'a str]) -> &'a str {
    v[rng.gen_range(0..v.len())]
}

/// One to three mutations of `text`.
pub fn mutate<R: Rng>(text: &str, rng: &mut R) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..rng.gen_range(1..=3) {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let i = rng.gen_range(0..lines.len());
        match rng.gen_range(0..9) {
            // A value to an extreme number or an odd string.
            0..=2 => {
                if let Some((k, _)) = lines[i].split_once('=') {
                    let v = if rng.gen_bool(0.5) {
                        pick(rng, NUMBERS).to_string()
                    } else {
                        pick(rng, STRINGS).to_string()
                    };
                    lines[i] = format!("{}= {v}", k);
                }
            }
            // A huge string.
            3 => {
                if let Some((k, _)) = lines[i].split_once('=') {
                    let n = [200, 5_000, 100_000][rng.gen_range(0..3)];
                    let c = ["a", "{id}", "%Y", "/", "¤"][rng.gen_range(0..5)];
                    lines[i] = format!("{k}= \"{}\"", c.repeat(n / c.len().max(1)));
                }
            }
            // Drop a line.
            4 => {
                lines.remove(i);
            }
            // Duplicate a line.
            5 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            // Add a known key with an extreme value to its table (the table if missing).
            6 => {
                let (table, key) = EXTRA_KEYS[rng.gen_range(0..EXTRA_KEYS.len())];
                let v = if rng.gen_bool(0.7) {
                    pick(rng, NUMBERS)
                } else {
                    pick(rng, STRINGS)
                };
                match lines.iter().position(|l| l.trim() == table) {
                    Some(at) => lines.insert(at + 1, format!("{key} = {v}")),
                    None => {
                        lines.push(table.to_string());
                        lines.push(format!("{key} = {v}"));
                    }
                }
            }
            // Cut the file at a random byte.
            7 => {
                let joined = lines.join("\n");
                let mut cut = rng.gen_range(0..=joined.len());
                while !joined.is_char_boundary(cut) {
                    cut -= 1;
                }
                lines = joined[..cut].lines().map(str::to_string).collect();
            }
            // Flip one character.
            _ => {
                let chars: Vec<char> = lines[i].chars().collect();
                if !chars.is_empty() {
                    let j = rng.gen_range(0..chars.len());
                    let c = ['"', '[', ']', '=', '{', '}', '#', '\\', '\n', '0', ' ']
                        [rng.gen_range(0..11)];
                    let mut out: String = chars[..j].iter().collect();
                    out.push(c);
                    out.extend(&chars[j + 1..]);
                    lines[i] = out;
                }
            }
        }
    }
    lines.join("\n") + "\n"
}

/// What a mutation run counted.
#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub mutations: usize,
    pub accepted: usize,
    pub refused: usize,
    pub daemon_files: usize,
    pub cli_checks: usize,
    /// Each a description of a panic (validation, `check` or daemon start).
    pub panics: Vec<String>,
}

fn examples() -> (String, Vec<(String, String)>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let daemon = std::fs::read_to_string(root.join("config.example.toml")).unwrap();
    let mut subs: Vec<(String, String)> = std::fs::read_dir(root.join("subscriptions.example"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    subs.sort();
    (daemon, subs)
}

/// Mutates `n` subscription files (and `n / 10` daemon files) from the examples with
/// `seed`; validates each in-process; runs the real `regdrop check` over every batch;
/// starts the daemon (paused time, fake work, a reload) over all accepted files.
pub async fn campaign(n: usize, seed: u64, work_dir: &Path) -> Figures {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let (daemon_text, subs) = examples();
    let mut f = Figures::default();
    let base = work_dir.to_path_buf();
    let cfg_path = base.join("regdrop.toml");
    let inherited = daemon_from_str(&cfg_path, &daemon_text, &base)
        .expect("the example daemon file is valid")
        .inherited;
    // The daemon files.
    for i in 0..n.div_ceil(10) {
        let text = mutate(&daemon_text, &mut rng);
        f.mutations += 1;
        match catch_unwind(AssertUnwindSafe(|| {
            daemon_from_str(&cfg_path, &text, &base)
        })) {
            Ok(_) => {}
            Err(_) => f.panics.push(format!(
                "daemon file mutation {i} panicked in validation:\n{text}"
            )),
        }
    }
    // The subscription files, in batches through the CLI too.
    let batch_dir = base.join("batch");
    let accepted_dir = base.join("accepted");
    std::fs::create_dir_all(&accepted_dir).unwrap();
    let mut in_batch = 0;
    for i in 0..n {
        let (name, text) = &subs[rng.gen_range(0..subs.len())];
        let text = regex_lite_replace_id(text, &format!("m{i}"));
        let text = mutate(&text, &mut rng);
        f.mutations += 1;
        let file = PathBuf::from(format!("m{i}-{name}"));
        match catch_unwind(AssertUnwindSafe(|| {
            subscription_from_str(&file, &text, &inherited)
        })) {
            Ok(Ok(sub)) => {
                f.accepted += 1;
                std::fs::write(accepted_dir.join(&file), &text).unwrap();
                // The schedule and retry numbers of an accepted file, as the daemon uses them.
                let probe = catch_unwind(AssertUnwindSafe(|| {
                    let now: chrono::DateTime<chrono::Utc> =
                        "2026-11-25T05:00:00Z".parse().unwrap();
                    let _ = sub.schedule.upcoming(now, 3);
                    let _ = sub
                        .schedule
                        .last_missed(now - chrono::Duration::days(400), now);
                    for a in 1..=sub.retry.max_attempts.min(200) {
                        let _ = sub
                            .retry
                            .next(ErrorClass::Retryable, a, sub.retry.deadline, 0.999);
                    }
                }));
                if probe.is_err() {
                    f.panics.push(format!(
                        "accepted file {} panicked in schedule/retry:\n{text}",
                        file.display()
                    ));
                }
            }
            Ok(Err(problems)) => {
                f.refused += 1;
                assert!(!problems.is_empty(), "refused without a problem:\n{text}");
            }
            Err(_) => f
                .panics
                .push(format!("mutation {i} panicked in validation:\n{text}")),
        }
        std::fs::create_dir_all(&batch_dir).unwrap();
        std::fs::write(batch_dir.join(&file).with_extension("toml"), &text).unwrap();
        in_batch += 1;
        if in_batch == 100 || i + 1 == n {
            check_cli(&base, &daemon_text, &batch_dir, &mut f);
            std::fs::remove_dir_all(&batch_dir).unwrap();
            in_batch = 0;
        }
    }
    // Daemon start over every accepted file, then a reload.
    f.daemon_files = f.accepted;
    if let Err(p) = start_daemon(&base, &daemon_text, &accepted_dir).await {
        f.panics.push(p);
    }
    f
}

fn regex_lite_replace_id(text: &str, id: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("id = ") {
                format!("id = \"{id}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The real `regdrop check` over one folder of mutated files: exit 0 or 78, no panic.
fn check_cli(base: &Path, daemon_text: &str, subs: &Path, f: &mut Figures) {
    let cfg = base.join("check.toml");
    std::fs::write(
        &cfg,
        daemon_text.replace(
            "subscriptions_dir = \"subscriptions.example\"",
            &format!("subscriptions_dir = \"{}\"", subs.display()),
        ),
    )
    .unwrap();
    let out = super::cli::run(super::cli::regdrop().arg("--config").arg(&cfg).arg("check"));
    f.cli_checks += 1;
    if !(out.code == 0 || out.code == 78) || out.text().contains("panicked") {
        f.panics.push(format!(
            "`regdrop check` exited {}:\n{}",
            out.code,
            out.text()
        ));
    }
}

/// The daemon over `subs` for three days of paused time with fake work (errors, failures),
/// a reload in the middle. `Err` describes a panic.
async fn start_daemon(base: &Path, daemon_text: &str, subs: &Path) -> Result<(), String> {
    let cfg = base.join("daemon.toml");
    std::fs::write(
        &cfg,
        daemon_text.replace(
            "subscriptions_dir = \"subscriptions.example\"",
            &format!("subscriptions_dir = \"{}\"", subs.display()),
        ) + "\n",
    )
    .unwrap();
    let work = |job: Job, cancel: CancellationToken| async move {
        let run = job.run_id();
        // Retry arithmetic as a real run does it.
        for a in 1..=job.sub.retry.max_attempts.min(200) {
            let _ = job
                .sub
                .retry
                .next(ErrorClass::Retryable, a, Duration::ZERO, 0.999);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(7)) => {}
            _ = cancel.cancelled() => return Ok(Outcome::Interrupted { run }),
        }
        if run.len().is_multiple_of(2) {
            Err(DeliveryError::Task(
                "fake error outside the protocol".to_string(),
            ))
        } else {
            Ok(Outcome::Failed {
                run,
                reason: "fake".into(),
            })
        }
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let clock = Arc::new(TokioClock::starting_at(
        "2026-11-25T05:00:00Z".parse().unwrap(),
    ));
    let opts = Options {
        work: Some(Arc::new(work) as Arc<dyn Work>),
        clock,
        intents: Some(rx),
        signals: false,
        metrics: false,
    };
    let h = tokio::spawn(async move {
        daemon::run_with(
            cfg,
            tokio::time::sleep(Duration::from_secs(3 * 86_400)),
            opts,
        )
        .await
    });
    let reload = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(86_400)).await;
        let _ = tx.send(Intent::Reload);
        tokio::time::sleep(Duration::from_secs(3 * 86_400)).await;
        drop(tx);
    });
    let r = h.await;
    reload.abort();
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("the daemon refused to start: {e}")),
        Err(e) => Err(format!("the daemon panicked: {e}")),
    }
}
