//! Notifications (README "Notifications") from the daemon, against real servers on
//! loopback: OpenSSH sshd as the customer's server, an aiosmtpd SMTP server recording what
//! it is sent ([`crate::util::smtp`]) and a Python HTTP server recording webhook POSTs
//! ([`crate::util::http_sink`]). A wrong pinned host key puts a run in `needs_attention`:
//! the operators get one mail and one webhook POST with the documented JSON; fixing it and
//! delivering sends one recovery and the customer's delivery notice (file, size, rows,
//! SHA-256, receipt, no register value); a restart sends nothing again; a webhook that
//! answers 500 is retried and never stops or fails the delivery.

use crate::util::daemon_env::{self, fast_retry, sub_toml, wait_for, Env, WRONG_KEY};
use crate::util::http_get;
use crate::util::http_sink::HttpSink;
use crate::util::smtp::{text_body, Smtp, Tls};
use crate::util::sshd::Sshd;
use chrono::{DateTime, Utc};
use regdrop::daemon::{Clock, Intent, Options};
use regdrop::store::{Channel, NoticeState, ReceiptFilter, RunState};
use std::sync::Arc;
use std::time::Duration;

const OPERATOR: &str = "drift@vegvesen.example";
const CONTACT: &str = "it-ansvarlig@kunde.example";
const MOBILE: &str = "+4791234567";

/// A message as the SMTP server got it: envelope recipients, subject, decoded text body.
#[derive(Debug)]
struct Mail {
    to: Vec<String>,
    subject: String,
    body: String,
}

fn mails_of(smtp: &Smtp) -> Vec<Mail> {
    smtp.received()
        .into_iter()
        .map(|r| {
            // The Subject header, unfolded (RFC 5322: a line break before white space).
            let text = String::from_utf8_lossy(&r.raw);
            let head = text
                .split("\r\n\r\n")
                .next()
                .unwrap_or("")
                .replace("\r\n ", " ");
            let subject = head
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .map(String::from);
            Mail {
                to: r.rcpt_tos.clone(),
                subject: subject.unwrap_or_default(),
                body: text_body(&r.raw),
            }
        })
        .collect()
}

/// A clock `speed` times faster than real time, from `base`.
struct Fast {
    base: DateTime<Utc>,
    started: std::time::Instant,
    speed: f64,
}

impl Clock for Fast {
    fn now(&self) -> DateTime<Utc> {
        let ms = self.started.elapsed().as_secs_f64() * self.speed * 1000.0;
        self.base + chrono::Duration::milliseconds(ms as i64)
    }
    fn real(&self, span: chrono::Duration) -> Duration {
        span.to_std().unwrap_or_default().div_f64(self.speed)
    }
}

/// An hour of schedule every 12 real seconds, starting 2 real seconds before 06:00.
fn fast_clock() -> Arc<dyn Clock> {
    Arc::new(Fast {
        base: "2026-11-25T05:50:00Z".parse().unwrap(),
        started: std::time::Instant::now(),
        speed: 300.0,
    })
}

/// `regdrop.toml` additions: the SMTP sink as `[smtp]`, the operator address and the HTTP
/// sink as one webhook, quick retries.
fn notify_toml(smtp: &Smtp, http: &HttpSink, attempts: u32) -> String {
    format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"regdrop@vegvesen.example\"\ntimeout_secs = 5\n\
         [notify]\nemail = [\"{OPERATOR}\"]\nattempts = {attempts}\nretry_base_secs = 1\n\
         [[notify.webhook]]\nname = \"ops\"\nurl = \"http://127.0.0.1:{}/hooks/regdrop\"\ntimeout_secs = 5\n",
        smtp.port, http.port
    )
}

/// An hourly subscription to sshd pinned to `host_key`, with a contact that asked for
/// delivery notices.
fn sub(sshd: &Sshd, host_key: &str, remote: &std::path::Path, cron: &str) -> String {
    format!(
        "contact = {{ email = \"{CONTACT}\", mobile = \"{MOBILE}\" }}\n{}\n[delivery]\nnotice = true\nfile_name = \"kunde_{{run:%Y%m%dT%H%M}}.{{ext}}\"\n",
        sub_toml(
            "kunde",
            cron,
            "skip",
            sshd.port,
            host_key,
            &sshd.user_key,
            remote,
            &fast_retry(3)
        )
    )
}

