//! What only the PostgreSQL store has: it is called from inside tokio (its client lives on a
//! thread of its own), several nodes share one database (the receipt chain has one writer,
//! two nodes creating the same run get the same run), a lost connection is a retryable error
//! and the next call connects again, and logins, missing databases, servers that are down
//! and TLS settings fail with the class and the hint an operator needs.

use super::backend::{Engine, TestDb};
use super::chain::{deliver, ts};
use crate::util::postgres::{Postgres, PW_PASSWORD, PW_ROLE};
use regdrop::core::config::location::DbLocation;
use regdrop::core::errors::chain as text_of;
use regdrop::core::retry::Classify;
use regdrop::store::db::{pg::Pg, Db};
use regdrop::store::*;
use std::path::Path;
use std::sync::Barrier;

fn location(url: &str) -> DbLocation {
    DbLocation::from_config(url, Path::new("/"))
}

/// Ends the store's server sessions on `database` (as an administrator or a failover would).
fn terminate_sessions(database: &str) {
    Postgres::get().psql(
        "postgres",
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = '{database}' AND application_name = 'regdrop'"
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_is_called_from_async_tasks_as_sqlite_is() {
    let db = TestDb::new(Engine::Postgres);
    // Opened and used on a runtime worker, as the daemon does: the `postgres` client would
    // panic here if it ran on this thread.
    let s = std::sync::Arc::new(std::sync::Mutex::new(db.open()));
    let task = {
        let s = s.clone();
        tokio::spawn(async move {
            let s = lock(&s);
            deliver(&s, "acme", ts(2026, 3, 1, 6, 0, 0)).id
        })
    };
    assert_eq!(task.await.unwrap(), 1);
    let s = lock(&s);
    assert!(s.verify_chain().unwrap().is_intact());
    assert_eq!(s.backend(), db::Backend::Postgres);
}

#[tokio::test(flavor = "current_thread")]
async fn the_store_works_on_a_current_thread_runtime_too() {
    let db = TestDb::new(Engine::Postgres);
    let s = db.open();
    deliver(&s, "acme", ts(2026, 3, 1, 6, 0, 0));
    assert_eq!(s.receipts(&ReceiptFilter::default()).unwrap().len(), 1);
}

#[test]
fn two_nodes_committing_receipts_at_once_keep_one_chain() {
    let db = TestDb::new(Engine::Postgres);
    const PER_NODE: u32 = 25;
    let barrier = Barrier::new(2);
    std::thread::scope(|sc| {
        for node in ["a", "b"] {
            let (db, barrier) = (&db, &barrier);
            sc.spawn(move || {
                let s = db.open();
                barrier.wait();
                for i in 0..PER_NODE {
                    // Distinct subscriptions, so both nodes always have a run to deliver.
                    deliver(&s, &format!("{node}{i}"), ts(2026, 3, 1, 6, 0, 0));
                }
            });
        }
    });
    let s = db.open();
    let rep = s.verify_chain().unwrap();
    assert!(rep.is_intact(), "{rep:?}");
    assert_eq!(rep.verified, u64::from(2 * PER_NODE));
    let ids: Vec<i64> = s
        .receipts(&ReceiptFilter::default())
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, (1..=i64::from(2 * PER_NODE)).collect::<Vec<_>>());
}

#[test]
fn two_nodes_creating_the_same_run_get_the_same_run() {
    let db = TestDb::new(Engine::Postgres);
    const HOURS: u32 = 20;
    let (created, done) = (Barrier::new(2), Barrier::new(2));
    let results: Vec<Vec<RunCreated>> = std::thread::scope(|sc| {
        let nodes: Vec<_> = [true, false]
            .into_iter()
            .map(|first| {
                let (db, created, done) = (&db, &created, &done);
                sc.spawn(move || {
                    let s = db.open();
                    let mut got = Vec::new();
                    for h in 0..HOURS {
                        created.wait();
                        let r = s
                            .create_run(&NewRun {
                                subscription: "acme".into(),
                                scheduled_at: ts(2026, 3, 1, h, 0, 0),
                            })
                            .unwrap();
                        created.wait();
                        // One node ends the run, so the next hour's run may start.
                        if first {
                            s.set_state(&r.run().id, RunState::Failed, Some("test"))
                                .unwrap();
                        }
                        done.wait();
                        got.push(r);
                    }
                    got
                })
            })
            .collect();
        nodes.into_iter().map(|n| n.join().unwrap()).collect()
    });
    for (ra, rb) in results[0].iter().zip(&results[1]) {
        assert_eq!(ra.run().id, rb.run().id);
        assert_eq!(
            [ra.is_new(), rb.is_new()].iter().filter(|n| **n).count(),
            1,
            "{ra:?} {rb:?}"
        );
    }
    let runs = db.open().list_runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), HOURS as usize);
}

