//! The mail adapter: one message over SMTP (lettre's connection, rustls with ring), sent
//! to a validated `[smtp]` server: STARTTLS, implicit TLS or none (validation allows none
//! only on loopback), the login password from a 0600 file or a systemd credential, every
//! reply classified (4xx retryable, 5xx permanent, connection errors retryable) and the
//! Message-ID given back.
//!
//! # The dialogue of [`send`], and what a failure means
//! 1. Connect (TLS from the first byte for `tls`), EHLO; STARTTLS and EHLO again for
//!    `starttls` (refused if not offered); AUTH if `[smtp.auth]` is set.
//! 2. MAIL FROM, RCPT TO for each recipient (one refusal fails the whole message).
//! 3. The caller's `before_data` hook runs (the pipeline records "sending" there), then
//!    DATA and the message.
//!
//! Up to the message, a failure means nothing was sent ([`MailError::nothing_sent`]). A
//! reply code to the final dot is definite too (4xx/5xx: not taken). A connection lost or
//! a timeout after the whole message went out is [`MailError::Unconfirmed`]: SMTP cannot
//! say whether the server took it, so it is permanent and never resent blindly.
//!
//! Each step has the `[smtp] timeout_secs`; the message step that plus a second per
//! 64 KiB. Server replies are cleaned and cut to 300 characters before they reach an error.

mod error;

pub use error::{MailError, Phase};

use crate::core::config::{SmtpSpec, SmtpTls};
use crate::core::text::clean;
use lettre::message::{
    header::ContentType, Attachment as LettreAttachment, Mailbox, MultiPart, SinglePart,
};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail as MailCmd, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use std::time::Duration;

/// Longest server text kept in an error.
const REPLY_MAX: usize = 300;

/// One file attached to a message.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The file name the recipient sees.
    pub name: String,
    /// `application/octet-stream` for sealed files.
    pub content_type: String,
    pub data: Vec<u8>,
}

/// One message to send.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The sender (`addr` or `Name <addr>`); usually `[smtp] from`.
    pub from: String,
    /// Recipients (`addr` or `Name <addr>`), at least one.
    pub to: Vec<String>,
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    pub attachments: Vec<Attachment>,
    /// The Message-ID without angle brackets (`RUN.RANDOM@regdrop.DOMAIN`): chosen by the
    /// caller so it can be recorded before the message leaves.
    pub message_id: String,
}

/// What the server said when it took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The Message-ID, without angle brackets.
    pub message_id: String,
    /// The server's reply to the final dot (cleaned), e.g. `2.0.0 Ok: queued as 4F3A`.
    pub reply: String,
    /// Bytes of the formatted message.
    pub bytes: u64,
}

/// A Message-ID for `local` (a run id) at the sender's domain, with 96 random bits.
pub fn new_message_id(local: &str, from: &str) -> String {
    let domain = from
        .parse::<Mailbox>()
        .map(|m| m.email.domain().to_string())
        .unwrap_or_else(|_| "regdrop.invalid".into());
    let local: String = local
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let random: [u8; 12] = rand::random();
    format!("{local}.{}@{domain}", hex::encode(random))
}

/// Builds the message as it goes on the wire (ASCII: bodies quoted-printable or base64).
pub fn format(mail: &Mail) -> Result<(lettre::address::Envelope, Vec<u8>), MailError> {
    let bad = |what: &str, v: &str, e: &dyn std::fmt::Display| {
        MailError::Message(format!("{what} `{}`: {e}", clean(v, 80)))
    };
    let from: Mailbox = mail
        .from
        .parse()
        .map_err(|e| bad("sender", &mail.from, &e))?;
    if mail.to.is_empty() {
        return Err(MailError::Message("no recipient".into()));
    }
    let mut b = lettre::Message::builder()
        .from(from)
        .subject(mail.subject.clone())
        .message_id(Some(format!("<{}>", mail.message_id)))
        .date_now();
    for to in &mail.to {
        b = b.to(to.parse().map_err(|e| bad("recipient", to, &e))?);
    }
    let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(mail.body.clone()));
    for a in &mail.attachments {
        let ct = ContentType::parse(&a.content_type)
            .map_err(|e| bad("content type", &a.content_type, &e))?;
        parts = parts.singlepart(LettreAttachment::new(a.name.clone()).body(a.data.clone(), ct));
    }
    let msg = b
        .multipart(parts)
        .map_err(|e| MailError::Message(e.to_string()))?;
    Ok((msg.envelope().clone(), msg.formatted()))
}

