//! Shared scans through the real `regdrop run` process against a real OpenSSH sshd: seven
//! subscriptions with one register query fire together (one of them in csv, one with a
//! wrong pinned host key, one whose server is down, one whose uploads are cut) and another
//! with another filter. The five whose targets answer share one scan; the others run
//! alone. Each delivered one gets its own receipt and a file the `age` CLI decrypts, with
//! its own key, to exactly the plaintext a solo run seals; the failing ones are retried
//! (or wait for an operator after the host key) alone, without a receipt or a file under a
//! final name, and a failing target check costs no extract.

use crate::util::daemon_env::{fast_retry, wait_for_or, Env, WRONG_KEY};
use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::files::ls;
use crate::util::sshd::{current_user, Sshd};
use crate::util::{free_port, http_get};
use chrono::Utc;
use regdrop::core::config::location::DbLocation;
use regdrop::core::plan::RunPlan;
use regdrop::pipeline::artifact::{self, Workshop};
use regdrop::store::{ReceiptFilter, RunState};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_regdrop");

pub(super) fn spawn(env: &Env) -> Child {
    spawn_logging(env, "info")
}

/// The daemon of `env`, logging per `filter` (`REGDROP_LOG`) to `daemon.log`.
pub(super) fn spawn_logging(env: &Env, filter: &str) -> Child {
    let err = std::fs::File::create(env.path().join("daemon.log")).unwrap();
    Command::new(BIN)
        .arg("--config")
        .arg(env.config())
        .arg("run")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env("REGDROP_LOG", filter)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap()
}

pub(super) fn log(env: &Env) -> String {
    std::fs::read_to_string(env.path().join("daemon.log")).unwrap_or_default()
}

