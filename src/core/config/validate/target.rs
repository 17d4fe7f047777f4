//! The `[target]` table: where and how files go (host, port, user, pinned host keys,
//! folder, timeouts) and its upload overrides (`channels`, `max_write`, `in_flight`,
//! `commit`, `fsync`, `posix_rename`) -> [`TargetSpec`]. `[target.auth]` is [`super::auth`].

use super::super::limits;
use super::super::raw::RawTarget;
use super::auth::validate_auth;
use super::types::{AuthSpec, CommitMode, Inherited, TargetSpec, TargetTuning};
use super::Problem;
use std::path::PathBuf;
use std::time::Duration;

/// The target; always built (a placeholder where a part is wrong) so the problems of
/// later tables are still found.
pub(super) fn validate_target(
    t: &RawTarget,
    inherited: &Inherited,
    p: &mut Vec<Problem>,
) -> TargetSpec {
    if t.host.trim().is_empty() || t.host.contains(char::is_whitespace) || t.host.contains('/') {
        p.push(Problem::new(
            "target.host",
            format!("`{}` is not a host name or IP address", t.host),
        ));
    }
    if t.port == 0 {
        p.push(Problem::new(
            "target.port",
            "port 0 is not a port; the SFTP default is 22",
        ));
    }
    if t.username.trim().is_empty() {
        p.push(Problem::new(
            "target.username",
            "the SFTP user name is empty",
        ));
    }
    if t.host_keys.is_empty() && t.known_hosts.is_none() {
        p.push(Problem::new(
            "target.host_keys",
            "no pinned host key; run `regdrop hostkey scan HOST[:PORT]`, check the fingerprint with the customer, and paste the line into host_keys",
        ));
    }
    for (i, k) in t.host_keys.iter().enumerate() {
        if let Err(e) = parse_host_key(k) {
            p.push(Problem::new(format!("target.host_keys[{i}]"), e));
        }
    }
    if t.remote_dir.trim().is_empty() || t.remote_dir.split('/').any(|c| c == "..") {
        p.push(Problem::new(
            "target.remote_dir",
            format!(
                "`{}` is not a usable folder; give the folder on the server, without `..`",
                t.remote_dir
            ),
        ));
    }
    limits::check_range(
        "target.connect_timeout_secs",
        t.connect_timeout_secs,
        limits::CONNECT_TIMEOUT_SECS,
        "seconds to wait for the server to answer",
        p,
    );
    let auth = validate_auth(&t.auth, inherited, p);
    let tuning = validate_tuning(t, p);
    TargetSpec {
        host: t.host.trim().to_string(),
        port: t.port,
        username: t.username.clone(),
        host_keys: t.host_keys.iter().map(|k| k.trim().to_string()).collect(),
        known_hosts: t
            .known_hosts
            .as_ref()
            .map(|k| inherited.secrets_dir.join(k)),
        auth: auth.unwrap_or(AuthSpec::PasswordFile(PathBuf::new())),
        remote_dir: t.remote_dir.trim().to_string(),
        create_dirs: t.create_dirs,
        connect_timeout: Duration::from_secs(t.connect_timeout_secs.unwrap_or(20)),
        io_timeout: Duration::from_secs(
            limits::in_range(
                "target.io_timeout_secs",
                t.io_timeout_secs,
                limits::IO_TIMEOUT_SECS,
                "the seconds one SFTP request may take",
                p,
            )
            .unwrap_or(120),
        ),
        tuning,
    }
}

/// Checks an OpenSSH public-key line (`TYPE BASE64 [comment]`).
pub fn parse_host_key(line: &str) -> Result<(), String> {
    let mut parts = line.split_whitespace();
    let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "`{line}` is not an OpenSSH public-key line; paste a line printed by `regdrop hostkey scan` (\"ssh-ed25519 AAAA...\")"
        ));
    };
    match russh::keys::parse_public_key_base64(b64) {
        Ok(k) if k.algorithm().as_str() == kind => Ok(()),
        Ok(k) => Err(format!("the key says `{kind}` but its data is a `{}` key; paste the whole line unchanged", k.algorithm().as_str())),
        Err(_) => Err(format!(
            "the `{kind}` key data does not decode; paste the line printed by `regdrop hostkey scan` unchanged"
        )),
    }
}

/// The SHA-256 fingerprint (`SHA256:...`, as ssh prints it) of an OpenSSH public-key line,
/// or why the line is not one.
pub fn host_key_fingerprint(line: &str) -> Result<String, String> {
    parse_host_key(line)?;
    let b64 = line.split_whitespace().nth(1).unwrap_or_default();
    russh::keys::parse_public_key_base64(b64)
        .map(|k| k.fingerprint(russh::keys::HashAlg::Sha256).to_string())
        .map_err(|e| e.to_string())
}

