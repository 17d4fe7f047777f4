//! The README's main command, `regdrop demo`, runs to the end on a fresh folder and again
//! over its own previous run; it never deletes a folder that is not a demo.

use crate::util;

fn demo(dir: &std::path::Path) -> (bool, String) {
    let out = util::cli::run(
        util::cli::regdrop()
            .args(["demo", "--vehicles", "4000", "--cycles", "2", "--dir"])
            .arg(dir),
    );
    (out.ok(), out.text())
}

#[test]
fn demo_delivers_every_subscription_and_verifies_the_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    for _ in 0..2 {
        let (ok, out) = demo(&dir);
        assert!(ok, "{out}");
        assert!(out.contains("4 subscriptions valid"), "{out}");
        // The daemon stops once every subscription delivered 2 runs (a 9th may finish
        // during shutdown).
        let n: usize = out
            .split("receipts: ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((8..=12).contains(&n), "{out}");
        assert!(
            out.contains(&format!("chain intact: {n} verified")),
            "{out}"
        );
        for id in [
            "demo-technical",
            "demo-owners-csv",
            "demo-first-reg",
            "demo-owners",
        ] {
            assert!(
                out.matches(&format!("   {id} ")).count() >= 2,
                "{id} delivered twice by the daemon: {out}"
            );
        }
        assert!(
            out.contains("TEKN_KJM¤TEKN_KJM_PERSJ"),
            "decrypted sample shown: {out}"
        );
        let files = std::fs::read_dir(dir.join("sftp-root/incoming"))
            .unwrap()
            .count();
        assert_eq!(files, n * 3, "each delivery: file, .sha256, .manifest.json");
    }
    let other = tmp.path().join("not-a-demo");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("precious.txt"), "keep").unwrap();
    let (ok, out) = demo(&other);
    assert!(!ok && out.contains("not a regdrop demo folder"), "{out}");
    assert!(other.join("precious.txt").exists());
}
