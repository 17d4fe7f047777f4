//! `regdrop::sftp` against a real OpenSSH sshd on loopback (see `common/sshd.rs`): delivery,
//! host-key pinning, authentication, cut connections, `if_exists`, folders, probe and scan.
//! Every test starts its own sshd on its own port, so they run in parallel.

use crate::util::files::ls;
use regdrop::sftp::{self, Delivered, IfExists, SftpError, Target, Upload, Verify};
use std::path::Path;

pub(super) const MIB: usize = 1 << 20;

pub(super) fn upload(local: &Path, name: &str, run_id: &str, sum: &str) -> Upload {
    Upload {
        local: local.to_path_buf(),
        final_name: name.into(),
        run_id: run_id.into(),
        if_exists: IfExists::Fail,
        verify: Verify::Size,
        sha256_hex: sum.into(),
        manifest: None,
        done_marker: false,
    }
}

pub(super) async fn deliver(t: &Target, up: &Upload) -> Result<Delivered, SftpError> {
    sftp::deliver(t, up, &|_| {}).await
}

pub(super) fn no_parts(dir: &Path) {
    let names = ls(dir);
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".part") || n.ends_with(".old")),
        "temp files left: {names:?}"
    );
}

mod login;
mod upload;
