//! Test harness: a real SMTP server (aiosmtpd, `pip install aiosmtpd`) started from
//! `tests/data/smtp_server.py` on a free loopback port. Every accepted message is a file
//! (`DIR/mail/NNNN.eml` and its envelope `NNNN.json`); [`Smtp::fail_data`],
//! [`Smtp::fail_rcpt`] and [`Smtp::drop_reply`] make it answer 4xx/5xx or lose its reply
//! for the next messages. With [`Tls::Starttls`] or [`Tls::Implicit`] it uses a throwaway
//! self-signed certificate for 127.0.0.1 (`ca_file` trusts it); with a user it requires
//! AUTH (after TLS). Killed on drop. Never skips.

use super::py_server;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain SMTP.
    None,
    /// STARTTLS required.
    Starttls,
    Implicit,
}

pub struct Smtp {
    child: Child,
    pub port: u16,
    /// Temp folder: `mail/`, `control.json`, `cert.pem`, the log.
    pub dir: tempfile::TempDir,
    pub tls: Tls,
    /// The server's certificate (with TLS): the `ca_file` to trust.
    pub cert: Option<PathBuf>,
    pub log: PathBuf,
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The message as the server got it (RFC 5322).
    pub raw: Vec<u8>,
}

impl Smtp {
    pub fn start(tls: Tls) -> Smtp {
        Smtp::start_with(tls, None)
    }

    /// With `login = Some((user, password))` the server requires AUTH.
    pub fn start_with(tls: Tls, login: Option<(&str, &str)>) -> Smtp {
        let dir = super::servers::server_dir("regdrop-smtp-");
        let d = dir.path();
        let log = d.join("smtp.log");
        let mut args: Vec<std::ffi::OsString> = vec![
            "--dir".into(),
            d.join("mail").into(),
            "--control".into(),
            d.join("control.json").into(),
        ];
        match tls {
            Tls::None => {}
            Tls::Starttls => args.push("--starttls".into()),
            Tls::Implicit => args.push("--implicit-tls".into()),
        }
        if let Some((u, p)) = login {
            args.extend(["--user".into(), u.into(), "--password".into(), p.into()]);
        }
        let (child, port) = py_server::start(
            "the aiosmtpd SMTP server",
            "smtp_server.py",
            &args,
            &log,
            "aiosmtpd is not installed for python3: run `pip install aiosmtpd` (scripts/test does)",
        );
        let cert = (tls != Tls::None).then(|| d.join("cert.pem"));
        Smtp {
            child,
            port,
            dir,
            tls,
            cert,
            log,
        }
    }

    fn control(&self, json: &str) {
        let p = self.dir.path().join("control.json");
        std::fs::write(p.with_extension("tmp"), json).unwrap();
        std::fs::rename(p.with_extension("tmp"), p).unwrap();
    }

    /// Answer the final dot of the next `n` messages with `code` (not stored).
    pub fn fail_data(&self, code: u16, n: u32) {
        self.control(&format!("{{\"data\": [{code}, {n}]}}"));
    }

    /// Refuse RCPT TO of the next `n` recipients with `code`.
    pub fn fail_rcpt(&self, code: u16, n: u32) {
        self.control(&format!("{{\"rcpt\": [{code}, {n}]}}"));
    }

    /// Store the next `n` messages, then close the connection without a reply.
    pub fn drop_reply(&self, n: u32) {
        self.control(&format!("{{\"drop\": {n}}}"));
    }

    /// Store the next message, then wait `secs` seconds before answering it.
    pub fn stall(&self, secs: u32) {
        self.control(&format!("{{\"stall\": [{secs}, 1]}}"));
    }

    /// Every message received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let mail = self.dir.path().join("mail");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&mail)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        names.sort();
        names
            .into_iter()
            .map(|eml| {
                let env: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(eml.with_extension("json")).unwrap(),
                )
                .unwrap();
                Received {
                    mail_from: env["mail_from"].as_str().unwrap_or_default().to_string(),
                    rcpt_tos: env["rcpt_tos"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect(),
                    raw: std::fs::read(&eml).unwrap(),
                }
            })
            .collect()
    }

    /// Waits up to 10 s for `n` messages (the server stores them after its reply is due).
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        super::servers::stop(&mut self.child);
    }
}

/// The attachments of a received message: (file name, decoded bytes), with Python's
/// `email` package (a real MIME parser, not ours).
pub fn attachments(raw: &[u8]) -> Vec<(String, Vec<u8>)> {
    let out = std::process::Command::new(py_server::PYTHON)
        .arg("-c")
        .arg(
            "import sys, email, json\n\
             m = email.message_from_bytes(sys.stdin.buffer.read())\n\
             print(json.dumps([[p.get_filename(), p.get_payload(decode=True).hex()] \
             for p in m.walk() if p.get_filename()]))",
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(raw)?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "python email parser failed");
    let v: Vec<(String, String)> = serde_json::from_slice(&out.stdout).unwrap();
    v.into_iter()
        .map(|(n, h)| (n, hex::decode(h).unwrap()))
        .collect()
}

/// The plain-text body of a received message (decoded), via Python's `email` package.
pub fn text_body(raw: &[u8]) -> String {
    let out = std::process::Command::new(py_server::PYTHON)
        .arg("-c")
        .arg(
            "import sys, email\n\
             m = email.message_from_bytes(sys.stdin.buffer.read())\n\
             print(''.join(p.get_payload(decode=True).decode(p.get_content_charset() or 'utf-8') \
             for p in m.walk() if p.get_content_type() == 'text/plain' and not p.get_filename()), end='')",
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(raw)?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "python email parser failed");
    String::from_utf8(out.stdout).unwrap()
}
