//! The end of a PostgreSQL register's read: a connection lost at the read's COMMIT, after
//! every row came, fails the attempt (a solo run, or every member of a shared scan)
//! retryably and leaves no sealed file in the spool.

use super::pg_register::{pair, sub, tree, VEHICLES};
use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::postgres;
use regdrop::core::config::location::DbLocation;
use regdrop::core::plan::RunPlan;
use regdrop::core::retry::{Classify, ErrorClass};
use regdrop::pipeline::artifact::{generate_and_seal, JobError, Workshop};
use regdrop::pipeline::shared_scan::{seal_shared, Member};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The simple-query message `COMMIT`: 'Q', its length (11, itself included), "COMMIT\0".
const COMMIT_MESSAGE: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";

/// How one attempt reads the register: alone, or as a shared scan of two members.
#[derive(Clone, Copy, Debug)]
enum How {
    Solo,
    Shared,
}

/// One generation through `proxy` into `spool`: each artifact's rows or the error, and the
/// most rows the progress reported.
fn generate(
    proxy: &Proxy,
    spool: &Path,
    report: &str,
    how: How,
) -> (Vec<Result<u64, JobError>>, u64) {
    let p = pair();
    let url = format!("postgresql://postgres@127.0.0.1:{}/{}", proxy.port, p.db);
    let at = DbLocation::from_config(&url, Path::new(""));
    let plan = RunPlan::new(&sub(report), "2026-11-25T05:00:00Z".parse().unwrap(), None).unwrap();
    let mut rows_seen = 0;
    let mut progress = |done, _| rows_seen = rows_seen.max(done);
    let results = match how {
        How::Solo => {
            let at = Workshop {
                register: &at,
                spool,
                xlsx_row_limit: None,
                passphrase: None,
            };
            vec![generate_and_seal(at, "a", &plan, &mut progress).map(|a| a.rows)]
        }
        How::Shared => {
            let mut members: Vec<Member<'_>> = ["m0", "m1"]
                .into_iter()
                .map(|name| Member {
                    plan: &plan,
                    spool,
                    artifact_name: name.to_string(),
                    follow: None,
                })
                .collect();
            match seal_shared(&at, &mut members, &mut progress, &|| false) {
                Ok(scanned) => scanned
                    .results
                    .into_iter()
                    .map(|r| r.map(|a| a.rows))
                    .collect(),
                Err(e) => vec![Err(e)],
            }
        }
    };
    (results, rows_seen)
}

/// The COMMITs the client sent through `proxy`, once its connections have ended.
fn settled(proxy: &Proxy) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.closed.load(Ordering::SeqCst) < proxy.connections() {
        assert!(
            Instant::now() < deadline,
            "the register's connection did not end"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    proxy.watched.load(Ordering::SeqCst)
}

#[test]
fn a_register_connection_lost_at_the_commit_fails_retryably_and_leaves_no_sealed_file() {
    let pg = postgres::Postgres::get();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for (report, how) in [
        ("report = \"technical_owners\"", How::Solo),
        // A main file and a code table sealed after it.
        (
            "report = \"technical\"\ncode_tables = [\"fuel\"]",
            How::Solo,
        ),
        ("report = \"technical_owners\"", How::Shared),
    ] {
        // A healthy run through the proxy counts its COMMITs (not bytes: tokio-postgres
        // names statements from a counter of the whole process, so the same run sends a
        // few bytes more once other tests have prepared more statements).
        let watch = Faults {
            watch: Some(COMMIT_MESSAGE),
            ..Faults::default()
        };
        let proxy = rt.block_on(Proxy::with(0, pg.port, watch));
        let spool = tempfile::tempdir().unwrap();
        let (ok, rows) = generate(&proxy, spool.path(), report, how);
        for r in ok {
            let r = r.unwrap_or_else(|e| panic!("{}", regdrop::core::errors::chain(&e)));
            assert_eq!(r, rows, "{how:?}");
        }
        assert!(!tree(spool.path()).is_empty());
        let commits = settled(&proxy);
        assert!(commits >= 1, "{report} {how:?}: no COMMIT went out");
        assert_eq!(proxy.connections(), 1, "one register connection");
        drop(proxy);

        // The same run, the connection cut before its last COMMIT.
        let cut = Faults {
            watch: Some(COMMIT_MESSAGE),
            cut_at_watch: Some(commits),
            ..Faults::default()
        };
        let proxy = rt.block_on(Proxy::with(0, pg.port, cut));
        let spool = tempfile::tempdir().unwrap();
        let (results, rows_seen) = generate(&proxy, spool.path(), report, how);
        // A shared scan reports its progress at the end: for it the solo cases show that
        // the cut comes after every row, and the error says so below.
        if matches!(how, How::Solo) {
            assert_eq!(rows_seen, rows, "{report}: every row came before the cut");
        }
        assert!(rows > 0 && rows <= VEHICLES * 2, "{rows}");
        for r in results {
            let err = r
                .err()
                .unwrap_or_else(|| panic!("{report} {how:?}: the cut COMMIT went unnoticed"));
            let text = regdrop::core::errors::chain(&err);
            assert_eq!(
                err.class(),
                ErrorClass::Retryable,
                "{report} {how:?}: {text}"
            );
            assert!(
                text.contains("PostgreSQL register"),
                "{report} {how:?}: {text}"
            );
            assert!(
                !text.contains("cut in the middle"),
                "{report} {how:?}: {text}"
            );
        }
        assert!(
            tree(spool.path()).is_empty(),
            "{report} {how:?}: {:?}",
            tree(spool.path())
        );
    }
}
