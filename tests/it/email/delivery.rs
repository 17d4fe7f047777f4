//! E-mail deliveries through the real binary (`regdrop deliver`), a real SMTP server
//! (aiosmtpd) and a real SMS gateway stand-in (the HTTP sink), all on loopback: the mail
//! arrives, its attachment opens with the reference `age` CLI and the passphrase the SMS
//! gateway got, and holds what a solo `regdrop extract` holds; a 4xx then 2xx ends
//! delivered once (one SMS, one mail, one receipt); a 5xx ends needs_attention; an
//! over-limit extract sends neither SMS nor mail; a kill -9 while the server holds the
//! mail leaves the run needs_attention, never a second mail.

use super::{age_decrypt, passphrase_of};
use crate::util::cli::{regdrop_in, run};
use crate::util::daemon_env::{fast_retry, Env};
use crate::util::http_sink::HttpSink;
use crate::util::smtp::{attachments, text_body, Smtp, Tls};
use regdrop::store::RunState;
use std::time::{Duration, Instant};

const AT: &str = "2026-11-25T05:00:00Z";

/// A daemon folder whose `[smtp]` and `[sms]` point at the two servers.
fn env(smtp: &Smtp, sms: &HttpSink) -> Env {
    Env::new(
        300,
        &format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"Uttrekk <uttrekk@vegvesen.example>\"\ntimeout_secs = 10\n\
             [sms]\nurl = \"{}\"\nfields = {{ to = \"{{number}}\", message = \"{{text}}\" }}\ntimeout_secs = 5\n",
            smtp.port,
            sms.url("/sms")
        ),
    )
}

/// A `technical` subscription by e-mail with a passphrase by SMS.
fn sub(id: &str, extra_email: &str, retry: &str) -> String {
    format!(
        "id = \"{id}\"\ncustomer = \"Test {id} AS\"\n\
         [contact]\nmobile = \"+47 912 34 567\"\n\
         [schedule]\ncron = \"0 6 * * *\"\n\
         [email]\nto = [\"Kunde <data@kunde.example>\"]\nsubject = \"Uttrekk {{id}} {{run:%Y-%m-%d}}\"\n{extra_email}\n\
         [extract]\nreport = \"technical\"\nformat = \"dsv\"\n\
         [encryption]\nmode = \"passphrase\"\n\
         [delivery]\nfile_name = \"{id}_{{run:%Y%m%d}}.{{ext}}\"\n\
         [retry]\n{retry}\n"
    )
}

fn deliver(env: &Env, id: &str) -> crate::util::cli::Out {
    run(regdrop_in(env.path()).args(["deliver", id, "--at", AT]))
}

