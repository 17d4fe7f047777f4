//! The same delivery cases against every real SFTP server of the harness
//! ([`crate::util::servers`]): OpenSSH `internal-sftp`, ProFTPD `mod_sftp`,
//! `rclone serve sftp` (default and `--vfs-cache-mode writes`) and an asyncssh
//! `SFTPServer`. One `#[test]` per (server, case), named `SERVER::CASE`, so
//! `cargo test --test it interop::proftpd::` runs one server and a failure names both.
//!
//! Every test starts its own server on its own loopback port. Assertions look at the files
//! on the server's disk (exact folder listings: no `.part` or other litter), not only at
//! what regdrop returns. Targets use a 20 s `io_timeout`, so a server that stops answering
//! fails a test in seconds; every failure message carries the time, the folder listing and
//! the tail of the server's log.

use crate::util::servers::Kind;

const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------------------
// The matrix: every case against every server.

macro_rules! suite {
    (servers: [$($srv:ident = $kind:ident),* $(,)?], cases: $cases:tt) => {
        $( suite!(@server $srv, $kind, $cases); )*
    };
    (@server $srv:ident, $kind:ident, [$($case:ident),* $(,)?]) => {
        mod $srv {
            $(
                #[test]
                fn $case() {
                    if let Some(why) = super::Kind::$kind.needs_root() {
                        if !crate::util::root::require(why) {
                            return;
                        }
                    }
                    super::$case(super::Kind::$kind);
                }
            )*
        }
    };
}

suite! {
    servers: [
        openssh = OpenSsh,
        proftpd = Proftpd,
        rclone = Rclone,
        rclone_vfs_writes = RcloneVfsWrites,
        asyncssh = Asyncssh,
    ],
    cases: [
        probe_succeeds_and_leaves_the_folder_empty,
        delivers_20_mib_over_several_channels,
        if_exists_fail_leaves_the_existing_file,
        if_exists_overwrite_replaces_never_partial,
        if_exists_version_takes_the_next_name,
        race_on_the_final_name_with_fail_keeps_the_other_file,
        read_back_verification,
        key_login,
        password_login,
        cut_mid_upload_then_retry_leaves_one_file,
        cli_deliver_with_code_tables_and_receipt,
        regdrop_and_openssh_sftp_put_the_same_bytes,
    ]
}

mod commit;
mod helpers;
mod transfer;

use commit::*;
use transfer::*;
