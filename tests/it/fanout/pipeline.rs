//! `pipeline::shared_scan::seal_shared` on a generated register: one scan, one artifact per
//! member, each sealed to its own recipient and decrypted by the reference `age` CLI to the
//! plaintext a solo run of the same plan seals; failing members drop out with their own
//! error and leave nothing in their spool.

use crate::util::{self, small_disk::SmallDisk};
use regdrop::core::config::location::DbLocation;
use regdrop::core::config::raw::RawSubscription;
use regdrop::core::config::validate::{validate_subscription, Inherited};
use regdrop::core::plan::RunPlan;
use regdrop::pipeline::artifact::{self, JobError, Workshop};
use regdrop::pipeline::shared_scan::{seal_shared, Member};
use regdrop::register;
use std::path::{Path, PathBuf};
use std::process::Command;

const HOSTKEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL8KQRoLcAyA3HjT2XTLV/KiImqim5ZNP9y7enr60/qj";

/// A plan of subscription `id` around an `[extract]` body, sealed to `recipient`.
fn plan(id: &str, extract: &str, recipient: &str) -> RunPlan {
    let text = format!(
        "id = \"{id}\"\ncustomer = \"Test\"\nlegal_basis = \"test\"\n[schedule]\ncron = \"0 6 * * *\"\n\
         [target]\nhost = \"127.0.0.1\"\nusername = \"u\"\nhost_keys = [\"{HOSTKEY}\"]\n\
         auth = {{ key_file = \"k\" }}\nremote_dir = \"/in\"\n[extract]\n{extract}\n\
         [encryption]\nrecipients = [\"{recipient}\"]\n"
    );
    let raw: RawSubscription = toml::from_str(&text).unwrap();
    let inh = Inherited {
        timezone: "Europe/Oslo".into(),
        retry: Default::default(),
        secrets_dir: ".".into(),
        offers: regdrop::core::config::validate::Offers::ASSUMED,
    };
    let sub =
        validate_subscription(&raw, &inh, Path::new("t.toml")).unwrap_or_else(|p| panic!("{p:?}"));
    RunPlan::new(&sub, "2026-11-25T05:00:00Z".parse().unwrap(), None).unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    register: PathBuf,
    /// (identity file, recipient) per customer.
    keys: Vec<(PathBuf, String)>,
}