/// Sends `mail` through `server`; `before_data` runs once every recipient is accepted,
/// just before DATA (an `Err` stops the send: [`MailError::Stopped`], nothing sent).
pub async fn send(
    server: &SmtpSpec,
    mail: &Mail,
    before_data: impl FnOnce() -> Result<(), String>,
) -> Result<Sent, MailError> {
    let (envelope, bytes) = format(mail)?;
    let addr = format!("{}:{}", server.host, server.port);
    let creds = match &server.auth {
        Some(a) => Some(Credentials::new(
            a.username.clone(),
            crate::secret::read(&a.password)?,
        )),
        None => None,
    };
    let tls = tls_parameters(server)?;
    let t = server.timeout;
    let step = |phase: Phase| Step { addr: &addr, phase };

    let mut conn = step(Phase::Connect)
        .run(
            t,
            AsyncSmtpConnection::connect_tokio1(
                (server.host.as_str(), server.port),
                Some(t),
                &ClientId::default(),
                match server.tls {
                    SmtpTls::Implicit => tls.clone(),
                    _ => None,
                },
                None,
            ),
        )
        .await?;
    if server.tls == SmtpTls::StartTls {
        if !conn.can_starttls() {
            conn.abort().await;
            return Err(MailError::Tls {
                addr,
                phase: Phase::StartTls,
                reason: "the server does not offer STARTTLS".into(),
            });
        }
        let params = tls.clone().expect("TLS parameters for starttls");
        step(Phase::StartTls)
            .run(t, conn.starttls(params, &ClientId::default()))
            .await?;
    }
    if let Some(c) = &creds {
        let user = server
            .auth
            .as_ref()
            .map(|a| a.username.clone())
            .unwrap_or_default();
        let r = tokio::time::timeout(t, conn.auth(&[Mechanism::Plain, Mechanism::Login], c)).await;
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.status().is_some_and(|c| u16::from(c) / 100 == 4) => {
                conn.abort().await;
                return Err(step(Phase::Auth).error(&e));
            }
            Ok(Err(e)) if e.is_client() || e.is_permanent() => {
                conn.abort().await;
                return Err(MailError::Auth {
                    addr,
                    user,
                    reason: server_text(&e),
                });
            }
            Ok(Err(e)) => return Err(step(Phase::Auth).error(&e)),
            Err(_) => return Err(step(Phase::Auth).timeout(t)),
        }
    }
    let result = dialogue(
        &mut conn,
        &addr,
        t,
        &envelope,
        &bytes,
        &mail.message_id,
        before_data,
    )
    .await;
    match result {
        Ok(reply) => {
            // The message is taken; a failing QUIT changes nothing.
            let _ = tokio::time::timeout(t, conn.quit()).await;
            Ok(Sent {
                message_id: mail.message_id.clone(),
                reply,
                bytes: bytes.len() as u64,
            })
        }
        Err(e) => {
            conn.abort().await;
            Err(e)
        }
    }
}

