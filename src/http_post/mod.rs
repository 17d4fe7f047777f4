//! The HTTP POST adapter: one request (JSON, a form or raw bytes) to a URL with a timeout,
//! an optional credential header whose value comes from a 0600 file or a systemd
//! credential, no redirects followed, and the answer classified: 2xx is success; 5xx, 408,
//! 429, timeouts and connection errors are retryable; every other status is permanent.
//! The response body is untrusted: at most [`Post::max_response`] bytes are read, and the
//! text that reaches an error is cleaned and cut. Used for the SMS gateway and webhooks.
//!
//! `http://` is refused except to a loopback host (a credential or a message never
//! crosses a network in clear). The URL shown in errors and logs has no user info and no
//! query string (gateways put keys there).
//!
//! The client is `ureq` (blocking, small, rustls with ring) run on tokio's blocking pool.

mod error;

pub use error::HttpError;

use crate::core::config::SecretRef;
use crate::core::text::clean_bytes;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Default cap on the bytes of a response body that are read.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// What goes in the request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// `application/json`.
    Json(serde_json::Value),
    /// `application/x-www-form-urlencoded`, fields in order.
    Form(Vec<(String, String)>),
    /// Any other content type, bytes as given.
    Raw {
        content_type: String,
        bytes: Vec<u8>,
    },
}

impl Body {
    fn encode(&self) -> (String, Vec<u8>) {
        match self {
            Body::Json(v) => ("application/json".into(), v.to_string().into_bytes()),
            Body::Form(fields) => {
                let mut s = String::new();
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        s.push('&');
                    }
                    s.push_str(&form_encode(k));
                    s.push('=');
                    s.push_str(&form_encode(v));
                }
                ("application/x-www-form-urlencoded".into(), s.into_bytes())
            }
            Body::Raw {
                content_type,
                bytes,
            } => (content_type.clone(), bytes.clone()),
        }
    }
}

/// `application/x-www-form-urlencoded` escaping (WHATWG): unreserved bytes as they are,
/// space as `+`, everything else `%XX`.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A header whose value is a secret (`Authorization: Bearer ...`), read when sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHeader {
    pub name: String,
    pub value: SecretRef,
}

/// One POST.
#[derive(Debug, Clone)]
pub struct Post {
    pub url: String,
    pub body: Body,
    /// Plain extra headers (never secrets).
    pub headers: Vec<(String, String)>,
    pub secret_header: Option<SecretHeader>,
    /// The whole exchange: connect, send, status and the (capped) body.
    pub timeout: Duration,
    /// At most this many bytes of the response body are read ([`MAX_RESPONSE`]).
    pub max_response: usize,
    /// PEM file of the CA certificate(s) to trust instead of the Mozilla roots.
    pub ca_file: Option<PathBuf>,
}

impl Post {
    /// A POST of `body` to `url` with the default timeout (30 s) and response cap.
    pub fn new(url: impl Into<String>, body: Body) -> Post {
        Post {
            url: url.into(),
            body,
            headers: Vec::new(),
            secret_header: None,
            timeout: Duration::from_secs(30),
            max_response: MAX_RESPONSE,
            ca_file: None,
        }
    }
}

/// A 2xx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// At most `max_response` bytes of the body (untrusted).
    pub body: Vec<u8>,
    /// The body was longer and was cut.
    pub truncated: bool,
}

/// The URL as it may be shown: scheme, host, port and path; no user info, no query.
pub fn shown_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let rest = match rest.split_once('/') {
        Some((auth, path)) => format!("{}/{path}", auth.rsplit('@').next().unwrap_or(auth)),
        None => rest.rsplit('@').next().unwrap_or(rest).to_string(),
    };
    crate::core::text::clean(&format!("{scheme}://{rest}"), 200)
}

/// The host of `url` (`None` when it has no `scheme://host`), brackets removed from IPv6.
fn host_of(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let auth = rest.split(['/', '?', '#']).next()?;
    let hostport = auth.rsplit('@').next()?;
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next()?.to_string()
    } else {
        hostport.split(':').next()?.to_string()
    };
    (!host.is_empty()).then(|| (scheme.to_ascii_lowercase(), host))
}

/// Whether `url` may be used: `https://HOST...`, or `http://` to a loopback host. The
/// message says what to write instead. Pure; the config validators use it too.
pub fn url_problem(url: &str) -> Option<String> {
    let Some((scheme, host)) = host_of(url) else {
        return Some(format!(
            "`{}` is not a URL like https://host/path",
            shown_url(url)
        ));
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match scheme.as_str() {
        "https" => None,
        "http" if loopback => None,
        "http" => Some(format!(
            "`{}` is plain http to another machine; use https (http only for a loopback host)",
            shown_url(url)
        )),
        _ => Some(format!("`{}` is not an http(s) URL", shown_url(url))),
    }
}

/// Sends `post`; `Ok` only for a 2xx status.
pub async fn post(post: &Post) -> Result<Response, HttpError> {
    let post = post.clone();
    tokio::task::spawn_blocking(move || post_blocking(&post))
        .await
        .map_err(|e| HttpError::Internal(e.to_string()))?
}

/// [`post`] on the calling thread (blocking).
pub fn post_blocking(post: &Post) -> Result<Response, HttpError> {
    let url = shown_url(&post.url);
    if let Some(problem) = url_problem(&post.url) {
        return Err(HttpError::Url(problem));
    }
    let secret = match &post.secret_header {
        Some(h) => Some((h.name.clone(), crate::secret::read(&h.value)?)),
        None => None,
    };
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(path) = &post.ca_file {
        let err = |reason: String| HttpError::CaFile {
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(err("holds no PEM certificate".into()));
        }
        tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(post.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .tls_config(tls.build())
        .build()
        .into();
    let (content_type, bytes) = post.body.encode();
    let mut req = agent.post(&post.url).header("Content-Type", &content_type);
    for (k, v) in &post.headers {
        req = req.header(k, v);
    }
    if let Some((name, value)) = &secret {
        req = req.header(name, value);
    }
    let mut resp = req
        .send(&bytes[..])
        .map_err(|e| HttpError::from_ureq(&url, post.timeout, e))?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    let cap = post.max_response;
    let read = resp
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .reader()
        .take(cap as u64 + 1)
        .read_to_end(&mut body);
    let truncated = body.len() > cap;
    body.truncate(cap);
    if !(200..300).contains(&status) {
        return Err(HttpError::Status {
            url,
            status,
            body: clean_bytes(&body, 200),
        });
    }
    // A 2xx whose body broke off still counts: the status is the answer.
    let _ = read;
    Ok(Response {
        status,
        body,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(
            shown_url("https://user:pw@sms.example/api/send?key=SECRET#x"),
            "https://sms.example/api/send"
        );
        assert_eq!(shown_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert_eq!(url_problem("https://sms.example/send"), None);
        assert_eq!(url_problem("http://127.0.0.1:9/x"), None);
        assert_eq!(url_problem("http://[::1]:9/x"), None);
        assert_eq!(url_problem("http://localhost/x"), None);
        assert!(url_problem("http://sms.example/send")
            .unwrap()
            .contains("use https"));
        assert!(url_problem("ftp://x/y").is_some());
        assert!(url_problem("sms.example").is_some());
    }

    #[test]
    fn forms_are_url_encoded() {
        let (ct, b) = Body::Form(vec![
            ("to".into(), "+47 999".into()),
            ("text".into(), "a&b=æ".into()),
        ])
        .encode();
        assert_eq!(ct, "application/x-www-form-urlencoded");
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "to=%2B47+999&text=a%26b%3D%C3%A6"
        );
    }
}