fn setup(customers: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let register = dir.path().join("register.sqlite");
    register::generate(
        &register,
        &register::GenerateOptions {
            vehicles: 3000,
            seed: 12,
        },
        &mut |_| {},
    )
    .unwrap();
    let keys = (0..customers)
        .map(|i| {
            let id = dir.path().join(format!("customer{i}.key"));
            let rec = util::cli::age_keygen(&id);
            (id, rec)
        })
        .collect();
    Setup {
        dir,
        register,
        keys,
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The reference CLI's `age -d`; `None` when it refuses.
fn age_decrypt(identity: &Path, file: &Path) -> Option<Vec<u8>> {
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(file)
        .output()
        .expect("age is installed (apt-get install age)");
    out.status.success().then_some(out.stdout)
}

/// What a solo run of `plan` seals: its plaintext SHA-256 and rows.
fn solo(s: &Setup, plan: &RunPlan, name: &str) -> (String, u64) {
    let spool = s.dir.path().join("solo");
    let art = artifact::generate_and_seal(
        Workshop {
            register: &DbLocation::Sqlite(s.register.clone()),
            spool: &spool,
            xlsx_row_limit: None,
            passphrase: None,
        },
        name,
        plan,
        &mut |_, _| {},
    )
    .unwrap();
    (art.sealed.plaintext_sha256, art.rows)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn one_scan_seals_each_member_to_its_own_key_as_a_solo_run_would() {
    let s = setup(4);
    let k = &s.keys;
    let plans = [
        plan("a", "report = \"technical_owners\"", &k[0].1),
        plan("b", "report = \"technical_owners\"", &k[1].1),
        plan(
            "c",
            "report = \"technical_owners\"\nformat = \"csv\"\nencoding = \"iso-8859-1\"\nline_ending = \"crlf\"",
            &k[2].1,
        ),
        plan("d", "report = \"technical_owners\"", &k[3].1),
    ];
    let spool = s.dir.path().join("spool");
    let mut members: Vec<Member<'_>> = plans
        .iter()
        .map(|p| Member {
            plan: p,
            spool: &spool,
            artifact_name: format!("{}.artifact", p.subscription),
            follow: None,
        })
        .collect();
    let mut seen = 0;
    let scanned = seal_shared(
        &DbLocation::Sqlite(s.register.clone()),
        &mut members,
        &mut |d, _| seen = d,
        &|| false,
    )
    .unwrap();
    assert_eq!(scanned.results.len(), 4);
    assert!(scanned.rows > 1000, "{}", scanned.rows);
    assert_eq!(
        seen, scanned.rows,
        "progress reports the rows of the one scan"
    );
    let mut ciphertexts = Vec::new();
    for (i, (p, r)) in plans.iter().zip(&scanned.results).enumerate() {
        let art = r.as_ref().unwrap_or_else(|e| panic!("member {i}: {e}"));
        let (solo_sum, solo_rows) = solo(&s, p, &format!("solo-{i}"));
        assert_eq!(art.rows, solo_rows);
        assert_eq!(art.file_name, p.planned_files().main);
        let plain = age_decrypt(&k[i].0, &art.sealed.path).expect("own key decrypts");
        assert_eq!(sha256(&plain), solo_sum, "member {i} against its solo run");
        assert_eq!(art.sealed.plaintext_sha256, solo_sum);
        assert_eq!(art.sealed.plaintext_bytes, plain.len() as u64);
        let cipher = std::fs::read(&art.sealed.path).unwrap();
        assert_eq!(sha256(&cipher), art.sealed.ciphertext_sha256);
        // Sealed to its own customer only.
        let other = &k[(i + 1) % 4].0;
        assert!(age_decrypt(other, &art.sealed.path).is_none(), "member {i}");
        ciphertexts.push(cipher);
    }
    let sums: Vec<&str> = scanned
        .results
        .iter()
        .map(|r| r.as_ref().unwrap().sealed.plaintext_sha256.as_str())
        .collect();
    assert_eq!(sums[0], sums[1]);
    assert_eq!(sums[0], sums[3]);
    assert_ne!(
        sums[0], sums[2],
        "csv in ISO-8859-1 with CRLF is another plaintext"
    );
    assert_ne!(ciphertexts[0], ciphertexts[1]);
    assert_eq!(
        files_in(&spool),
        ["a.artifact", "b.artifact", "c.artifact", "d.artifact"]
    );
}

#[test]
fn a_member_whose_sealer_fails_drops_out_alone_and_leaves_nothing() {
    let s = setup(4);
    let k = &s.keys;
    let plans: Vec<RunPlan> = (0..4)
        .map(|i| plan(&format!("m{i}"), "report = \"technical_owners\"", &k[i].1))
        .collect();
    let spool = s.dir.path().join("spool");
    // m1's spool cannot be made: a file stands where its folder would be.
    let blocked = s.dir.path().join("blocked");
    std::fs::write(&blocked, "not a folder").unwrap();
    let blocked_spool = blocked.join("spool");
    // m2's spool fills up halfway through (a 256 KiB disk, the artifact is larger).
    let small = s.dir.path().join("small");
    let disk = util::root::require("a spool disk that fills up mid-scan is a small tmpfs")
        .then(|| SmallDisk::mount(&small, "256k"));
    let spools = [
        &spool,
        &blocked_spool,
        if disk.is_some() { &small } else { &spool },
        &spool,
    ];
    let mut members: Vec<Member<'_>> = plans
        .iter()
        .zip(spools)
        .map(|(p, sp)| Member {
            plan: p,
            spool: sp,
            artifact_name: format!("{}.artifact", p.subscription),
            follow: None,
        })
        .collect();
    let scanned = seal_shared(
        &DbLocation::Sqlite(s.register.clone()),
        &mut members,
        &mut |_, _| {},
        &|| false,
    )
    .unwrap();
    let r = &scanned.results;
    match &r[1] {
        Err(e @ JobError::Seal(_)) => assert!(e.to_string().contains("spool folder"), "{e}"),
        other => panic!("m1: {:?}", other.as_ref().map(|a| &a.sealed.path)),
    }
    if disk.is_some() {
        match &r[2] {
            Err(e @ JobError::Seal(_)) => {
                assert!(e.to_string().contains("has room"), "{e}")
            }
            other => panic!("m2: {:?}", other.as_ref().map(|a| &a.sealed.path)),
        }
        assert!(files_in(&small).is_empty(), "{:?}", files_in(&small));
    }
    let (solo_sum, _) = solo(&s, &plans[0], "solo");
    for i in [0, 3] {
        let art = r[i].as_ref().unwrap_or_else(|e| panic!("m{i}: {e}"));
        assert!(art.sealed.ciphertext_bytes > 256 * 1024);
        let plain = age_decrypt(&k[i].0, &art.sealed.path).unwrap();
        assert_eq!(sha256(&plain), solo_sum, "m{i}");
    }
    let mut want = vec!["m0.artifact", "m3.artifact"];
    if disk.is_none() {
        want.insert(1, "m2.artifact");
    }
    assert_eq!(files_in(&spool), want);
    drop(disk);
}
