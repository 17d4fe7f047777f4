//! `regdrop deliver` end to end with the state store on PostgreSQL: a real sshd, the real
//! binary, the receipt in the database, `receipts verify` and `status` reading it back.

use crate::util;
use crate::util::postgres::Postgres;
use crate::util::sshd::Sshd;
use regdrop::core::config::location::DbLocation;
use regdrop::store::{ReceiptFilter, RunState, Store};
use std::path::Path;

fn regdrop(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = util::cli::run(util::cli::regdrop_in(dir).args(args));
    (out.ok(), out.text())
}

#[test]
fn deliver_records_the_run_and_its_receipt_in_postgresql() {
    let pg = Postgres::get();
    let name = pg.fresh_database();
    let url = pg.url(&name);
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("in");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rec = util::cli::age_keygen(&d.join("age.key"));
    std::fs::create_dir_all(d.join("subs")).unwrap();
    std::fs::write(
        d.join("regdrop.toml"),
        format!(
            "register = \"register.sqlite\"\nspool_dir = \"spool\"\nstate_db = \"{url}\"\nsubscriptions_dir = \"subs\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("subs/sub.toml"),
        util::cli::CustomerSub {
            port: sshd.port,
            user: &util::sshd::current_user(),
            host_key: &sshd.host_pub,
            key: &sshd.user_key,
            remote: &remote.display().to_string(),
            recipient: &rec,
            extract_extra: "",
            max_attempts: 4,
            extra: "",
        }
        .toml(),
    )
    .unwrap();
    let (ok, out) = regdrop(
        d,
        &["register", "generate", "--vehicles", "500", "--seed", "9"],
    );
    assert!(ok, "{out}");
    let (ok, out) = regdrop(d, &["deliver", "sub", "--at", "2026-11-25T06:00:00+01:00"]);
    assert!(ok, "{out}");
    assert!(remote.join("sub_20261125.dsv.age").exists(), "{out}");
    // No SQLite state file was made: everything went to the database.
    assert!(!d.join("state").exists());

    let s = Store::open_location(&DbLocation::from_config(&url, d)).unwrap();
    let receipts = s.receipts(&ReceiptFilter::default()).unwrap();
    assert_eq!(receipts.len(), 1);
    let r = &receipts[0];
    assert_eq!(
        r.remote_path,
        remote.join("sub_20261125.dsv.age").display().to_string()
    );
    let run = s.get_run(&r.run_id).unwrap().unwrap();
    assert_eq!(run.state, RunState::Delivered);
    assert_eq!(s.attempts(&r.run_id).unwrap().len(), 1);
    let (ok, out) = regdrop(d, &["receipts", "verify"]);
    assert!(ok, "{out}");
    // The same run again is the same receipt (idempotent across processes).
    let (ok, out) = regdrop(d, &["deliver", "sub", "--at", "2026-11-25T06:00:00+01:00"]);
    assert!(ok, "{out}");
    assert_eq!(s.receipts(&ReceiptFilter::default()).unwrap().len(), 1);
    let (_, out) = regdrop(d, &["status"]);
    assert!(out.contains("sub"), "{out}");
}