/// MAIL FROM, RCPT TO, the hook, DATA and the message; the reply text to the final dot.
async fn dialogue(
    conn: &mut AsyncSmtpConnection,
    addr: &str,
    t: Duration,
    envelope: &lettre::address::Envelope,
    bytes: &[u8],
    message_id: &str,
    before_data: impl FnOnce() -> Result<(), String>,
) -> Result<String, MailError> {
    let step = |phase: Phase| Step { addr, phase };
    let mut options = Vec::new();
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        if !conn
            .server_info()
            .supports_feature(lettre::transport::smtp::extension::Extension::SmtpUtfEight)
        {
            return Err(MailError::Message(
                "an address has non-ASCII characters and the server does not offer SMTPUTF8".into(),
            ));
        }
        options.push(lettre::transport::smtp::extension::MailParameter::SmtpUtfEight);
    }
    step(Phase::MailFrom)
        .run(
            t,
            conn.command(MailCmd::new(envelope.from().cloned(), options)),
        )
        .await?;
    for to in envelope.to() {
        step(Phase::RcptTo)
            .run(t, conn.command(Rcpt::new(to.clone(), vec![])))
            .await?;
    }
    before_data().map_err(MailError::Stopped)?;
    step(Phase::Data).run(t, conn.command(Data)).await?;
    let data_time = t + Duration::from_secs(bytes.len() as u64 / 65_536);
    match tokio::time::timeout(data_time, conn.message(bytes)).await {
        Ok(Ok(reply)) => Ok(clean(
            &reply.message().collect::<Vec<_>>().join(" "),
            REPLY_MAX,
        )),
        // A reply code: the server said no, definitely.
        Ok(Err(e)) if e.status().is_some() => Err(step(Phase::Message).error(&e)),
        Ok(Err(e)) => Err(MailError::Unconfirmed {
            addr: addr.to_string(),
            message_id: message_id.to_string(),
            reason: server_text(&e),
        }),
        Err(_) => Err(MailError::Unconfirmed {
            addr: addr.to_string(),
            message_id: message_id.to_string(),
            reason: format!("no reply within {} s", data_time.as_secs()),
        }),
    }
}

/// One step of the dialogue, for its errors.
struct Step<'a> {
    addr: &'a str,
    phase: Phase,
}

impl Step<'_> {
    async fn run<T>(
        &self,
        t: Duration,
        f: impl std::future::Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, MailError> {
        match tokio::time::timeout(t, f).await {
            Ok(r) => r.map_err(|e| self.error(&e)),
            Err(_) => Err(self.timeout(t)),
        }
    }

    fn timeout(&self, t: Duration) -> MailError {
        MailError::Connection {
            addr: self.addr.to_string(),
            phase: self.phase,
            reason: format!("no reply within {} s", t.as_secs()),
        }
    }

    fn error(&self, e: &lettre::transport::smtp::Error) -> MailError {
        let addr = self.addr.to_string();
        let phase = self.phase;
        if let Some(code) = e.status() {
            return MailError::Rejected {
                addr,
                phase,
                code: code.into(),
                text: server_text(e),
            };
        }
        // tokio-rustls hands TLS failures (an untrusted certificate, a failed handshake)
        // over as I/O errors of kind InvalidData.
        if e.is_tls() || is_tls_io(e) || phase == Phase::StartTls && !e.is_timeout() && !is_io(e) {
            return MailError::Tls {
                addr,
                phase,
                reason: server_text(e),
            };
        }
        if e.is_client() {
            return MailError::Message(server_text(e));
        }
        MailError::Connection {
            addr,
            phase,
            reason: server_text(e),
        }
    }
}

/// The first I/O error in the chain of `e`.
fn io_error(e: &lettre::transport::smtp::Error) -> Option<&std::io::Error> {
    let mut s = std::error::Error::source(e);
    while let Some(x) = s {
        if let Some(io) = x.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        s = x.source();
    }
    None
}

fn is_io(e: &lettre::transport::smtp::Error) -> bool {
    io_error(e).is_some()
}

fn is_tls_io(e: &lettre::transport::smtp::Error) -> bool {
    io_error(e).is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData)
}

