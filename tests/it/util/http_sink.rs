//! Test harness: a real HTTP server (Python's `http.server`, `tests/data/http_sink.py`) on
//! a free loopback port that records every request (method, path, headers, body) as a
//! file and answers with the status it is told ([`HttpSink::answer`]). The SMS gateway
//! and webhook receiver of the tests. Killed on drop.

use super::py_server;
use std::path::PathBuf;
use std::process::Child;

pub struct HttpSink {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .and_then(|v| v.as_str())
    }
}

impl HttpSink {
    pub fn start() -> HttpSink {
        let dir = super::servers::server_dir("regdrop-http-");
        let d = dir.path();
        let log = d.join("http.log");
        let args: Vec<std::ffi::OsString> = vec![
            "--dir".into(),
            d.join("requests").into(),
            "--control".into(),
            d.join("control.json").into(),
        ];
        let (child, port) = py_server::start(
            "the HTTP sink",
            "http_sink.py",
            &args,
            &log,
            "python3 lacks http.server",
        );
        HttpSink {
            child,
            port,
            dir,
            log,
        }
    }

    /// `http://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    fn control(&self, json: &str) {
        let p = self.dir.path().join("control.json");
        std::fs::write(p.with_extension("tmp"), json).unwrap();
        std::fs::rename(p.with_extension("tmp"), p).unwrap();
    }

    /// Answer the next `n` requests with `status` (then 200).
    pub fn answer(&self, status: u16, n: u32) {
        self.control(&format!("{{\"status\": {status}, \"count\": {n}}}"));
    }

    /// Answer every request with 200 and `bytes` bytes of body.
    pub fn answer_big(&self, bytes: usize) {
        self.control(&format!("{{\"big\": {bytes}}}"));
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        let dir = self.dir.path().join("requests");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "json"));
        names.sort();
        names
            .into_iter()
            .map(|p| {
                let v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
                Request {
                    method: v["method"].as_str().unwrap().into(),
                    path: v["path"].as_str().unwrap().into(),
                    headers: v["headers"].as_object().unwrap().clone(),
                    body: v["body"].as_str().unwrap().into(),
                }
            })
            .collect()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        super::servers::stop(&mut self.child);
    }
}
