//! `regdrop extract` end to end with the real binary: the artifact decrypts with the
//! reference `age` CLI (X25519 and ssh-ed25519 identities) to the recorded plaintext sum,
//! and no plaintext touches the disk on the way (spool, temp and output folders scanned).

use crate::util::{self, small_disk::SmallDisk};

use std::path::{Path, PathBuf};
use std::process::Command;

fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "`{name}` is missing: apt-get install -y age openssh-client (the CI script does)"
    );
    String::from_utf8(found.stdout).unwrap().trim().to_string()
}

struct Setup {
    dir: tempfile::TempDir,
    age_identity: PathBuf,
    ssh_identity: PathBuf,
}

/// A config folder with a generated register and subscriptions encrypted to a fresh X25519
/// key and a fresh ssh-ed25519 key.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let age_identity = d.join("age.key");
    let age_rec = util::cli::age_keygen(&age_identity);
    let ssh_identity = d.join("id_ed25519");
    assert!(Command::new(tool("ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "customer", "-f"])
        .arg(&ssh_identity)
        .status()
        .unwrap()
        .success());
    let ssh_rec = std::fs::read_to_string(d.join("id_ed25519.pub")).unwrap();
    let host = std::fs::read_to_string(d.join("id_ed25519.pub")).unwrap();
    util::cli::write_config(d, "");
    for (id, report, format, rec) in [
        ("owners-age", "technical_owners", "dsv", age_rec.trim()),
        ("owners-ssh", "owners", "csv", ssh_rec.trim()),
        ("owners-xlsx", "technical_owners", "xlsx", age_rec.trim()),
    ] {
        std::fs::write(
            d.join("subs").join(format!("{id}.toml")),
            format!(
                "id = \"{id}\"\ncustomer = \"C\"\nlegal_basis = \"test\"\n[schedule]\ncron = \"@daily\"\n[target]\nhost = \"127.0.0.1\"\nusername = \"u\"\nhost_keys = [\"{}\"]\nauth = {{ key_file = \"k\" }}\nremote_dir = \"/in\"\n[extract]\nreport = \"{report}\"\nformat = \"{format}\"\n[encryption]\nrecipients = [\"{rec}\"]\n",
                host.trim()
            ),
        )
        .unwrap();
    }
    let out = regdrop(
        d,
        &["register", "generate", "--vehicles", "3000", "--seed", "5"],
    );
    assert!(out.0, "{}", out.1);
    Setup {
        dir,
        age_identity,
        ssh_identity,
    }
}

fn regdrop(dir: &Path, args: &[&str]) -> (bool, String) {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = util::cli::run(util::cli::regdrop_in(dir).args(args).env("TMPDIR", &tmp));
    (out.ok(), out.text())
}

fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no `{name}` in {out}"))
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn age_decrypt(identity: &Path, file: &Path) -> Vec<u8> {
    let out = Command::new(tool("age"))
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn artifacts_decrypt_with_the_reference_age_cli() {
    let s = setup();
    let d = s.dir.path();
    for (id, identity) in [
        ("owners-age", &s.age_identity),
        ("owners-ssh", &s.ssh_identity),
        ("owners-xlsx", &s.age_identity),
    ] {
        let file = d.join(format!("{id}.age"));
        let (ok, out) = regdrop(d, &["extract", id, "--out", file.to_str().unwrap()]);
        assert!(ok, "{out}");
        let cipher = std::fs::read(&file).unwrap();
        assert_eq!(field(&out, "ciphertext sha256:"), sha256(&cipher));
        assert_eq!(
            field(&out, "ciphertext bytes:").parse::<usize>().unwrap(),
            cipher.len()
        );
        let plain = age_decrypt(identity, &file);
        assert_eq!(field(&out, "plaintext sha256:"), sha256(&plain), "{id}");
        assert_eq!(
            field(&out, "plaintext bytes:").parse::<usize>().unwrap(),
            plain.len()
        );
        let rows: usize = field(&out, "rows:").parse().unwrap();
        assert!(rows > 100);
        match id {
            "owners-age" => {
                let text = String::from_utf8(plain).unwrap();
                assert_eq!(text.lines().count(), rows + 1);
                assert!(text.starts_with("TEKN_KJM¤"));
            }
            "owners-ssh" => assert!(String::from_utf8(plain)
                .unwrap()
                .starts_with("TEKN_KJM,EIER_NAVN,")),
            _ => assert_eq!(&plain[..2], b"PK", "an xlsx is a zip"),
        }
    }
}

/// Every byte of every file under `dir`.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

#[test]
fn no_plaintext_touches_the_disk() {
    let s = setup();
    let d = s.dir.path();
    // A known owner name and birth date from the register.
    let conn = rusqlite::Connection::open(d.join("register.sqlite")).unwrap();
    let (last, birth): (String, String) = conn
        .query_row(
            "SELECT last_name, birth_date FROM ownership WHERE to_date IS NULL AND last_name IS NOT NULL AND role = 'eier' AND length(last_name) > 5 LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    drop(conn);
    let out_dir = d.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    for id in ["owners-age", "owners-xlsx"] {
        let file = out_dir.join(format!("{id}.age"));
        let (ok, out) = regdrop(d, &["extract", id, "--out", file.to_str().unwrap()]);
        assert!(ok, "{out}");
        // The extract holds the name (so the scan below could find it) ...
        let plain = age_decrypt(&s.age_identity, &file);
        if id == "owners-age" {
            assert!(
                String::from_utf8_lossy(&plain).contains(&last),
                "the owner is in the extract"
            );
        }
    }
    // ... but no file in the spool, the temp folder or the output folder does.
    let scanned = [
        files(&d.join("spool")),
        files(&d.join("tmp")),
        files(&out_dir),
    ]
    .concat();
    assert!(scanned.len() >= 2);
    for (path, bytes) in scanned {
        for needle in [last.as_bytes(), birth.as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds plaintext",
                path.display()
            );
        }
    }
    // The spool folder is private and holds no leftovers.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(d.join("spool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert!(
        files(&d.join("spool")).is_empty(),
        "extract leaves nothing in the spool"
    );
}

#[test]
fn a_full_spool_disk_fails_clearly_and_leaves_no_half_file() {
    if !util::root::require("it mounts a small tmpfs as the spool") {
        return;
    }
    let s = setup();
    let d = s.dir.path();
    // The spool is a 256 KiB disk; the extract is megabytes.
    let disk = SmallDisk::mount(&d.join("spool"), "256k");
    for (id, ext) in [("owners-age", "dsv"), ("owners-xlsx", "xlsx")] {
        let out_file = d.join(format!("{id}.{ext}.age"));
        let (ok, out) = regdrop(d, &["extract", id, "--out", out_file.to_str().unwrap()]);
        assert!(!ok, "{id}: {out}");
        assert!(
            out.contains("No space left on device"),
            "{id}: the cause is named: {out}"
        );
        assert!(!out_file.exists(), "{id}: no output file");
        let left: Vec<_> = files(&disk.0).into_iter().map(|(p, _)| p).collect();
        assert!(left.is_empty(), "{id}: nothing left in the spool: {left:?}");
    }
}