#[test]
fn a_lost_connection_is_retryable_and_the_next_call_connects_again() {
    let db = TestDb::new(Engine::Postgres);
    let s = db.open();
    let run = s
        .create_run(&NewRun {
            subscription: "acme".into(),
            scheduled_at: ts(2026, 3, 1, 6, 0, 0),
        })
        .unwrap()
        .into_run();
    terminate_sessions(db.pg_database.as_deref().unwrap());
    let err = s.get_run(&run.id).unwrap_err();
    assert!(err.is_retryable(), "{}", text_of(&err));
    // No crash, no restart: the store connects again.
    assert_eq!(s.get_run(&run.id).unwrap().unwrap().id, run.id);
    assert!(s.begin_attempt(&run.id).is_ok());
}

#[test]
fn a_connection_lost_inside_a_transaction_is_never_continued_on_a_new_one() {
    let db = TestDb::new(Engine::Postgres);
    drop(db.open()); // migrated
    let c = Db::Postgres(Pg::connect(db.location.postgres().unwrap()).unwrap());
    let tx = c.write_tx().unwrap();
    tx.execute(
        "INSERT INTO runs (id, subscription, scheduled_at, created_at, state, updated_at) \
         VALUES ('a-1', 'a', 'x', 'x', 'failed', 'x')",
        [],
    )
    .unwrap();
    terminate_sessions(db.pg_database.as_deref().unwrap());
    let first = tx
        .execute(
            "INSERT INTO runs (id, subscription, scheduled_at, created_at, state, updated_at) \
             VALUES ('a-2', 'a', 'y', 'y', 'failed', 'y')",
            [],
        )
        .unwrap_err();
    assert!(first.is_retryable(), "{}", text_of(&first));
    // Inside the transaction every further statement fails: none runs outside it.
    let second = tx.execute("DELETE FROM runs", []).unwrap_err();
    assert!(
        matches!(second, StoreError::PgLostInTransaction),
        "{}",
        text_of(&second)
    );
    assert!(second.is_retryable());
    assert!(tx.commit().is_err());
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0, "nothing of the lost transaction was written");
}

#[test]
fn wrong_password_missing_database_and_a_server_that_is_down_say_what_to_do() {
    let pg = Postgres::get();
    let name = pg.fresh_database();
    pg.psql(&name, &format!("GRANT ALL ON SCHEMA public TO {PW_ROLE}"));

    let secret = "Not-The-Password-93";
    let err = Store::open_location(&location(&pg.password_url(&name, secret))).unwrap_err();
    let text = text_of(&err);
    assert!(!err.is_retryable(), "{text}");
    assert!(!text.contains(secret), "{text}");
    assert!(pg_hint(&err).unwrap().contains("password"), "{text}");

    let s = Store::open_location(&location(&pg.password_url(&name, PW_PASSWORD))).unwrap();
    assert_eq!(s.schema_version().unwrap(), migrations::LATEST_VERSION);

    let err = Store::open_location(&location(&pg.url("no_such_database"))).unwrap_err();
    assert!(!err.is_retryable(), "{}", text_of(&err));
    assert!(
        pg_hint(&err).unwrap().contains("does not exist"),
        "{}",
        text_of(&err)
    );

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = Store::open_location(&location(&format!(
        "postgresql://postgres@127.0.0.1:{port}/x"
    )))
    .unwrap_err();
    assert!(err.is_retryable(), "{}", text_of(&err));
    assert!(
        pg_hint(&err).unwrap().contains("not reachable"),
        "{}",
        text_of(&err)
    );
}

