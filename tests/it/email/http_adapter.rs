//! `regdrop::http_post` against a real HTTP server (Python's http.server) on loopback:
//! the body and the credential header arrive as sent, statuses are classified (5xx
//! retryable, 4xx permanent), the response body is capped, a refused connection is
//! retryable and a server that never answers times out (an in-process listener, for the
//! fault only).

use crate::util::http_sink::HttpSink;
use crate::util::servers::password_file;
use regdrop::core::config::SecretRef;
use regdrop::core::retry::{Classify, ErrorClass};
use regdrop::http_post::{self, Body, HttpError, Post, SecretHeader};
use std::time::Duration;

#[tokio::test]
async fn json_and_form_bodies_arrive_with_the_credential_header_from_a_0600_file() {
    let sink = HttpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let mut p = Post::new(
        sink.url("/sms/send"),
        Body::Json(serde_json::json!({"to": "+4799999999", "text": "Passord: abc def"})),
    );
    p.secret_header = Some(SecretHeader {
        name: "Authorization".into(),
        value: SecretRef::File(password_file(dir.path(), "Bearer tok-123")),
    });
    let r = http_post::post(&p)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sink.log_text()));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, br#"{"ok":true}"#);
    p.body = Body::Form(vec![
        ("to".into(), "+47 999".into()),
        ("msg".into(), "æ&=".into()),
    ]);
    http_post::post(&p).await.unwrap();
    let got = sink.requests();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].method.as_str(), got[0].path.as_str()),
        ("POST", "/sms/send")
    );
    assert_eq!(got[0].header("authorization"), Some("Bearer tok-123"));
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(v["text"], "Passord: abc def");
    assert_eq!(
        got[1].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(got[1].body, "to=%2B47+999&msg=%C3%A6%26%3D");
}

#[tokio::test]
async fn statuses_are_classified_and_5xx_then_200_succeeds() {
    let sink = HttpSink::start();
    let p = Post::new(sink.url("/x"), Body::Json(serde_json::json!({})));
    sink.answer(503, 1);
    let e = http_post::post(&p).await.unwrap_err();
    assert!(matches!(e, HttpError::Status { status: 503, .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Retryable);
    http_post::post(&p).await.unwrap();
    sink.answer(401, 1);
    let e = http_post::post(&p).await.unwrap_err();
    assert!(matches!(e, HttpError::Status { status: 401, .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert_eq!(sink.requests().len(), 3);
}

#[tokio::test]
async fn the_response_body_is_capped() {
    let sink = HttpSink::start();
    sink.answer_big(1_000_000);
    let mut p = Post::new(sink.url("/big"), Body::Json(serde_json::json!({})));
    p.max_response = 1000;
    let r = http_post::post(&p).await.unwrap();
    assert_eq!(r.body.len(), 1000);
    assert!(r.truncated);
}

#[tokio::test]
async fn no_server_is_retryable_and_silence_times_out() {
    let p = Post::new(
        format!("http://127.0.0.1:{}/x", crate::util::free_port()),
        Body::Json(serde_json::json!({})),
    );
    let e = http_post::post(&p).await.unwrap_err();
    assert!(matches!(e, HttpError::Connect { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Retryable);

    // A listener that accepts and never answers.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let hold = std::thread::spawn(move || {
        let (c, _) = l.accept().unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(c);
    });
    let mut p = Post::new(
        format!("http://127.0.0.1:{port}/x?key=SECRET"),
        Body::Json(serde_json::json!({})),
    );
    p.timeout = Duration::from_secs(1);
    let e = http_post::post(&p).await.unwrap_err();
    assert!(matches!(e, HttpError::Timeout { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Retryable);
    assert!(!e.to_string().contains("SECRET"), "{e}");
    hold.join().unwrap();
}

#[tokio::test]
async fn plain_http_to_another_machine_is_refused_before_any_traffic() {
    let p = Post::new("http://sms.example/send", Body::Json(serde_json::json!({})));
    let e = http_post::post(&p).await.unwrap_err();
    assert!(matches!(e, HttpError::Url(_)), "{e}");
    assert_eq!(e.class(), ErrorClass::Permanent);
}
