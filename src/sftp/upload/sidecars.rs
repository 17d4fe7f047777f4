//! The sidecars of a delivered file, each via temp + rename: `NAME.sha256`
//! (`sha256sum -c` format), the optional `NAME.manifest.json` (its `file` names the file
//! actually written) and the optional `NAME.done` marker, last.

use super::super::connect::Sftp;
use super::super::remote::join;
use super::super::{SftpError, Upload};
use super::names::{temp_name, SIDECARS};

/// The manifest as uploaded beside `final_name`: its `file` names the file it describes
/// (a versioned name when `if_exists = "version"` picked one).
fn manifest_for(m: &[u8], final_name: &str, requested: &str) -> Vec<u8> {
    if final_name == requested {
        return m.to_vec();
    }
    match serde_json::from_slice::<serde_json::Value>(m) {
        Ok(mut v) if v.get("file").is_some_and(|f| f.is_string()) => {
            v["file"] = final_name.into();
            let mut out = serde_json::to_vec_pretty(&v).expect("json");
            out.push(b'\n');
            out
        }
        _ => m.to_vec(),
    }
}

/// The sidecar files of `final_name` and their content: checksum, manifest, done marker.
pub(crate) fn sidecar_files(up: &Upload, final_name: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut files: Vec<(&str, Vec<u8>)> = vec![(
        SIDECARS[0],
        format!("{}  {}\n", up.sha256_hex.to_ascii_lowercase(), final_name).into_bytes(),
    )];
    if let Some(m) = &up.manifest {
        files.push((SIDECARS[1], manifest_for(m, final_name, &up.final_name)));
    }
    if up.done_marker {
        files.push((SIDECARS[2], Vec::new()));
    }
    files
}

/// Sidecars of `final_name`, each via temp + rename: checksum, manifest, done-marker last.
pub(super) async fn put_sidecars(
    s: &Sftp,
    dir: &str,
    final_name: &str,
    up: &Upload,
) -> Result<Vec<String>, SftpError> {
    let fin = up.final_name.as_str();
    let mut sidecars = Vec::new();
    for (suffix, data) in sidecar_files(up, final_name) {
        let name = format!("{final_name}{suffix}");
        let tmp = join(dir, &temp_name(fin, suffix, &up.run_id));
        s.put_small(&join(dir, &name), &tmp, &data).await?;
        sidecars.push(name);
    }
    Ok(sidecars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_manifest_names_its_file() {
        let m = br#"{"file": "a.dsv.age", "bytes": 3}"#;
        let v: serde_json::Value =
            serde_json::from_slice(&manifest_for(m, "a.v2.dsv.age", "a.dsv.age")).unwrap();
        assert_eq!(v["file"], "a.v2.dsv.age");
        assert_eq!(v["bytes"], 3);
        assert_eq!(manifest_for(m, "a.dsv.age", "a.dsv.age"), m.to_vec());
    }
}