/// The innermost text of a lettre error (lettre's own Display repeats its source), cleaned.
fn server_text(e: &lettre::transport::smtp::Error) -> String {
    let mut parts = Vec::new();
    let mut s = std::error::Error::source(e);
    while let Some(x) = s {
        parts.push(x.to_string());
        s = x.source();
    }
    // Each source's Display may include the next one; the first is the fullest.
    let text = parts.into_iter().next().unwrap_or_else(|| e.to_string());
    clean(&text, REPLY_MAX)
}

/// The TLS parameters for `starttls` and `tls` (`None` for `none`): the system's roots, or
/// only the certificates of `ca_file`.
fn tls_parameters(server: &SmtpSpec) -> Result<Option<TlsParameters>, MailError> {
    if server.tls == SmtpTls::None {
        return Ok(None);
    }
    let mut b = TlsParameters::builder(server.host.clone());
    if let Some(path) = &server.ca_file {
        let err = |reason: String| MailError::CaFile {
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let cert =
            Certificate::from_pem(&pem).map_err(|_| err("holds no PEM certificate".into()))?;
        b = b
            .certificate_store(CertificateStore::None)
            .add_root_certificate(cert);
    }
    b.build_rustls().map(Some).map_err(|e| MailError::Tls {
        addr: format!("{}:{}", server.host, server.port),
        phase: Phase::Connect,
        reason: server_text(&e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::retry::{Classify, ErrorClass};

    fn mail() -> Mail {
        Mail {
            from: "Uttrekk <uttrekk@vegvesen.example>".into(),
            to: vec!["kunde@example.no".into()],
            subject: "Uttrekk 2026-12-01 æøå".into(),
            body: "Vedlagt: fila.\nÅpne med age -d.".into(),
            attachments: vec![Attachment {
                name: "a.dsv.age".into(),
                content_type: "application/octet-stream".into(),
                data: vec![0, 1, 2, 255],
            }],
            message_id: "run-1.abc@vegvesen.example".into(),
        }
    }

    #[test]
    fn the_message_is_ascii_and_carries_the_message_id_and_attachment() {
        let (env, bytes) = format(&mail()).unwrap();
        assert!(bytes.is_ascii());
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains("Message-ID: <run-1.abc@vegvesen.example>"),
            "{text}"
        );
        assert!(text.contains("filename=\"a.dsv.age\""), "{text}");
        assert_eq!(env.to().len(), 1);
        assert_eq!(env.from().unwrap().to_string(), "uttrekk@vegvesen.example");
    }

    #[test]
    fn bad_addresses_are_permanent_message_errors() {
        let mut m = mail();
        m.to = vec!["not an address".into()];
        let e = format(&m).unwrap_err();
        assert!(matches!(e, MailError::Message(_)), "{e}");
        assert_eq!(e.class(), ErrorClass::Permanent);
        m.to.clear();
        assert!(format(&m).is_err());
    }

    #[test]
    fn message_ids_are_unique_and_at_the_senders_domain() {
        let a = new_message_id("run 1/x", "Uttrekk <u@vegvesen.example>");
        let b = new_message_id("run 1/x", "Uttrekk <u@vegvesen.example>");
        assert_ne!(a, b);
        assert!(a.starts_with("run-1-x."), "{a}");
        assert!(a.ends_with("@vegvesen.example"), "{a}");
    }

    #[test]
    fn replies_are_classified_by_their_first_digit() {
        let r = |code| MailError::Rejected {
            addr: "h:25".into(),
            phase: Phase::RcptTo,
            code,
            text: "x".into(),
        };
        assert_eq!(r(451).class(), ErrorClass::Retryable);
        assert_eq!(r(421).class(), ErrorClass::Retryable);
        assert_eq!(r(550).class(), ErrorClass::Permanent);
        assert_eq!(r(554).class(), ErrorClass::Permanent);
        let u = MailError::Unconfirmed {
            addr: "h".into(),
            message_id: "m".into(),
            reason: "r".into(),
        };
        assert_eq!(u.class(), ErrorClass::Permanent);
        assert!(!u.nothing_sent());
        assert!(r(451).nothing_sent());
    }
}
