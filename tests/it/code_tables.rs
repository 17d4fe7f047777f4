//! Code tables round-trip. Delivered to a real OpenSSH sshd beside a report (and
//! alone), each code table is its own file with its own `.sha256` sidecar, listed in the
//! manifest and the receipt; decrypted with the reference `age` CLI (or read plain when the
//! subscription says `mode = "none"`) it reads back to exactly the codes and names of
//! `data/*.csv`.

use crate::util::{self, sshd::Sshd};
use regdrop::core::codes::CodeTable;
use std::path::{Path, PathBuf};
use std::process::Command;

fn regdrop(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = util::cli::run(util::cli::regdrop_in(dir).args(args));
    (out.ok(), out.text())
}

/// `data/<stem>.csv` read independently of the library: `#` lines are notes, then a
/// `kode;navn` header.
fn data_file(stem: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data")
            .join(format!("{stem}.csv")),
    )
    .unwrap();
    let mut lines = text
        .trim_start_matches('\u{feff}')
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    assert_eq!(lines.next().unwrap().trim(), "kode;navn");
    lines
        .map(|l| {
            let (k, v) = l.split_once(';').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn sha256sum_c(dir: &Path, file: &str) {
    let out = Command::new("sha256sum")
        .arg("-c")
        .arg(format!("{file}.sha256"))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{file}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

struct Env {
    dir: tempfile::TempDir,
    identity: PathBuf,
}

fn setup(sshd: &Sshd, remote: &Path) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let identity = d.join("age.key");
    let rec = util::cli::age_keygen(&identity);
    util::cli::write_config(d, "");
    let target = format!(
        "[target]\nhost = \"127.0.0.1\"\nport = {}\nusername = \"{}\"\nhost_keys = [\"{}\"]\nauth = {{ key_file = \"{}\" }}\nremote_dir = \"{}\"\n",
        sshd.port,
        util::sshd::current_user(),
        sshd.host_pub,
        sshd.user_key.display(),
        remote.display()
    );
    // The open-data report, unencrypted, in csv, with the two tyre tables beside it.
    std::fs::write(
        d.join("subs/open.toml"),
        format!(
            "id = \"open\"\ncustomer = \"Analyse AS\"\ncase_number = \"26/700001\"\n[schedule]\ncron = \"0 4 * * MON\"\n{target}\
             [extract]\nreport = \"technical_open\"\nformat = \"csv\"\ncode_tables = [\"load_index\", \"speed_index\"]\n\
             [encryption]\nmode = \"none\"\n[delivery]\nfile_name = \"open_{{run:%Y%m%d}}.{{ext}}\"\n"
        ),
    )
    .unwrap();
    // Every code table alone, encrypted, in the authority's dsv, ISO-8859-1 and CRLF.
    let all: Vec<String> = CodeTable::ALL
        .iter()
        .map(|t| format!("\"{}\"", t.as_str()))
        .collect();
    std::fs::write(
        d.join("subs/codes.toml"),
        format!(
            "id = \"codes\"\ncustomer = \"Verksted AS\"\ncase_number = \"26/700002\"\n[schedule]\ncron = \"0 6 1 * *\"\n{target}\
             [extract]\nreport = \"code_tables\"\ncode_tables = [{}]\nformat = \"dsv\"\nencoding = \"iso-8859-1\"\nline_ending = \"crlf\"\n\
             [encryption]\nrecipients = [\"{}\"]\n[delivery]\nfile_name = \"kodeverk_{{run:%Y%m%d}}.{{ext}}\"\n",
            all.join(", "),
            rec.trim()
        ),
    )
    .unwrap();
    let (ok, out) = regdrop(d, &["check", "--no-environment"]);
    assert!(ok, "{out}");
    let (ok, out) = regdrop(
        d,
        &["register", "generate", "--vehicles", "2000", "--seed", "5"],
    );
    assert!(ok, "{out}");
    Env { dir, identity }
}

fn receipt(dir: &Path, id: i64) -> serde_json::Value {
    let (ok, out) = regdrop(dir, &["receipts", "show", &id.to_string()]);
    assert!(ok, "{out}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn code_tables_round_trip_beside_a_report_and_alone() {
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("in");
    let env = setup(&sshd, &remote);
    let d = env.dir.path();

    // --- technical_open + two tyre tables, unencrypted csv ---
    let (ok, out) = regdrop(d, &["deliver", "open", "--at", "2026-11-23T04:00:00+01:00"]);
    assert!(ok, "{out}");
    let main = "open_20261123.csv";
    let tables = [
        (CodeTable::LoadIndex, "open_20261123_belastningsindeks.csv"),
        (CodeTable::SpeedIndex, "open_20261123_hastighetsindeks.csv"),
    ];
    let plain = std::fs::read_to_string(remote.join(main)).unwrap();
    let header: Vec<&str> = plain.lines().next().unwrap().split(',').collect();
    assert_eq!(header.len(), 82);
    for f in ["TEKN_KJM", "TEKN_KJM_PERSJ", "TEKN_UNR"] {
        assert!(!header.contains(&f), "{f} in open data");
    }
    sha256sum_c(&remote, main);
    let r = receipt(d, 1);
    assert_eq!(r["report"], "technical_open");
    assert_eq!(r["files"].as_array().unwrap().len(), 2);
    for (i, (table, name)) in tables.iter().enumerate() {
        sha256sum_c(&remote, name);
        let bytes = std::fs::read(remote.join(name)).unwrap();
        let mut rd = csv::Reader::from_reader(bytes.as_slice());
        assert_eq!(
            rd.headers().unwrap().iter().collect::<Vec<_>>(),
            ["kode", "navn"]
        );
        let got: Vec<(String, String)> = rd
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].to_string(), r[1].to_string())
            })
            .collect();
        assert_eq!(got, data_file(table.file_stem()), "{name}");
        let f = &r["files"][i];
        assert_eq!(f["name"], *name);
        assert_eq!(f["code_table"], table.as_str());
        assert_eq!(f["rows"], got.len() as u64);
        assert_eq!(f["bytes"], bytes.len() as u64);
        assert_eq!(f["sha256"], sha256(&bytes));
        assert_eq!(f["remote_path"], remote.join(name).display().to_string());
    }
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(remote.join(format!("{main}.manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["files"], r["files"]);
    assert_eq!(manifest["encrypted"], false);

    // --- every code table alone, encrypted dsv in ISO-8859-1 with CRLF ---
    let (ok, out) = regdrop(
        d,
        &["deliver", "codes", "--at", "2026-12-01T06:00:00+01:00"],
    );
    assert!(ok, "{out}");
    let r = receipt(d, 2);
    assert_eq!(r["report"], "code_tables");
    assert_eq!(
        r["files"].as_array().unwrap().len(),
        CodeTable::ALL.len() - 1
    );
    for (i, table) in CodeTable::ALL.iter().enumerate() {
        let name = format!("kodeverk_20261201_{}.dsv.age", table.file_stem());
        sha256sum_c(&remote, &name);
        let cipher = std::fs::read(remote.join(&name)).unwrap();
        let out = Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&env.identity)
            .arg(remote.join(&name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "age -d {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // ISO-8859-1: one byte per character.
        let text: String = out.stdout.iter().map(|&b| b as char).collect();
        assert!(
            text.ends_with("\r\n") && !text.replace("\r\n", "").contains('\n'),
            "{name}: CRLF lines"
        );
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        assert_eq!(lines.next().unwrap(), "kode¤navn");
        let got: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l.split_once('¤').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        assert_eq!(got, data_file(table.file_stem()), "{name}");
        // The first table is the main file of the run; the others are its further files.
        if i == 0 {
            assert_eq!(r["remote_path"], remote.join(&name).display().to_string());
            assert_eq!(r["ciphertext_sha256"], sha256(&cipher));
            assert_eq!(r["rows"], got.len() as u64);
        } else {
            let f = &r["files"][i - 1];
            assert_eq!(f["name"], name.as_str());
            assert_eq!(f["sha256"], sha256(&cipher));
            assert_eq!(f["plaintext_sha256"], sha256(&out.stdout));
        }
    }

    // Both receipts (one-file form would be v1; these are v2) verify in the chain, and the
    // billing export counts every file.
    let (ok, out) = regdrop(d, &["receipts", "verify"]);
    assert!(ok && out.contains("chain intact: 2 verified"), "{out}");
    let (ok, out) = regdrop(d, &["receipts", "export", "--format", "csv"]);
    assert!(ok, "{out}");
    let mut rd = csv::Reader::from_reader(out.as_bytes());
    let h = rd.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let lines: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(&lines[0][col("files")], "3");
    assert_eq!(
        &lines[1][col("files")],
        CodeTable::ALL.len().to_string().as_str()
    );
    assert_eq!(&lines[1][col("case_number")], "26/700002");
}

/// Forwards to `upstream`; connection number `victim` (0-based) is cut after `cut` bytes
/// client -> server, the others pass untouched.
async fn cut_connection(upstream: u16, victim: u64, cut: u64) -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let conns = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((client, _)) = l.accept().await {
            let n = conns.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let server = tokio::net::TcpStream::connect(("127.0.0.1", upstream))
                    .await
                    .unwrap();
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async {
                    let mut buf = vec![0u8; 4096];
                    let mut sent = 0u64;
                    while let Ok(k) = cr.read(&mut buf).await {
                        if k == 0 || (n == victim && sent + k as u64 > cut) {
                            return;
                        }
                        sent += k as u64;
                        if sw.write_all(&buf[..k]).await.is_err() {
                            return;
                        }
                    }
                };
                let down = tokio::io::copy(&mut sr, &mut cw);
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    port
}

/// A connection cut while the second code table uploads: the retry finds the first table
/// already delivered (not uploaded again, no `.v2`), finishes the rest, one receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_during_a_code_table_is_resumed_without_duplicates() {
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("in");
    // Connection 0 checks the target before the extract, 1 carries the first table, 2 the
    // second: that one is cut.
    let port = cut_connection(sshd.port, 2, 24 * 1024).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    util::cli::write_config(&d, "");
    std::fs::write(
        d.join("subs/open.toml"),
        format!(
            "id = \"open\"\ncustomer = \"Analyse AS\"\n[schedule]\ncron = \"0 4 * * MON\"\n\
             [target]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"{}\"\nhost_keys = [\"{}\"]\nauth = {{ key_file = \"{}\" }}\nremote_dir = \"{}\"\n\
             [extract]\nreport = \"technical_open\"\ncode_tables = [\"fuel\", \"make\"]\n\
             [encryption]\nmode = \"none\"\n[delivery]\nfile_name = \"open.{{ext}}\"\nif_exists = \"fail\"\n\
             [retry]\nbase_secs = 1\ncap_secs = 1\nmax_attempts = 4\n",
            util::sshd::current_user(),
            sshd.host_pub,
            sshd.user_key.display(),
            remote.display()
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        let (ok, out) = regdrop(
            &d,
            &["register", "generate", "--vehicles", "300", "--seed", "2"],
        );
        assert!(ok, "{out}");
        regdrop(
            &d,
            &["deliver", "open", "--at", "2026-11-23T04:00:00+01:00"],
        )
    })
    .await
    .unwrap();
    assert!(out.0, "{}", out.1);
    assert!(
        out.1.contains("attempt 1 failed"),
        "the make table's upload was cut: {}",
        out.1
    );
    let mut names = util::files::ls(&remote);
    names.sort();
    assert_eq!(
        names,
        [
            "open.dsv",
            "open.dsv.manifest.json",
            "open.dsv.sha256",
            "open_drivstoff.dsv",
            "open_drivstoff.dsv.sha256",
            "open_merkekode.dsv",
            "open_merkekode.dsv.sha256"
        ]
    );
    for f in ["open.dsv", "open_drivstoff.dsv", "open_merkekode.dsv"] {
        sha256sum_c(&remote, f);
    }
    let r = receipt(dir.path(), 1);
    assert_eq!(r["attempts"], 2);
    assert_eq!(r["files"].as_array().unwrap().len(), 2);
    assert_eq!(
        data_file("merkekode").len() + 1,
        std::fs::read_to_string(remote.join("open_merkekode.dsv"))
            .unwrap()
            .lines()
            .count()
    );
}
