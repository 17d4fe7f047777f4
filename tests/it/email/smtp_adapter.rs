//! `regdrop::mail::send` against a real SMTP server (aiosmtpd) on loopback: plain, STARTTLS
//! and implicit TLS with a throwaway certificate, AUTH from a 0600 file, every reply class
//! (4xx retryable, 5xx permanent), a lost reply after the whole message (unconfirmed, never
//! retryable), a refused connection, and a server whose certificate is not trusted.

use crate::util::servers::password_file;
use crate::util::smtp::{attachments, text_body, Smtp, Tls};
use regdrop::core::config::{SecretRef, SmtpAuthSpec, SmtpSpec, SmtpTls};
use regdrop::core::retry::{Classify, ErrorClass};
use regdrop::mail::{self, Attachment, Mail, MailError, Phase};
use std::time::Duration;

fn spec(s: &Smtp) -> SmtpSpec {
    SmtpSpec {
        host: "127.0.0.1".into(),
        port: s.port,
        tls: match s.tls {
            Tls::None => SmtpTls::None,
            Tls::Starttls => SmtpTls::StartTls,
            Tls::Implicit => SmtpTls::Implicit,
        },
        from: "Uttrekk <uttrekk@vegvesen.example>".into(),
        ca_file: s.cert.clone(),
        timeout: Duration::from_secs(10),
        auth: None,
    }
}

fn message(id: &str) -> Mail {
    Mail {
        from: "Uttrekk <uttrekk@vegvesen.example>".into(),
        to: vec![
            "kunde@example.no".into(),
            "Ola Nordmann <ola@example.no>".into(),
        ],
        subject: "Uttrekk fra kjøretøyregisteret".into(),
        body: "Vedlagt er uttrekket.\nÅpne det med: age -d fil.age\n".into(),
        attachments: vec![Attachment {
            name: "uttrekk_20261201.dsv.age".into(),
            content_type: "application/octet-stream".into(),
            data: (0..=255u8).cycle().take(70_000).collect(),
        }],
        message_id: mail::new_message_id(id, "uttrekk@vegvesen.example"),
    }
}

async fn send(spec: &SmtpSpec, m: &Mail) -> Result<mail::Sent, MailError> {
    mail::send(spec, m, || Ok(())).await
}

#[tokio::test]
async fn a_message_arrives_whole_over_each_tls_mode_with_its_message_id() {
    for tls in [Tls::None, Tls::Starttls, Tls::Implicit] {
        let server = Smtp::start(tls);
        let m = message("run-1");
        let sent = send(&spec(&server), &m)
            .await
            .unwrap_or_else(|e| panic!("{tls:?}: {e}\n{}", server.log_text()));
        assert_eq!(sent.message_id, m.message_id);
        assert!(
            sent.reply.contains("queued as T0001"),
            "{tls:?}: {}",
            sent.reply
        );
        let got = server.wait_for(1);
        assert_eq!(got.len(), 1, "{tls:?}");
        assert_eq!(got[0].mail_from, "uttrekk@vegvesen.example");
        assert_eq!(got[0].rcpt_tos, ["kunde@example.no", "ola@example.no"]);
        let raw = String::from_utf8_lossy(&got[0].raw).to_string();
        assert!(
            raw.contains(&format!("Message-ID: <{}>", m.message_id)),
            "{raw}"
        );
        let att = attachments(&got[0].raw);
        assert_eq!(att.len(), 1);
        assert_eq!(att[0].0, "uttrekk_20261201.dsv.age");
        assert_eq!(
            att[0].1, m.attachments[0].data,
            "{tls:?}: the attachment differs"
        );
        assert_eq!(text_body(&got[0].raw).replace("\r\n", "\n"), m.body);
    }
}

