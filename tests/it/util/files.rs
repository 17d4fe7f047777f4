//! Local files in assertions: folder listings, random payloads and their SHA-256.

use std::path::Path;

/// Names in a local folder, sorted.
pub fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Writes `n` random bytes to `path`; returns (bytes, sha256 hex).
pub fn random_file(path: &Path, n: usize) -> (Vec<u8>, String) {
    use sha2::Digest;
    use std::io::Read;
    let mut data = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut data)
        .unwrap();
    std::fs::write(path, &data).unwrap();
    let sum = hex::encode(sha2::Sha256::digest(&data));
    (data, sum)
}

pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}