/// The `[target]` upload overrides: each within its bounds, `commit` one of its words.
fn validate_tuning(t: &RawTarget, p: &mut Vec<Problem>) -> TargetTuning {
    let as_usize = |v: Option<u64>| v.map(|n| n as usize);
    let channels = as_usize(limits::in_range(
        "target.channels",
        t.channels,
        limits::CHANNELS,
        "the number of SFTP channels",
        p,
    ));
    let max_write = as_usize(limits::in_range(
        "target.max_write",
        t.max_write,
        limits::MAX_WRITE,
        "the bytes per WRITE request",
        p,
    ));
    let in_flight = as_usize(limits::in_range(
        "target.in_flight",
        t.in_flight,
        limits::IN_FLIGHT,
        "the WRITE requests in flight per channel",
        p,
    ));
    let commit = match t.commit.as_deref() {
        None | Some("auto") => CommitMode::Auto,
        Some("race-free") => CommitMode::RaceFree,
        Some("hardlink") => CommitMode::Hardlink,
        Some("rename") => CommitMode::Rename,
        Some("checked-rename") => CommitMode::CheckedRename,
        Some(other) => {
            p.push(Problem::new(
                "target.commit",
                format!(
                    "`{other}` is not a commit mode; use \"auto\", \"race-free\", \"hardlink\", \"rename\" or \"checked-rename\""
                ),
            ));
            CommitMode::Auto
        }
    };
    TargetTuning {
        channels,
        max_write,
        in_flight,
        commit,
        fsync: t.fsync.unwrap_or(true),
        posix_rename: t.posix_rename.unwrap_or(true),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{inherited, keys, message_at, HOST_KEY};
    use super::*;

    fn target(toml_text: &str) -> (TargetSpec, Vec<Problem>) {
        let raw: RawTarget = toml::from_str(toml_text).expect("a [target] table");
        let mut p = Vec::new();
        (validate_target(&raw, &inherited(), &mut p), p)
    }

    fn minimal(extra: &str) -> String {
        format!(
            "host = \"sftp.example.no\"\nusername = \"acme\"\nremote_dir = \"/incoming\"\n\
             host_keys = [\"{HOST_KEY}\"]\n{extra}\n[auth]\nkey_file = \"acme.key\"\n"
        )
    }

    #[test]
    fn a_minimal_target_takes_the_defaults() {
        let (t, p) = target(&minimal(""));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(t.host, "sftp.example.no");
        assert_eq!(t.port, 22);
        assert_eq!(t.host_keys, [HOST_KEY]);
        assert_eq!(t.known_hosts, None);
        assert_eq!(
            t.auth,
            AuthSpec::KeyFile {
                path: inherited().secrets_dir.join("acme.key"),
                passphrase_file: None,
            }
        );
        assert!(!t.create_dirs);
        assert_eq!(t.connect_timeout, Duration::from_secs(20));
        assert_eq!(t.io_timeout, Duration::from_secs(120));
        assert_eq!(t.tuning, TargetTuning::default());
    }

    #[test]
    fn a_known_hosts_file_replaces_pinned_keys() {
        let (t, p) = target(
            "host = \"h\"\nusername = \"u\"\nremote_dir = \"/in\"\nknown_hosts = \"kh\"\n\
             [auth]\npassword_file = \"pw\"\n",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(t.known_hosts, Some(inherited().secrets_dir.join("kh")));
    }

    #[test]
    fn every_rule_names_its_key_in_order() {
        let (_, p) = target(
            "host = \"a b\"\nport = 0\nusername = \" \"\nremote_dir = \"/in/../etc\"\n\
             connect_timeout_secs = 0\nio_timeout_secs = 0\n[auth]\nkey_file = \"k\"\n",
        );
        assert_eq!(
            keys(&p),
            [
                "target.host",
                "target.port",
                "target.username",
                "target.host_keys",
                "target.remote_dir",
                "target.connect_timeout_secs",
                "target.io_timeout_secs",
            ]
        );
        assert_eq!(
            message_at(&p, "target.host"),
            "`a b` is not a host name or IP address"
        );
        assert_eq!(
            message_at(&p, "target.port"),
            "port 0 is not a port; the SFTP default is 22"
        );
        assert_eq!(
            message_at(&p, "target.username"),
            "the SFTP user name is empty"
        );
        assert_eq!(
            message_at(&p, "target.host_keys"),
            "no pinned host key; run `regdrop hostkey scan HOST[:PORT]`, check the fingerprint with the customer, and paste the line into host_keys"
        );
        assert_eq!(
            message_at(&p, "target.remote_dir"),
            "`/in/../etc` is not a usable folder; give the folder on the server, without `..`"
        );
        assert_eq!(
            message_at(&p, "target.connect_timeout_secs"),
            "0 is out of range; seconds to wait for the server to answer: write a number from 1 to 600"
        );
        assert_eq!(
            message_at(&p, "target.io_timeout_secs"),
            "0 is out of range; the seconds one SFTP request may take: write a number from 1 to 3600"
        );
    }

    #[test]
    fn host_key_lines_are_checked_one_by_one() {
        let data = HOST_KEY.split_whitespace().nth(1).unwrap();
        let (_, p) = target(&minimal("").replace(
            &format!("[\"{HOST_KEY}\"]"),
            &format!(
                "[\"{HOST_KEY}\", \"AAAA\", \"ssh-rsa {data}\", \"ssh-ed25519 AAAAnotbase64!\"]"
            ),
        ));
        assert_eq!(
            keys(&p),
            [
                "target.host_keys[1]",
                "target.host_keys[2]",
                "target.host_keys[3]"
            ]
        );
        assert_eq!(
            message_at(&p, "target.host_keys[1]"),
            "`AAAA` is not an OpenSSH public-key line; paste a line printed by `regdrop hostkey scan` (\"ssh-ed25519 AAAA...\")"
        );
        assert_eq!(
            message_at(&p, "target.host_keys[2]"),
            "the key says `ssh-rsa` but its data is a `ssh-ed25519` key; paste the whole line unchanged"
        );
        assert_eq!(
            message_at(&p, "target.host_keys[3]"),
            "the `ssh-ed25519` key data does not decode; paste the line printed by `regdrop hostkey scan` unchanged"
        );
        assert_eq!(parse_host_key(HOST_KEY), Ok(()));
    }

    #[test]
    fn tuning_values_are_kept_within_their_bounds() {
        let (t, p) = target(&minimal(
            "channels = 2\nmax_write = 65536\nin_flight = 8\ncommit = \"race-free\"\nfsync = false\nposix_rename = false",
        ));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            t.tuning,
            TargetTuning {
                channels: Some(2),
                max_write: Some(65536),
                in_flight: Some(8),
                commit: CommitMode::RaceFree,
                fsync: false,
                posix_rename: false,
            }
        );
        for (word, mode) in [
            ("auto", CommitMode::Auto),
            ("hardlink", CommitMode::Hardlink),
            ("rename", CommitMode::Rename),
            ("checked-rename", CommitMode::CheckedRename),
        ] {
            let (t, p) = target(&minimal(&format!("commit = \"{word}\"")));
            assert!(p.is_empty(), "{p:?}");
            assert_eq!(t.tuning.commit, mode);
        }
    }

    #[test]
    fn tuning_out_of_bounds_is_refused_at_its_key() {
        let (t, p) = target(&minimal(
            "channels = 17\nmax_write = 1023\nin_flight = 0\ncommit = \"fast\"",
        ));
        assert_eq!(
            keys(&p),
            [
                "target.channels",
                "target.max_write",
                "target.in_flight",
                "target.commit"
            ]
        );
        assert_eq!(
            message_at(&p, "target.channels"),
            "17 is out of range; the number of SFTP channels: write a number from 1 to 16"
        );
        assert_eq!(
            message_at(&p, "target.max_write"),
            "1023 is out of range; the bytes per WRITE request: write a number from 1024 to 261120"
        );
        assert_eq!(
            message_at(&p, "target.in_flight"),
            "0 is out of range; the WRITE requests in flight per channel: write a number from 1 to 1024"
        );
        assert_eq!(
            message_at(&p, "target.commit"),
            "`fast` is not a commit mode; use \"auto\", \"race-free\", \"hardlink\", \"rename\" or \"checked-rename\""
        );
        assert_eq!(t.tuning, TargetTuning::default());
    }

    #[test]
    fn a_host_key_line_has_the_fingerprint_ssh_prints() {
        use super::super::testing::HOST_KEY;
        // `ssh-keygen -lf` of this key prints SHA256:T7SvZ2cslqpPj6nKzitCBHHlpVF3r3MvLwmFL0fk0IE.
        assert_eq!(
            host_key_fingerprint(HOST_KEY).unwrap(),
            "SHA256:T7SvZ2cslqpPj6nKzitCBHHlpVF3r3MvLwmFL0fk0IE"
        );
        assert!(host_key_fingerprint("ssh-ed25519 AAAAnope").is_err());
    }
}