fn start(
    env: &Env,
    clock: Arc<dyn Clock>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::UnboundedSender<Intent>,
) {
    // `Env::runs` opens the store; its folder exists before the daemon makes the file.
    std::fs::create_dir_all(env.path().join("state")).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop, h) = daemon_env::start_daemon(
        env,
        Options {
            signals: false,
            metrics: false,
            clock,
            intents: Some(rx),
            ..Options::default()
        },
    );
    (stop, h, tx)
}

/// Text of the register that must never reach a message: its plates, chassis numbers and
/// makes (see `daemon_env::make_register`).
fn assert_no_register_values(text: &str) {
    for v in ["EL000", "WVWZZZ", "TESLA", "VOLKSWAGEN", "TOYOTA", "MODEL "] {
        assert!(
            !text.contains(v),
            "register value {v:?} in a message:\n{text}"
        );
    }
}

/// The one mail and one POST of a run needing attention, as documented.
fn assert_needs_attention_alert(
    mails: &[Mail],
    posts: &[crate::util::http_sink::Request],
    bad: &regdrop::store::Run,
) {
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(mails[0].to, [OPERATOR]);
    assert_eq!(
        mails[0].subject,
        format!("[regdrop] kunde: needs attention (run {})", bad.id)
    );
    assert!(mails[0].body.contains("host key"), "{}", mails[0].body);
    assert!(
        mails[0]
            .body
            .contains(&format!("`regdrop retry {}`", bad.id)),
        "{}",
        mails[0].body
    );
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert_eq!(posts[0].method, "POST");
    assert_eq!(posts[0].path, "/hooks/regdrop");
    assert_eq!(posts[0].header("content-type"), Some("application/json"));
    let j: serde_json::Value = serde_json::from_str(&posts[0].body).unwrap();
    assert_eq!(j["schema"], 1);
    assert_eq!(j["event"], "needs_attention");
    assert_eq!(j["subscription"], "kunde");
    assert_eq!(j["customer"], "Test kunde AS");
    assert_eq!(j["run"], bad.id.as_str());
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert_eq!(j["scheduled_at"], at(bad.scheduled_at));
    assert_eq!(j["state"], "needs_attention");
    assert_eq!(j["attempts"], 1);
    assert_eq!(
        j["next_fire"],
        at(bad.scheduled_at + chrono::Duration::hours(1))
    );
    assert!(
        j["reason"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("host key"),
        "{j}"
    );
    for k in ["receipt_id", "file", "bytes", "rows", "sha256"] {
        assert!(j[k].is_null(), "{k}: {j}");
    }
}

/// The customer's one delivery notice names file, size, rows, SHA-256 and receipt.
fn assert_customer_notice(mails: &[Mail], receipt: &regdrop::store::Receipt) {
    let notice: Vec<_> = mails.iter().filter(|m| m.to == [CONTACT]).collect();
    assert_eq!(notice.len(), 1, "{mails:#?}");
    let file = receipt.remote_path.rsplit('/').next().unwrap();
    assert_eq!(
        notice[0].subject,
        format!("Delivery {}: {file}", receipt.id)
    );
    for part in [
        format!("File: {file}"),
        format!("Size: {} bytes", receipt.bytes),
        format!("Rows: {}", receipt.rows),
        format!("SHA-256: {}", receipt.ciphertext_sha256),
        format!("Receipt: {}", receipt.id),
    ] {
        assert!(
            notice[0].body.contains(&part),
            "{part} in {}",
            notice[0].body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_host_key_alerts_once_then_recovery_and_the_customer_notice_and_a_restart_sends_nothing_again(
) {
    let sshd = Sshd::start();
    let smtp = Smtp::start(Tls::None);
    let http = HttpSink::start();
    let env = Env::new(40, &notify_toml(&smtp, &http, 5));
    let remote = sshd.remote_dir("notify-once");
    env.write_sub("kunde", &sub(&sshd, WRONG_KEY, &remote, "0 * * * *"));
    let (stop, daemon, intents) = start(&env, fast_clock());

    // The first hour: the host key is refused; the run needs attention.
    let bad = wait_for(30, "the run needing attention", || {
        env.runs("kunde")
            .into_iter()
            .find(|r| r.state == RunState::NeedsAttention)
    })
    .await;
    // One mail to the operator and one webhook POST.
    let mails = wait_for(30, "the operator mail", || {
        let m = mails_of(&smtp);
        (!m.is_empty()).then_some(m)
    })
    .await;
    let posts = wait_for(30, "the webhook POST", || {
        let r = http.requests();
        (!r.is_empty()).then_some(r)
    })
    .await;
    // Fix the key before the next hour (12 real seconds) and reload.
    env.write_sub("kunde", &sub(&sshd, &sshd.host_pub, &remote, "0 * * * *"));
    intents.send(Intent::Reload).unwrap();

    assert_needs_attention_alert(&mails, &posts, &bad);

    // The next hour delivers: one recovery to each operator channel, and the customer's notice.
    let receipt = wait_for(40, "the next hour's delivery", || {
        env.store()
            .receipts(&ReceiptFilter::default())
            .ok()?
            .into_iter()
            .next()
    })
    .await;
    let mails = wait_for(30, "the recovery and the notice", || {
        let m = mails_of(&smtp);
        (m.len() >= 3).then_some(m)
    })
    .await;
    let posts = wait_for(30, "the recovery POST", || {
        let r = http.requests();
        (r.len() >= 2).then_some(r)
    })
    .await;
    // Stop before the next hour would deliver (and notify) again.
    let _ = stop.send(());
    daemon.await.unwrap();

    let recovered: Vec<_> = mails[1..].iter().filter(|m| m.to == [OPERATOR]).collect();
    assert_eq!(recovered.len(), 1, "{mails:#?}");
    assert_eq!(
        recovered[0].subject,
        format!("[regdrop] kunde: recovered (run {})", receipt.run_id)
    );
    let j: serde_json::Value = serde_json::from_str(&posts[1].body).unwrap();
    assert_eq!(j["event"], "recovered");
    assert_eq!(j["run"], receipt.run_id.as_str());
    assert_eq!(j["state"], "delivered");
    assert_eq!(j["receipt_id"], receipt.id);
    assert_eq!(j["sha256"], receipt.ciphertext_sha256.as_str());
    assert!(j["reason"].is_null(), "{j}");

    assert_customer_notice(&mails, &receipt);
    assert_eq!(receipt.rows, 40);
    // Metadata only: no register value anywhere, and the contact's details never in an alert.
    for m in &mails {
        assert_no_register_values(&format!("{}\n{}", m.subject, m.body));
    }
    for p in &posts {
        let text = &p.body;
        assert_no_register_values(text);
        assert!(!text.contains(CONTACT) && !text.contains(MOBILE), "{text}");
    }
    for m in recovered.iter().chain([&&mails[0]]) {
        assert!(
            !m.body.contains(CONTACT) && !m.body.contains(MOBILE),
            "{}",
            m.body
        );
    }
    assert_eq!((mails.len(), posts.len()), (3, 2), "{mails:#?}\n{posts:#?}");
    // The store has each as sent, once.
    let sent = env.store().notifications_of(&bad.id).unwrap();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert!(
        sent.iter().all(|n| n.state == NoticeState::Sent),
        "{sent:#?}"
    );

    // A restart (the problem run is still needs_attention, the last day) says nothing again.
    let (mails_before, posts_before) = (mails_of(&smtp).len(), http.requests().len());
    env.write_sub("kunde", &sub(&sshd, &sshd.host_pub, &remote, "0 6 1 1 *"));
    let (stop, daemon, _intents) = start(&env, Arc::new(regdrop::daemon::SystemClock));
    let status = regdrop::daemon::status_file_of(&env.path().join("state/regdrop.sqlite"));
    wait_for(30, "the restarted daemon", || {
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&status).ok()?).ok()?;
        (doc["pid"].as_u64().is_some() && doc["stopped"] == false).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = stop.send(());
    daemon.await.unwrap();
    assert_eq!(
        mails_of(&smtp).len(),
        mails_before,
        "{:#?}",
        mails_of(&smtp)
    );
    assert_eq!(
        http.requests().len(),
        posts_before,
        "{:#?}",
        http.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_answering_500_is_retried_and_never_stops_the_delivery() {
    let sshd = Sshd::start();
    let smtp = Smtp::start(Tls::None);
    let http = HttpSink::start();
    http.answer(500, 100);
    let env = Env::new(30, &notify_toml(&smtp, &http, 3));
    let remote = sshd.remote_dir("notify-500");
    env.write_sub("kunde", &sub(&sshd, WRONG_KEY, &remote, "0 * * * *"));
    let (stop, daemon, intents) = start(&env, fast_clock());

    let bad = wait_for(30, "the run needing attention", || {
        env.runs("kunde")
            .into_iter()
            .find(|r| r.state == RunState::NeedsAttention)
    })
    .await;
    wait_for(30, "the operator mail", || {
        (!mails_of(&smtp).is_empty()).then_some(())
    })
    .await;
    env.write_sub("kunde", &sub(&sshd, &sshd.host_pub, &remote, "0 * * * *"));
    intents.send(Intent::Reload).unwrap();

    // The delivery goes through while the webhook keeps failing.
    let receipt = wait_for(40, "the next hour's delivery", || {
        env.store()
            .receipts(&ReceiptFilter::default())
            .ok()?
            .into_iter()
            .next()
    })
    .await;
    // Each of the two alerts is tried `attempts` = 3 times, then given up.
    let given_up = wait_for(40, "both webhook alerts given up", || {
        let s = env.store();
        let mut n = s.notifications_of(&bad.id).ok()?;
        n.extend(s.notifications_of(&receipt.run_id).ok()?);
        let hooks: Vec<_> = n
            .into_iter()
            .filter(|n| n.channel == Channel::Webhook)
            .collect();
        (hooks.len() == 2 && hooks.iter().all(|n| n.state == NoticeState::Failed)).then_some(hooks)
    })
    .await;
    // The e-mails went out regardless: the alert, the recovery, the notice.
    wait_for(20, "three mails", || {
        (mails_of(&smtp).len() == 3).then_some(())
    })
    .await;
    let _ = stop.send(());
    daemon.await.unwrap();

    for n in &given_up {
        assert_eq!(n.tries, 3, "{n:#?}");
        assert!(
            n.last_error.as_deref().unwrap_or("").contains("500"),
            "{n:#?}"
        );
    }
    let posts = http.requests();
    assert_eq!(posts.len(), 6, "{posts:#?}");
    // A retry sends the same body.
    assert_eq!(posts[0].body, posts[1].body);
    assert_eq!(posts[1].body, posts[2].body);
    // The delivery is whole: delivered, its receipt, its file on the server.
    let run = env.store().get_run(&receipt.run_id).unwrap().unwrap();
    assert_eq!(run.state, RunState::Delivered);
    let name = receipt.remote_path.rsplit('/').next().unwrap();
    assert!(remote.join(name).exists());
}

#[test]
fn check_names_every_notify_problem_at_its_line_and_a_notice_needs_a_contact() {
    let check = |env: &Env| {
        crate::util::cli::run(
            crate::util::cli::regdrop()
                .arg("--config")
                .arg(env.config())
                .arg("check"),
        )
    };
    let env = Env::new(1, "[notify]\nemail = [\"drift@example.no\", \"not an address\"]\nevents = [\"failed\", \"delivered\"]\n\
         [[notify.webhook]]\nurl = \"https://user:pw@chat.example/h\"\n[[notify.webhook]]\nurl = \"http://chat.example/h\"\n");
    let out = check(&env);
    let text = out.text();
    assert_eq!(out.code, 78, "{text}");
    for line in [
        "regdrop.toml:12:30: notify.email[1]: `not an address` is not an e-mail address",
        "regdrop.toml:13:21: notify.events[1]: `delivered` is not an operator event",
        "regdrop.toml:15:7: notify.webhook[0].url: the URL holds a user name or password",
        "regdrop.toml:17:7: notify.webhook[1].url: `http://chat.example/h` is plain http to another machine; use https",
        "regdrop.toml:12:9: notify.email: e-mail alerts go through the [smtp] table, and there is none",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }

    // A subscription asking for delivery notices without an address to send them to.
    let env = Env::new(1, "");
    env.write_sub(
        "kunde",
        &format!(
            "{}\n[delivery]\nnotice = true\n",
            sub_toml(
                "kunde",
                "0 6 * * *",
                "once",
                22,
                WRONG_KEY,
                std::path::Path::new("/nonexistent/key"),
                std::path::Path::new("/in"),
                "",
            )
        ),
    );
    let out = check(&env);
    let text = out.text();
    assert_eq!(out.code, 78, "{text}");
    assert!(
        text.contains("kunde.toml:")
            && text.contains(": delivery.notice: a delivery notice needs an address"),
        "{text}"
    );
}

/// The real `regdrop run`: the webhook's credential header from a 0600 file, a 500 answer
/// retried, and the tries counted on the metrics endpoint per channel; the token never in
/// the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_process_sends_the_webhook_credential_and_counts_failed_tries() {
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start();
    let smtp = Smtp::start(Tls::None);
    let http = HttpSink::start();
    http.answer(500, 1);
    let metrics = crate::util::free_port();
    let env = Env::new(
        10,
        &format!(
            "metrics_listen = \"127.0.0.1:{metrics}\"\n{}auth_file = \"hook.token\"\n",
            notify_toml(&smtp, &http, 4)
        ),
    );
    let token = env.path().join("hook.token");
    std::fs::write(&token, "Bearer t0ken-5f2a9c\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let remote = sshd.remote_dir("notify-process");
    env.write_sub(
        "kunde",
        &sub(&sshd, WRONG_KEY, &remote, "0 6 * * *").replace("\"skip\"", "\"once\""),
    );
    // An old finished run, so catch-up `once` fires the latest missed 06:00 at start; it
    // ended three days ago (older than the start's look-back for missed alerts).
    let old = Utc::now() - chrono::Duration::days(3);
    std::fs::create_dir_all(env.path().join("state")).unwrap();
    let s = regdrop::store::Store::open(env.path().join("state/regdrop.sqlite"))
        .unwrap()
        .with_clock(move || old);
    let r = s
        .create_run(&regdrop::store::NewRun {
            subscription: "kunde".into(),
            scheduled_at: old,
        })
        .unwrap()
        .into_run();
    s.set_state(&r.id, RunState::Failed, Some("seeded"))
        .unwrap();
    drop(s);
    let log = env.path().join("daemon.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_regdrop"))
        .arg("--config")
        .arg(env.config())
        .arg("run")
        .env_remove("NOTIFY_SOCKET")
        .env("REGDROP_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    // The first POST is answered 500, the second (after retry_base_secs) 200.
    let body = wait_for(40, "the counters", || {
        let b = http_get(metrics, "/metrics")?;
        (b.contains("regdrop_notifications_sent_total{channel=\"webhook\"} 1")
            && b.contains("regdrop_notifications_sent_total{channel=\"email\"} 1"))
        .then_some(b)
    })
    .await;
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let st = wait_for(30, "the daemon to exit", || child.try_wait().unwrap()).await;
    assert_eq!(st.code(), Some(0));

    assert!(
        body.contains("regdrop_notifications_failed_total{channel=\"webhook\"} 1"),
        "{body}"
    );
    assert!(
        !body.contains("regdrop_notifications_failed_total{channel=\"email\"}"),
        "{body}"
    );
    let posts = http.requests();
    assert_eq!(posts.len(), 2, "{posts:#?}");
    for p in &posts {
        assert_eq!(p.header("authorization"), Some("Bearer t0ken-5f2a9c"));
    }
    assert_eq!(posts[0].body, posts[1].body);
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(!logs.contains("t0ken-5f2a9c"), "{logs}");
    assert!(
        logs.contains("Notification not sent; trying again."),
        "{logs}"
    );
}