#[test]
fn a_passphrase_mail_opens_with_the_sms_passphrase_and_holds_the_solo_extract() {
    let (smtp, sms) = (Smtp::start(Tls::None), HttpSink::start());
    let env = env(&smtp, &sms);
    env.write_sub("mail", &sub("mail", "", &fast_retry(3)));
    let out = deliver(&env, "mail");
    assert!(
        out.ok(),
        "{}\n{}\n{}",
        out.text(),
        smtp.log_text(),
        sms.log_text()
    );

    let mails = smtp.wait_for(1);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt_tos, ["data@kunde.example"]);
    let att = attachments(&mails[0].raw);
    assert_eq!(att.len(), 1);
    assert_eq!(att[0].0, "mail_20261125.dsv.age");
    let body = text_body(&mails[0].raw);
    assert!(
        body.contains("age -d -o mail_20261125.dsv mail_20261125.dsv.age"),
        "{body}"
    );
    assert!(body.contains("+47 ••• •• 567"), "{body}");

    let texts = sms.requests();
    assert_eq!(texts.len(), 1, "one SMS");
    let v: serde_json::Value = serde_json::from_str(&texts[0].body).unwrap();
    assert_eq!(v["to"], "+4791234567");
    let text = v["message"].as_str().unwrap();
    let pass = passphrase_of(text);
    assert!(pass.len() >= 26, "{text}");
    // The passphrase is in the SMS only: not in the mail, the receipt or the run's logs.
    let raw = String::from_utf8_lossy(&mails[0].raw).to_string();
    assert!(!raw.contains(&pass) && !out.text().contains(&pass));
    // The reference in the SMS is in the mail too.
    let reference = text
        .split("(ref ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    assert!(body.contains(reference), "{body}");

    let dir = tempfile::tempdir().unwrap();
    let sealed = dir.path().join("mail.dsv.age");
    std::fs::write(&sealed, &att[0].1).unwrap();
    let mailed = age_decrypt(&pass, &sealed, &dir.path().join("mail.dsv"));
    // A wrong passphrase does not open it.
    let wrong = std::process::Command::new("python3")
        .arg(crate::util::py_server::script("age_decrypt_pty.py"))
        .arg("not-the-passphrase")
        .arg(&sealed)
        .arg(dir.path().join("nope"))
        .output()
        .unwrap();
    assert!(!wrong.status.success());

    // The same run extracted alone, sealed with a passphrase of our own.
    let pf = crate::util::servers::password_file(dir.path(), "solo-extract-pass");
    let solo = dir.path().join("solo.dsv.age");
    let out = run(regdrop_in(env.path())
        .args(["extract", "mail", "--at", AT, "--passphrase-file"])
        .arg(&pf)
        .arg("--out")
        .arg(&solo));
    assert!(out.ok(), "{}", out.text());
    let alone = age_decrypt("solo-extract-pass", &solo, &dir.path().join("solo.dsv"));
    assert_eq!(
        mailed, alone,
        "the mailed extract differs from the solo extract"
    );
    assert!(mailed.len() > 1000);

    // The receipt: transport, recipients, Message-ID, the masked number.
    let r = env
        .store()
        .receipt_for_run(&env.runs("mail")[0].id)
        .unwrap()
        .unwrap();
    let t = r.transport.as_ref().unwrap();
    assert_eq!(t.kind, "email");
    let e = t.email.as_ref().unwrap();
    assert_eq!(e.to, ["Kunde <data@kunde.example>"]);
    assert_eq!(e.passphrase_sms_to.as_deref(), Some("+47 ••• •• 567"));
    assert!(
        raw.contains(&format!("Message-ID: <{}>", e.message_id)),
        "{raw}"
    );
    assert_eq!(
        r.remote_path,
        "mailto:Kunde <data@kunde.example>/mail_20261125.dsv.age"
    );
    assert!(
        r.recipients[0].contains("SMS to +47 ••• •• 567"),
        "{:?}",
        r.recipients
    );
    assert!(env.store().verify_chain().unwrap().broken.is_none());
}

