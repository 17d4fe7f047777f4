//! Test harness: a real ProFTPD 1.3.8 with `mod_sftp` (Debian's `proftpd-core` and
//! `proftpd-mod-crypto`), standalone in the foreground (`proftpd -n -c CONFIG`) on a free
//! loopback port, with a throwaway ed25519 host key, the harness user key authorised
//! (RFC 4716 form, as `SFTPAuthorizedUserKeys` wants it) and password login for the one
//! virtual user of an `AuthUserFile`. The user is chrooted (`DefaultRoot ~`) to
//! `DIR/root`, so the server's `/NAME` is the local `DIR/root/NAME`. Every instance has its
//! own scoreboard, pid file and delay table. Killed on drop. Never skips: a missing
//! server or module fails the test loudly with the `apt-get install` line.

use super::launch::Launch;
use super::servers::{password_file, SftpServer};
use super::sshd::{keygen, run};
use regdrop::sftp::Target;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const PROFTPD: &str = "/usr/sbin/proftpd";
/// The module, from `dpkg -L proftpd-mod-crypto`.
pub const MOD_SFTP: &str = "/usr/lib/proftpd/mod_sftp.so";
pub const USER: &str = "regdrop";
pub const PASSWORD: &str = "Interop-Proftpd-7-Pass";
/// `openssl passwd -6 -salt regdropinterop Interop-Proftpd-7-Pass`.
const PASSWORD_HASH: &str =
    "$6$regdropinterop$sFM0ZtYJU9sjjZeIa02EBrF43sboC2MRTs.fTGu/nswErGmd7/xUUr8jZtE.h8pxNmp6zjrdhnl8VHukEfh9s0";
/// The virtual user's uid/gid: Debian's `nobody`/`nogroup`, which ProFTPD also runs as.
pub const UID: u32 = 65534;
pub const GID: u32 = 65534;

pub struct Proftpd {
    child: Child,
    pub port: u16,
    /// Temp folder: keys, config, logs, and `root/` (the user's chroot).
    pub dir: tempfile::TempDir,
    pub host_pub: String,
    pub host_pub_path: PathBuf,
    pub user_key: PathBuf,
    pub username: String,
    /// 0600 file holding [`PASSWORD`], for [`Auth::PasswordFile`](regdrop::sftp::Auth).
    pub password_file: PathBuf,
    /// `proftpd`'s stderr, its SystemLog, its SFTPLog and its TraceLog (`sftp:8`:
    /// every SFTP request and status reply).
    pub logs: Vec<PathBuf>,
}

