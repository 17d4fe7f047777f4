//! `systemd/regdrop.service` passes `systemd-analyze verify` (with ExecStart pointed at the
//! built binary) and carries the settings the operators rely on.

use std::path::Path;
use std::process::Command;

fn unit_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/regdrop.service"))
        .unwrap()
}

#[test]
fn unit_has_notify_watchdog_reload_and_hardening() {
    let text = unit_text();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    for want in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "RestartPreventExitStatus=78",
        "Restart=on-failure",
        "User=regdrop",
        "Group=regdrop",
        "StateDirectory=regdrop",
        "CacheDirectory=regdrop",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
    ] {
        assert!(lines.contains(&want), "missing `{want}`");
    }
    assert!(
        lines.iter().any(|l| l.starts_with("WatchdogSec=")),
        "WatchdogSec"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("ExecStart=/usr/bin/regdrop ") && l.ends_with(" run")));
    assert!(
        text.contains("#LoadCredential="),
        "a LoadCredential example"
    );
    // The static user of the service-user model: a DynamicUser cannot read the
    // regdrop-owned 0600 secret files the tools tell the operator to create.
    assert!(
        !lines.iter().any(|l| l.starts_with("DynamicUser=")),
        "no DynamicUser: the service runs as the static user `regdrop`"
    );
}

/// The unit, `systemd/README.md`, `new-subscription` and `check` follow one service-user
/// model: a static `regdrop` user owning `/etc/regdrop/secrets` (0700) and its 0600 files.
#[test]
fn unit_readme_and_tools_name_the_same_user_and_secret_layout() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("systemd/README.md")).unwrap();
    for want in [
        "useradd --system --home-dir /var/lib/regdrop --shell /usr/sbin/nologin regdrop",
        "install -d -o regdrop -g regdrop -m 0700 /etc/regdrop/secrets",
        "install -o regdrop -g regdrop -m 0600",
        "sudo -u regdrop regdrop status",
        "LoadCredential=",
    ] {
        assert!(readme.contains(want), "systemd/README.md lacks `{want}`");
        if want.starts_with("useradd") || want.starts_with("install -d") {
            assert!(
                unit_text().contains(want),
                "the unit's comment lacks `{want}`"
            );
        }
    }
    assert!(
        !readme.contains("DynamicUser=yes"),
        "README still describes DynamicUser"
    );
}

#[test]
fn systemd_analyze_verify_passes() {
    let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("systemd-analyze not found: apt-get install -y systemd (the CI script does)");
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("regdrop.service");
    std::fs::write(
        &unit,
        unit_text().replace("/usr/bin/regdrop", env!("CARGO_BIN_EXE_regdrop")),
    )
    .unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify only warns (exit 0) about unknown settings or values: any line about our unit fails.
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("regdrop")).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
}