#[test]
fn a_unix_socket_url_reaches_the_same_database() {
    let db = TestDb::new(Engine::Postgres);
    let name = db.pg_database.as_deref().unwrap();
    deliver(&db.open(), "acme", ts(2026, 3, 1, 6, 0, 0));
    let s = Store::open_location(&location(&Postgres::get().socket_url(name))).unwrap();
    assert_eq!(s.receipts(&ReceiptFilter::default()).unwrap().len(), 1);
    // sslmode does not apply to a socket (as with libpq).
    let s = Store::open_location(&location(&format!(
        "{}?sslmode=verify-full",
        Postgres::get().socket_url(name)
    )))
    .unwrap();
    assert!(s.verify_chain().unwrap().is_intact());
}

#[test]
fn tls_is_required_when_asked_for_and_unchecked_modes_are_refused() {
    let pg = Postgres::get();
    let name = pg.fresh_database();
    // The test cluster has no TLS (or, once the test below turned it on, a certificate
    // from a CA nobody trusts): verify-full must not fall back to plain text.
    let err = Store::open_location(&location(&format!("{}?sslmode=verify-full", pg.url(&name))))
        .unwrap_err();
    let text = text_of(&err);
    assert!(text.contains("TLS"), "{text}");
    assert!(!err.is_retryable(), "{text}");
    for mode in ["prefer", "allow"] {
        let err = Store::open_location(&location(&format!("{}?sslmode={mode}", pg.url(&name))))
            .unwrap_err();
        assert!(matches!(err, StoreError::PgConfig { .. }), "{err}");
        assert!(err.to_string().contains("verify-full"), "{err}");
    }
    let err = Store::open_location(&location("postgresql://host:notaport/db")).unwrap_err();
    assert!(matches!(err, StoreError::PgConfig { .. }), "{err}");
}

/// Turns TLS on in the test cluster with a certificate for 127.0.0.1 from a CA made here;
/// returns the CA file. (Other tests connect without TLS and are not affected.)
fn cluster_with_tls(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let pg = Postgres::get();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("running openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=regdrop test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    let owner = std::fs::metadata(&pg.data_dir).unwrap();
    for f in ["server.crt", "server.key"] {
        let to = pg.data_dir.join(format!("regdrop-test-{f}"));
        std::fs::copy(dir.join(f), &to).unwrap();
        std::os::unix::fs::chown(&to, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    pg.psql(
        "postgres",
        "ALTER SYSTEM SET ssl_cert_file = 'regdrop-test-server.crt'",
    );
    pg.psql(
        "postgres",
        "ALTER SYSTEM SET ssl_key_file = 'regdrop-test-server.key'",
    );
    pg.psql("postgres", "ALTER SYSTEM SET ssl = on");
    pg.psql("postgres", "SELECT pg_reload_conf()");
    // The reload reaches new sessions shortly after; ask until one sees it.
    for _ in 0..200 {
        if pg.psql("postgres", "SHOW ssl").trim() == "on" {
            return dir.join("ca.pem");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the cluster did not turn TLS on: {}", pg.log());
}

#[test]
fn verify_full_connects_encrypted_to_a_server_whose_certificate_checks_out() {
    let dir = tempfile::tempdir().unwrap();
    let ca = cluster_with_tls(dir.path());
    let pg = Postgres::get();
    let name = pg.fresh_database();
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.url(&name),
        ca.display()
    );
    let s = Store::open_location(&location(&url)).unwrap();
    let encrypted: bool = s
        .connection()
        .query_row(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(encrypted);
    deliver(&s, "acme", ts(2026, 3, 1, 6, 0, 0));
    assert!(s.verify_chain().unwrap().is_intact());
    // Without the CA the certificate is not trusted: refused, and permanent.
    let err = Store::open_location(&location(&format!("{}?sslmode=verify-full", pg.url(&name))))
        .unwrap_err();
    assert!(!err.is_retryable(), "{}", text_of(&err));
    assert!(text_of(&err).contains("certificate"), "{}", text_of(&err));
}