impl Proftpd {
    pub fn start() -> Proftpd {
        assert!(
            Path::new(PROFTPD).exists(),
            "{PROFTPD} not found: these tests need ProFTPD with mod_sftp; \
             run `apt-get install -y proftpd-core proftpd-mod-crypto`"
        );
        assert!(
            Path::new(MOD_SFTP).exists(),
            "{MOD_SFTP} not found (ProFTPD's SFTP module); \
             run `apt-get install -y proftpd-mod-crypto`"
        );
        let dir = super::servers::server_dir("regdrop-proftpd-");
        let d = dir.path();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let host_key = d.join("host_ed25519");
        let host_pub = keygen(&host_key);
        let user_key = d.join("user_ed25519");
        keygen(&user_key);
        let rfc4716 = run(Command::new("ssh-keygen")
            .arg("-e")
            .arg("-f")
            .arg(user_key.with_extension("pub")));
        let auth_keys = d.join("authorized_keys.rfc4716");
        std::fs::write(&auth_keys, rfc4716).unwrap();
        let root = d.join("root");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::chown(&root, Some(UID), Some(GID)).unwrap();
        let passwd = d.join("passwd");
        std::fs::write(
            &passwd,
            format!(
                "{USER}:{PASSWORD_HASH}:{UID}:{GID}:regdrop interop:{}:/bin/sh\n",
                root.display()
            ),
        )
        .unwrap();
        let group = d.join("group");
        std::fs::write(&group, format!("nogroup:x:{GID}:\n")).unwrap();
        for f in [&passwd, &group] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let password_file = password_file(d, PASSWORD);
        let (stderr_log, system_log, sftp_log, trace_log) = (
            d.join("proftpd.stderr"),
            d.join("system.log"),
            d.join("sftp.log"),
            d.join("trace.log"),
        );
        let logs = vec![
            stderr_log.clone(),
            system_log.clone(),
            sftp_log.clone(),
            trace_log.clone(),
        ];
        let config = d.join("proftpd.conf");
        let log_text = || logs_text(&logs);
        let launch = Launch {
            name: "proftpd",
            ready_means: "accept connections",
            within: Duration::from_secs(15),
            log: &log_text,
            port_taken: &|_, text| text.contains("in use"),
        };
        let (child, port) = launch.start(
            |port| {
                std::fs::write(
                    &config,
                    format!(
                        "ServerName \"regdrop interop\"\n\
                         ServerType standalone\n\
                         DefaultServer on\n\
                         Port {port}\n\
                         DefaultAddress 127.0.0.1\n\
                         SocketBindTight on\n\
                         UseIPv6 off\n\
                         LoadModule mod_sftp.c\n\
                         User nobody\n\
                         Group nogroup\n\
                         Umask 022\n\
                         ScoreboardFile {d}/proftpd.scoreboard\n\
                         PidFile {d}/proftpd.pid\n\
                         DelayTable {d}/proftpd.delay\n\
                         WtmpLog off\n\
                         UseReverseDNS off\n\
                         SystemLog {system}\n\
                         TransferLog none\n\
                         AuthOrder mod_auth_file.c\n\
                         AuthUserFile {passwd}\n\
                         AuthGroupFile {group}\n\
                         RequireValidShell off\n\
                         DefaultRoot ~\n\
                         AllowOverwrite on\n\
                         SFTPEngine on\n\
                         SFTPLog {sftp}\n\
                         TraceLog {trace}\n\
                         Trace sftp:8\n\
                         SFTPHostKey {hk}\n\
                         SFTPAuthorizedUserKeys file:{ak}\n\
                             SFTPAuthMethods publickey password\n",
                        d = d.display(),
                        system = system_log.display(),
                        passwd = passwd.display(),
                        group = group.display(),
                        sftp = sftp_log.display(),
                        trace = trace_log.display(),
                        hk = host_key.display(),
                        ak = auth_keys.display(),
                    ),
                )
                .unwrap();
                for l in &logs {
                    let _ = std::fs::remove_file(l);
                }
                let errf = std::fs::File::create(&stderr_log).unwrap();
                Command::new(PROFTPD)
                    .arg("-n")
                    .arg("-c")
                    .arg(&config)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(errf)
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start {PROFTPD}: {e}"))
            },
            |_, port| TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        Proftpd {
            child,
            port,
            host_pub_path: host_key.with_extension("pub"),
            dir,
            host_pub,
            user_key,
            username: USER.into(),
            password_file,
            logs,
        }
    }

    /// The user's chroot on disk (the server's `/`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
}

fn logs_text(logs: &[PathBuf]) -> String {
    logs.iter()
        .map(|l| {
            format!(
                "--- {} ---\n{}",
                l.file_name().unwrap().to_string_lossy(),
                std::fs::read_to_string(l).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl SftpServer for Proftpd {
    fn name(&self) -> &'static str {
        "ProFTPD mod_sftp"
    }
    fixture_accessors!();
    /// `("/NAME", DIR/root/NAME)`, owned by the virtual user.
    fn remote_dir(&self, name: &str) -> (String, PathBuf) {
        let local = self.root().join(name);
        std::fs::create_dir_all(&local).unwrap();
        std::os::unix::fs::chown(&local, Some(UID), Some(GID)).unwrap();
        (format!("/{name}"), local)
    }
    fn log_text(&self) -> String {
        logs_text(&self.logs)
    }
}

impl Drop for Proftpd {
    fn drop(&mut self) {
        // SIGTERM: the standalone master then ends its session processes too.
        super::servers::stop(&mut self.child);
    }
}
