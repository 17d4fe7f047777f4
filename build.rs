//! Build script: puts the git commit the binary is built from into `REGDROP_COMMIT`
//! (`regdrop --version`, the `regdrop_build_info` metric, the daemon's start line);
//! "unknown" outside a git checkout (a source tarball) or without git.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&dir);
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(dir, &["rev-parse", "--short", "HEAD"]);
    if commit.is_some() {
        // A new commit moves the branch's ref (or HEAD itself when detached); a checkout of
        // another branch rewrites HEAD; `git pack-refs` moves refs into packed-refs. The
        // paths come from git, so a worktree (whose .git is a file) is followed too.
        let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
        if let Some(r) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
            watch.push(r);
        }
        for p in watch {
            // Only files that exist: cargo reruns the script at every build for a missing one.
            let path = git(
                dir,
                &["rev-parse", "--path-format=absolute", "--git-path", &p],
            );
            if let Some(path) = path.filter(|p| Path::new(p).exists()) {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!(
        "cargo:rustc-env=REGDROP_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}