#[tokio::test]
async fn login_comes_from_a_0600_file_and_a_wrong_password_is_permanent() {
    let server = Smtp::start_with(Tls::Starttls, Some(("regdrop", "Smtp-Test-7")));
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(&server);
    s.auth = Some(SmtpAuthSpec {
        username: "regdrop".into(),
        password: SecretRef::File(password_file(dir.path(), "Smtp-Test-7")),
    });
    send(&s, &message("run-ok"))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log_text()));
    let wrong = tempfile::tempdir().unwrap();
    s.auth = Some(SmtpAuthSpec {
        username: "regdrop".into(),
        password: SecretRef::File(password_file(wrong.path(), "wrong")),
    });
    let e = send(&s, &message("run-bad")).await.unwrap_err();
    assert!(matches!(e, MailError::Auth { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert!(
        !e.to_string().contains("wrong"),
        "the password must not be in the message: {e}"
    );
    // Without a login the server refuses the sender.
    s.auth = None;
    let e = send(&s, &message("run-none")).await.unwrap_err();
    assert!(
        matches!(
            e,
            MailError::Rejected {
                code: 530,
                phase: Phase::MailFrom,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        server.wait_for(1).len(),
        1,
        "only the logged-in message arrived"
    );
}

#[tokio::test]
async fn a_4xx_is_retryable_a_5xx_permanent_and_neither_delivers() {
    let server = Smtp::start(Tls::None);
    let s = spec(&server);
    server.fail_data(451, 1);
    let e = send(&s, &message("run-4xx")).await.unwrap_err();
    assert!(
        matches!(
            e,
            MailError::Rejected {
                code: 451,
                phase: Phase::Message,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Retryable);
    assert!(e.nothing_sent());
    server.fail_data(554, 1);
    let e = send(&s, &message("run-5xx")).await.unwrap_err();
    assert!(matches!(e, MailError::Rejected { code: 554, .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Permanent);
    server.fail_rcpt(550, 1);
    let e = send(&s, &message("run-rcpt")).await.unwrap_err();
    assert!(
        matches!(
            e,
            MailError::Rejected {
                code: 550,
                phase: Phase::RcptTo,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert!(
        server.received().is_empty(),
        "a refused message must not be stored"
    );
    send(&s, &message("run-ok")).await.unwrap();
    assert_eq!(server.wait_for(1).len(), 1);
}

#[tokio::test]
async fn a_reply_lost_after_the_whole_message_is_unconfirmed_and_permanent() {
    let server = Smtp::start(Tls::None);
    server.drop_reply(1);
    let m = message("run-lost");
    let e = send(&spec(&server), &m).await.unwrap_err();
    assert!(matches!(e, MailError::Unconfirmed { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert!(!e.nothing_sent());
    assert!(e.to_string().contains(&m.message_id), "{e}");
    // The server did get it: this is why it must never be resent blindly.
    assert_eq!(server.wait_for(1).len(), 1);
}

#[tokio::test]
async fn the_hook_before_data_runs_once_and_can_stop_the_send() {
    let server = Smtp::start(Tls::None);
    let s = spec(&server);
    let mut calls = 0;
    let e = mail::send(&s, &message("run-stop"), || {
        calls += 1;
        Err("the store is gone".into())
    })
    .await
    .unwrap_err();
    assert_eq!(calls, 1);
    assert!(matches!(e, MailError::Stopped(_)), "{e}");
    assert!(e.nothing_sent());
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn no_server_is_retryable_and_an_untrusted_certificate_permanent() {
    let port = crate::util::free_port();
    let s = SmtpSpec {
        port,
        ..spec(&Smtp::start(Tls::None))
    };
    let e = send(&s, &message("run-down")).await.unwrap_err();
    assert!(
        matches!(
            e,
            MailError::Connection {
                phase: Phase::Connect,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Retryable);

    // The throwaway certificate is not in the system's store.
    let server = Smtp::start(Tls::Implicit);
    let mut s = spec(&server);
    s.ca_file = None;
    let e = send(&s, &message("run-untrusted")).await.unwrap_err();
    assert!(matches!(e, MailError::Tls { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Permanent);

    // STARTTLS asked of a server that does not offer it: refused, never sent in clear.
    let plain = Smtp::start(Tls::None);
    let mut s = spec(&plain);
    s.tls = SmtpTls::StartTls;
    s.ca_file = server.cert.clone();
    let e = send(&s, &message("run-nostarttls")).await.unwrap_err();
    assert!(
        matches!(
            e,
            MailError::Tls {
                phase: Phase::StartTls,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("does not offer STARTTLS"), "{e}");
    assert!(plain.received().is_empty() && server.received().is_empty());
}