#[test]
fn a_4xx_then_2xx_is_delivered_once_with_one_sms_and_one_mail() {
    let (smtp, sms) = (Smtp::start(Tls::None), HttpSink::start());
    let env = env(&smtp, &sms);
    env.write_sub("retry", &sub("retry", "", &fast_retry(4)));
    smtp.fail_data(451, 2);
    let out = deliver(&env, "retry");
    assert!(out.ok(), "{}\n{}", out.text(), smtp.log_text());
    assert_eq!(smtp.wait_for(1).len(), 1, "one mail");
    assert_eq!(
        sms.requests().len(),
        1,
        "one passphrase for the one sealed file"
    );
    let runs = env.runs("retry");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state, RunState::Delivered);
    let attempts = env.store().attempts(&runs[0].id).unwrap();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert!(
        attempts[0].message.as_deref().unwrap().contains("451"),
        "{attempts:?}"
    );
    // The passphrase of the SMS opens the mail that went out after the retries.
    let pass = passphrase_of(
        &serde_json::from_str::<serde_json::Value>(&sms.requests()[0].body).unwrap()["message"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.age");
    std::fs::write(&f, &attachments(&smtp.received()[0].raw)[0].1).unwrap();
    age_decrypt(&pass, &f, &dir.path().join("a"));
}

#[test]
fn a_5xx_needs_attention_and_sends_no_mail() {
    let (smtp, sms) = (Smtp::start(Tls::None), HttpSink::start());
    let env = env(&smtp, &sms);
    env.write_sub("refused", &sub("refused", "", &fast_retry(4)));
    smtp.fail_data(554, 5);
    let out = deliver(&env, "refused");
    assert!(!out.ok());
    assert!(smtp.received().is_empty());
    let runs = env.runs("refused");
    assert_eq!(runs[0].state, RunState::NeedsAttention);
    assert!(
        runs[0].state_reason.as_deref().unwrap().contains("554"),
        "{:?}",
        runs[0].state_reason
    );
    assert_eq!(
        env.store().attempts(&runs[0].id).unwrap().len(),
        1,
        "a 5xx is not retried"
    );
    assert!(env.store().receipt_for_run(&runs[0].id).unwrap().is_none());
}

#[test]
fn an_extract_over_the_limit_sends_neither_sms_nor_mail() {
    let (smtp, sms) = (Smtp::start(Tls::None), HttpSink::start());
    let env = env(&smtp, &sms);
    env.write_sub("big", &sub("big", "max_bytes = 1024", &fast_retry(3)));
    let out = deliver(&env, "big");
    assert!(!out.ok());
    assert!(
        out.text().contains("deliver this extract by SFTP"),
        "{}",
        out.text()
    );
    let runs = env.runs("big");
    assert_eq!(runs[0].state, RunState::NeedsAttention);
    assert!(runs[0]
        .state_reason
        .as_deref()
        .unwrap()
        .contains("over [email] max_bytes = 1024"));
    assert!(smtp.received().is_empty(), "no mail");
    assert!(sms.requests().is_empty(), "no SMS");
    // Nothing of it stays in the spool.
    let spool: Vec<_> = std::fs::read_dir(env.path().join("spool"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .collect();
    assert!(spool.is_empty(), "{spool:?}");
}

#[test]
fn a_kill_while_the_server_holds_the_mail_never_sends_a_second_one() {
    let (smtp, sms) = (Smtp::start(Tls::None), HttpSink::start());
    let env = env(&smtp, &sms);
    env.write_sub("crash", &sub("crash", "", &fast_retry(3)));
    smtp.stall(600);
    let mut child = regdrop_in(env.path())
        .args(["deliver", "crash", "--at", AT])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The server has the whole message and has not answered: kill -9 now.
    let deadline = Instant::now() + Duration::from_secs(300);
    while smtp.received().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no mail reached the server\n{}",
            smtp.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let run_id = env.runs("crash")[0].id.clone();
    assert_eq!(env.runs("crash")[0].state, RunState::Uploading);

    // Resuming the run (as the daemon does on start) sends nothing: it may be out.
    let out = deliver(&env, "crash");
    assert!(!out.ok(), "{}", out.text());
    let r = &env.runs("crash")[0];
    assert_eq!(r.state, RunState::NeedsAttention);
    let reason = r.state_reason.clone().unwrap();
    assert!(reason.contains("may have been sent"), "{reason}");
    let raw = String::from_utf8_lossy(&smtp.received()[0].raw).to_string();
    let mid = reason
        .split("Message-ID ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    assert!(
        raw.contains(&format!("Message-ID: <{mid}>")),
        "{reason}\n{raw}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(smtp.received().len(), 1, "never a second mail");
    assert_eq!(sms.requests().len(), 1, "never a second passphrase");
    assert!(env.store().receipt_for_run(&run_id).unwrap().is_none());

    // The operator asked the customer (it did not arrive) and retries: one more mail, with
    // the same file (no new SMS), and one receipt.
    let out = run(regdrop_in(env.path()).args(["retry", run_id.as_str()]));
    assert!(out.ok(), "{}", out.text());
    assert_eq!(smtp.wait_for(2).len(), 2);
    assert_eq!(sms.requests().len(), 1);
    assert_eq!(env.runs("crash")[0].state, RunState::Delivered);
}
