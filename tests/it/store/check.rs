//! `regdrop check` with a PostgreSQL `state_db`: it connects the way the daemon will and
//! says what to do when that fails (wrong password, no such database, server down), and a
//! password from a password file.

use crate::util;
use crate::util::postgres::{Postgres, PW_PASSWORD, PW_ROLE};
use std::path::Path;

fn check_with(dir: &Path, state_db: &str) -> util::cli::Out {
    std::fs::create_dir_all(dir.join("subs")).unwrap();
    std::fs::write(
        dir.join("regdrop.toml"),
        format!(
            "register = \"register.sqlite\"\nspool_dir = \"spool\"\nstate_db = \"{state_db}\"\nsubscriptions_dir = \"subs\"\n"
        ),
    )
    .unwrap();
    util::cli::run(util::cli::regdrop_in(dir).arg("check"))
}

/// The lines of `out` about `state_db`.
fn state_db_lines(out: &util::cli::Out) -> String {
    out.text()
        .lines()
        .filter(|l| l.contains("state database"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn check_connects_to_a_postgresql_state_db_and_says_what_to_do() {
    let pg = Postgres::get();
    let name = pg.fresh_database();
    pg.psql(&name, &format!("GRANT ALL ON SCHEMA public TO {PW_ROLE}"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let out = check_with(d, &pg.password_url(&name, PW_PASSWORD));
    assert_eq!(state_db_lines(&out), "", "{}", out.text());

    let secret = "Wrong-Horse-11";
    let out = check_with(d, &pg.password_url(&name, secret));
    let lines = state_db_lines(&out);
    assert!(!out.ok());
    assert!(lines.contains("password"), "{}", out.text());
    assert!(!out.text().contains(secret), "{}", out.text());
    assert!(lines.contains(":***@"), "{lines}");

    let out = check_with(d, &pg.url("no_such_db"));
    assert!(
        state_db_lines(&out).contains("the database does not exist"),
        "{}",
        out.text()
    );

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = check_with(d, &format!("postgresql://postgres@127.0.0.1:{port}/x"));
    assert!(
        state_db_lines(&out).contains("not reachable"),
        "{}",
        out.text()
    );
    // check changed nothing: the database is still empty (the daemon migrates at start).
    assert_eq!(
        pg.psql(&name, "SELECT to_regclass('schema_version') IS NULL")
            .trim(),
        "t"
    );
}

/// A URL without a password takes it from a password file (`passfile=PATH`, libpq's format),
/// as the daemon will: a good line logs in; a wrong password in it is a refused login (never
/// printed); a file others can read, or a missing one, is refused with what to do.
#[test]
fn a_password_file_gives_the_password_and_a_loose_or_missing_one_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let pg = Postgres::get();
    let name = pg.fresh_database();
    pg.psql(&name, &format!("GRANT ALL ON SCHEMA public TO {PW_ROLE}"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pass = d.join("pgpass");
    let write = |text: &str, mode: u32| {
        std::fs::write(&pass, text).unwrap();
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let url = format!(
        "postgresql://{PW_ROLE}@127.0.0.1:{}/{name}?passfile={}",
        pg.port,
        pass.display()
    );
    let good = format!(
        "# regdrop's state store\nother.example:*:*:*:not-this\n127.0.0.1:{}:{name}:{PW_ROLE}:{PW_PASSWORD}\n",
        pg.port
    );

    write(&good, 0o600);
    let out = check_with(d, &url);
    assert_eq!(state_db_lines(&out), "", "{}", out.text());

    let secret = "Wrong-Horse-11";
    write(&format!("*:*:*:{PW_ROLE}:{secret}\n"), 0o600);
    let out = check_with(d, &url);
    assert!(!out.ok(), "{}", out.text());
    assert!(state_db_lines(&out).contains("password"), "{}", out.text());
    assert!(!out.text().contains(secret), "{}", out.text());

    write(&good, 0o644);
    let out = check_with(d, &url);
    assert!(!out.ok(), "{}", out.text());
    assert!(
        state_db_lines(&out).contains(&format!("chmod 0600 {}", pass.display())),
        "{}",
        out.text()
    );

    std::fs::remove_file(&pass).unwrap();
    let out = check_with(d, &url);
    assert!(!out.ok(), "{}", out.text());
    assert!(
        state_db_lines(&out).contains("password file"),
        "{}",
        out.text()
    );
}