/// A subscription of `extract` sealed to `recipient`, delivered to `127.0.0.1:port`.
pub(super) fn sub(
    id: &str,
    port: u16,
    host_key: &str,
    key_file: &Path,
    remote: &Path,
    extract: &str,
    recipient: &str,
) -> String {
    format!(
        "id = \"{id}\"\ncustomer = \"Test {id} AS\"\n[schedule]\ncron = \"0 6 * * *\"\ncatch_up = \"once\"\n\
         [target]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"{user}\"\nhost_keys = [\"{host_key}\"]\n\
         auth = {{ key_file = \"{key}\" }}\nremote_dir = \"{remote}\"\nconnect_timeout_secs = 5\n\
         [extract]\n{extract}\n[encryption]\nrecipients = [\"{recipient}\"]\n[retry]\n{retry}\n",
        user = current_user(),
        key = key_file.display(),
        remote = remote.display(),
        retry = fast_retry(3),
    )
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

pub(super) fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_with_one_query_share_a_scan_and_each_gets_its_own_receipt() {
    let sshd = Sshd::start();
    let metrics = free_port();
    let env = Env::new(3000, &format!("metrics_listen = \"127.0.0.1:{metrics}\"\n"));
    let same = "report = \"technical\"\nformat = \"dsv\"";
    let down = free_port();
    // The target check before the scan passes; every upload after it is cut.
    let cut = Proxy::with(
        0,
        sshd.port,
        Faults {
            spare_first: 1,
            cut_after: Some(64 * 1024),
            ..Faults::default()
        },
    )
    .await;
    use RunState::{Delivered, Failed, NeedsAttention};
    // (id, port, host key, extract, how its run ends, sealed by the shared scan)
    let subs: [(&str, u16, &str, &str, RunState, bool); 8] = [
        ("s1", sshd.port, &sshd.host_pub, same, Delivered, true),
        ("s2", sshd.port, &sshd.host_pub, same, Delivered, true),
        ("s3", sshd.port, &sshd.host_pub, same, Delivered, true),
        (
            "s4csv",
            sshd.port,
            &sshd.host_pub,
            "report = \"technical\"\nformat = \"csv\"\nline_ending = \"crlf\"",
            Delivered,
            true,
        ),
        (
            "s5other",
            sshd.port,
            &sshd.host_pub,
            "report = \"technical\"\nformat = \"dsv\"\n[extract.filter]\nmodel = [\"GOLF\"]",
            Delivered,
            false,
        ),
        // Its target fails the check: no extract for it, and nothing written.
        (
            "s6wrongkey",
            sshd.port,
            WRONG_KEY,
            same,
            NeedsAttention,
            false,
        ),
        ("s7down", down, &sshd.host_pub, same, Failed, false),
        // Sealed with the others; its uploads fail, are retried and give up alone.
        ("s8cut", cut.port, &sshd.host_pub, same, Failed, true),
    ];
    let mut keys = Vec::new();
    for (id, port, host_key, extract, _, _) in subs {
        let identity = env.path().join(format!("{id}.agekey"));
        let recipient = crate::util::cli::age_keygen(&identity);
        let remote = sshd.remote_dir(id);
        env.write_sub(
            id,
            &sub(
                id,
                port,
                host_key,
                &sshd.user_key,
                &remote,
                extract,
                &recipient,
            ),
        );
        env.seed_old_run(id, Utc::now() - chrono::Duration::days(3));
        keys.push((identity, remote));
    }
    let caught_up = |id: &str| {
        env.runs(id)
            .into_iter()
            .find(|r| r.state_reason.as_deref() != Some("seeded by the test"))
    };
    let mut daemon = spawn(&env);
    for (id, _, _, _, want, _) in subs {
        wait_for_or(
            90,
            &format!("{id} {want}"),
            || caught_up(id).filter(|r| r.state == want),
            || log(&env),
        )
        .await;
    }
    let body = wait_for_or(
        30,
        "the metrics",
        || http_get(metrics, "/metrics"),
        || log(&env),
    )
    .await;
    let st = Command::new("kill")
        .arg("-TERM")
        .arg(daemon.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    daemon.wait().unwrap();
    let log = log(&env);

    // One scan for the five runs with one query whose targets answered.
    assert_eq!(metric(&body, "regdrop_shared_scans_total"), 1.0, "{log}");
    assert_eq!(
        metric(&body, "regdrop_shared_scan_runs_total"),
        5.0,
        "{log}"
    );
    let scan_line = log
        .lines()
        .find(|l| l.contains("Shared scan sealed"))
        .unwrap_or_else(|| panic!("no shared scan in the log:\n{log}"));
    let loaded = regdrop::loader::load(&env.config()).unwrap();
    let store = env.store();
    let receipts = store.receipts(&ReceiptFilter::default()).unwrap();
    assert_eq!(receipts.len(), 5, "{receipts:?}");
    for ((id, _, _, _, want, shared), (identity, remote)) in subs.iter().zip(&keys) {
        assert_eq!(scan_line.contains(id), *shared, "{id}: {scan_line}");
        let run = caught_up(id).unwrap();
        let receipt = store.receipt_for_run(&run.id).unwrap();
        let attempts = store.attempts(&run.id).unwrap();
        match want {
            Delivered => {
                let receipt = receipt.unwrap_or_else(|| panic!("{id}: no receipt"));
                assert_eq!(attempts.len(), 1, "{id}: {attempts:?}");
                assert_as_solo(&env, &loaded, id, &run, &receipt, identity, remote);
            }
            _ => {
                assert!(receipt.is_none(), "{id}");
                // Retried while it could help (3 attempts), once for a wrong host key.
                let n = if *want == NeedsAttention { 1 } else { 3 };
                assert_eq!(attempts.len(), n, "{id}: {attempts:?}");
                // No file under a final name on its server.
                let files = ls(remote);
                assert!(files.iter().all(|f| f.starts_with('.')), "{id}: {files:?}");
                if *shared {
                    // Kept in the spool for an operator's retry.
                    let a = run.artifact.as_ref().expect("sealed");
                    assert!(Path::new(&a.path).exists(), "{id}");
                } else {
                    assert!(files.is_empty(), "{id}: {files:?}");
                    assert!(
                        run.artifact.is_none(),
                        "{id}: a failing target cost an extract"
                    );
                }
            }
        }
    }
    assert!(cut.connections() >= 4, "the check, then 3 uploads");
}

/// The delivered file of `run` decrypts with the customer's `identity` to exactly the
/// plaintext a solo run of its plan seals, and its receipt says so.
pub(super) fn assert_as_solo(
    env: &Env,
    loaded: &regdrop::loader::Loaded,
    id: &str,
    run: &regdrop::store::Run,
    receipt: &regdrop::store::Receipt,
    identity: &Path,
    remote: &Path,
) {
    let name = receipt.remote_path.rsplit('/').next().unwrap();
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(remote.join(name))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sub = loaded
        .subscriptions
        .iter()
        .find(|s| s.id.as_str() == id)
        .unwrap();
    let plan = RunPlan::new(sub, run.scheduled_at, None).unwrap();
    let solo = artifact::generate_and_seal(
        Workshop {
            register: &DbLocation::Sqlite(env.path().join("register.sqlite")),
            spool: &env.path().join("solo"),
            xlsx_row_limit: None,
            passphrase: None,
        },
        id,
        &plan,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(sha256(&out.stdout), solo.sealed.plaintext_sha256, "{id}");
    assert_eq!(
        receipt.plaintext_sha256, solo.sealed.plaintext_sha256,
        "{id}"
    );
    assert_eq!(receipt.rows, solo.rows, "{id}");
    // No temp file left beside it.
    assert!(
        ls(remote).iter().all(|f| !f.ends_with(".part")),
        "{id}: {:?}",
        ls(remote)
    );
}
