//! Mutation fuzzing of the example configuration files (`util::mutate`): `check`
//! (in-process and the real binary) never panics, and for every file it accepts, the
//! daemon's start, schedule and reload path never panics. `REGDROP_MUTATIONS` (default 1500)
//! and `REGDROP_MUTATION_SEED` (default 9) choose the size and the seed.

use crate::util;

#[tokio::test(start_paused = true)]
async fn mutated_config_files_never_panic_check_or_daemon_start() {
    let n: usize = std::env::var("REGDROP_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let seed: u64 = std::env::var("REGDROP_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9);
    let dir = tempfile::tempdir().unwrap();
    let f = util::mutate::campaign(n, seed, dir.path()).await;
    eprintln!(
        "mutations {} (seed {seed}): accepted {}, refused {}, check runs {}, daemon files {}, panics {}",
        f.mutations,
        f.accepted,
        f.refused,
        f.cli_checks,
        f.daemon_files,
        f.panics.len()
    );
    assert!(f.panics.is_empty(), "{}", f.panics.join("\n----\n"));
    // The mutations exercise both sides.
    assert!(f.accepted > 0 && f.refused > 0, "{f:?}");
}
