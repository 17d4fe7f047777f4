//! The name rules of a delivery, pure: what a final name may be, run ids, the temp names
//! of the data file, its sidecars and the rename test (`.FINAL[SUFFIX].RUN.part`),
//! versioned names (`a.v2.dsv.age`), and which run a run id belongs to.

use super::super::{SftpError, Upload};

/// Sidecar suffixes, in upload order.
pub(crate) const SIDECARS: [&str; 3] = [".sha256", ".manifest.json", ".done"];

/// Suffixes of the two tiny files that test whether a plain rename replaces.
pub(crate) const RENAME_TESTS: [&str; 2] = [".rename-test-a", ".rename-test-b"];

/// A final file name must be one plain, visible path component.
pub(crate) fn check_name(name: &str) -> Result<(), SftpError> {
    let bad = |reason| {
        Err(SftpError::InvalidName {
            name: name.into(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 200 {
        return bad("longer than 200 bytes");
    }
    if name.contains('/') || name.contains('\\') {
        return bad("contains a path separator");
    }
    if name.starts_with('.') {
        return bad("starts with a dot");
    }
    if name.chars().any(|c| c.is_control()) {
        return bad("contains a control character");
    }
    Ok(())
}

pub(crate) fn check_run_id(run: &str) -> Result<(), SftpError> {
    if run.is_empty()
        || run.len() > 64
        || !run
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(SftpError::InvalidName {
            name: run.into(),
            reason: "a run id must be 1-64 characters of [A-Za-z0-9_-]",
        });
    }
    Ok(())
}

/// `.FINAL{suffix}.RUN.part`: the temp name of the data file (`suffix` empty), of a sidecar
/// or of a rename test, which an interrupted attempt leaves behind as litter.
pub(crate) fn temp_name(final_name: &str, suffix: &str, run: &str) -> String {
    format!(".{final_name}{suffix}.{run}.part")
}

/// `.NAME.RUN.part`.
pub(crate) fn part_name(final_name: &str, run: &str) -> String {
    temp_name(final_name, "", run)
}

/// `.FINAL.RUN.old`: the old file renamed aside by an `overwrite` without posix-rename.
pub(crate) fn aside_name(final_name: &str, run: &str) -> String {
    format!(".{final_name}.{run}.old")
}

/// The subscription part of a run id `SUB-YYYYMMDDTHHMMSSZ` (how the store names runs).
pub(crate) fn owner_of(run: &str) -> Option<&str> {
    let (sub, ts) = run.rsplit_once('-')?;
    let b = ts.as_bytes();
    let shaped = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    (shaped && !sub.is_empty()).then_some(sub)
}

/// Whether `name` is a run id of subscription `owner`.
pub(crate) fn is_run_of(owner: &str, run: &str) -> bool {
    owner_of(run) == Some(owner)
}

/// `a.dsv.age`, 3 -> `a.v3.dsv.age`; `a`, 2 -> `a.v2`.
pub(crate) fn versioned_name(final_name: &str, n: u32) -> String {
    match final_name.find('.') {
        Some(i) => format!("{}.v{n}{}", &final_name[..i], &final_name[i..]),
        None => format!("{final_name}.v{n}"),
    }
}

/// If `name` is `versioned_name(final_name, n)` for some n >= 2, that n.
pub(crate) fn version_of(final_name: &str, name: &str) -> Option<u32> {
    let (stem, ext) = match final_name.find('.') {
        Some(i) => (&final_name[..i], &final_name[i..]),
        None => (final_name, ""),
    };
    let mid = name
        .strip_prefix(stem)?
        .strip_suffix(ext)?
        .strip_prefix(".v")?;
    if mid.is_empty() || !mid.bytes().all(|b| b.is_ascii_digit()) || mid.starts_with('0') {
        return None;
    }
    mid.parse().ok().filter(|n| *n >= 2)
}

/// Checks the upload's names and checksum before anything is contacted.
pub(crate) fn check_upload(up: &Upload) -> Result<(), SftpError> {
    check_name(&up.final_name)?;
    check_run_id(&up.run_id)?;
    if up.sha256_hex.len() != 64 || !up.sha256_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SftpError::InvalidName {
            name: "sha256_hex".into(),
            reason: "the local file's SHA-256 must be 64 hex digits",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("a.dsv.age").is_ok());
        for bad in ["", ".a", "a/b", "..", "a\nb"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_run_id("run-1_X").is_ok());
        assert!(check_run_id("a.b").is_err());
        assert_eq!(versioned_name("a.dsv.age", 2), "a.v2.dsv.age");
        assert_eq!(versioned_name("a", 3), "a.v3");
        assert_eq!(version_of("a.dsv.age", "a.v12.dsv.age"), Some(12));
        assert_eq!(version_of("a.dsv.age", "a.v1.dsv.age"), None);
        assert_eq!(version_of("a.dsv.age", "a.dsv.age"), None);
        assert_eq!(version_of("a", "a.v2"), Some(2));
        assert_eq!(
            owner_of("parkering-nord-20261130T050000Z"),
            Some("parkering-nord")
        );
        assert_eq!(owner_of("r1"), None);
    }

    #[test]
    fn temp_names_are_hidden_and_name_their_run() {
        assert_eq!(part_name("a.age", "r1"), ".a.age.r1.part");
        assert_eq!(temp_name("a.age", ".sha256", "r1"), ".a.age.sha256.r1.part");
        assert_eq!(
            temp_name("a.age", RENAME_TESTS[0], "r1"),
            ".a.age.rename-test-a.r1.part"
        );
        assert_eq!(aside_name("a.age", "r1"), ".a.age.r1.old");
    }
}
