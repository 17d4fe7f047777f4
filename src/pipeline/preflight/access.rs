//! Who the service runs as, and whether that user can read a file or write a folder: tried
//! for real when `check` runs as that user, worked out from owners and mode bits (of the
//! file and every folder above it) when it runs as root or as someone else.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The user the daemon runs as (`User=` of the unit).
#[derive(Debug, Clone)]
pub struct ServiceUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Primary and supplementary groups.
    pub groups: Vec<u32>,
    /// How it was chosen: `[daemon] user`, `the default`, `the current user`.
    pub chosen_by: &'static str,
}

/// The default service user (the unit's `User=regdrop`).
pub const DEFAULT_USER: &str = "regdrop";

impl ServiceUser {
    /// `[daemon] user` when set (it must exist), else `regdrop` when that user exists, else
    /// the user running `check`.
    pub fn resolve(configured: Option<&str>) -> Result<ServiceUser, String> {
        if let Some(name) = configured {
            return match lookup(name)? {
                Some(u) => Ok(u.by("[daemon] user")),
                None => Err(format!(
                    "there is no user `{name}` on this machine; create it (useradd --system --home-dir /var/lib/regdrop --shell /usr/sbin/nologin {name}) or fix the name"
                )),
            };
        }
        if let Some(u) = lookup(DEFAULT_USER)? {
            return Ok(u.by("the default"));
        }
        let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .map_err(|e| format!("cannot look up the current user: {e}"))?
            .ok_or("the current user has no passwd entry")?;
        lookup(&me.name)?
            .map(|u| u.by("the current user"))
            .ok_or_else(|| "the current user has no passwd entry".into())
    }

    fn by(mut self, how: &'static str) -> ServiceUser {
        self.chosen_by = how;
        self
    }

    /// Whether `check` runs as this user (then every access is simply tried).
    pub fn is_me(&self) -> bool {
        nix::unistd::geteuid().as_raw() == self.uid
    }

    /// `owner:group` as the fix commands write it.
    pub fn owner_arg(&self) -> String {
        let group = nix::unistd::Group::from_gid(self.gid.into())
            .ok()
            .flatten()
            .map_or_else(|| self.gid.to_string(), |g| g.name);
        format!("{}:{group}", self.name)
    }
}

fn lookup(name: &str) -> Result<Option<ServiceUser>, String> {
    let Some(u) = nix::unistd::User::from_name(name)
        .map_err(|e| format!("cannot look up user `{name}`: {e}"))?
    else {
        return Ok(None);
    };
    let cname = std::ffi::CString::new(name).map_err(|_| format!("`{name}` is not a user name"))?;
    let groups = nix::unistd::getgrouplist(&cname, u.gid)
        .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_else(|_| vec![u.gid.as_raw()]);
    Ok(Some(ServiceUser {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        groups,
        chosen_by: "",
    }))
}

/// What the service user needs of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Read a file.
    Read,
    /// Read and write a file (the state database).
    ReadWrite,
    /// Create files in a folder.
    CreateIn,
}

/// The answer: yes, no (why, and what to run), or cannot tell from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Yes,
    No(String),
    Unknown(String),
}

/// Whether `user` can do `want` on the existing `path`.
pub fn access(user: &ServiceUser, path: &Path, want: Want) -> Access {
    if user.is_me() {
        return try_it(path, want);
    }
    if user.uid == 0 {
        return Access::Yes;
    }
    let abs = match std::path::absolute(path) {
        Ok(p) => p,
        Err(e) => return Access::Unknown(format!("cannot resolve {}: {e}", path.display())),
    };
    // Every folder above must let the user through (x).
    let mut ancestors: Vec<PathBuf> = abs.ancestors().skip(1).map(Path::to_path_buf).collect();
    ancestors.reverse();
    for dir in &ancestors {
        match std::fs::metadata(dir) {
            Ok(m) if !allows(&m, user, 0o1) => {
                return Access::No(format!(
                    "the folder {} ({}, mode {:04o}) does not let `{}` in; run `chown {} {}` (or `chmod o+x` it, if it is not a secret folder)",
                    dir.display(),
                    owner_of(&m),
                    m.mode() & 0o7777,
                    user.name,
                    user.owner_arg(),
                    dir.display()
                ))
            }
            Ok(_) => {}
            Err(e) => return Access::Unknown(cannot_look(dir, &e, user)),
        }
    }
    let m = match std::fs::metadata(&abs) {
        Ok(m) => m,
        Err(e) => return Access::Unknown(cannot_look(&abs, &e, user)),
    };
    let (need, what) = match want {
        Want::Read => (0o4, "read"),
        Want::ReadWrite => (0o6, "read and write"),
        Want::CreateIn => (0o3, "create files in"),
    };
    if allows(&m, user, need) {
        Access::Yes
    } else {
        Access::No(format!(
            "it is {} with mode {:04o}: the service user `{}` cannot {what} it; run `chown {} {}`",
            owner_of(&m),
            m.mode() & 0o7777,
            user.name,
            user.owner_arg(),
            abs.display()
        ))
    }
}

fn cannot_look(path: &Path, e: &std::io::Error, user: &ServiceUser) -> String {
    format!(
        "cannot look at {} from here ({e}); run the check as root (`sudo regdrop check`) or as the service user (`sudo -u {} regdrop check`)",
        path.display(),
        user.name
    )
}

/// Whether the mode bits give `user` the `need` bits (r=4, w=2, x=1) on a file with `m`.
fn allows(m: &Metadata, user: &ServiceUser, need: u32) -> bool {
    let mode = m.mode();
    let shift = if m.uid() == user.uid {
        6
    } else if user.groups.contains(&m.gid()) {
        3
    } else {
        0
    };
    (mode >> shift) & need == need
}

/// `owned by root:root` in words.
pub fn owner_of(m: &Metadata) -> String {
    let user = nix::unistd::User::from_uid(m.uid().into())
        .ok()
        .flatten()
        .map_or_else(|| m.uid().to_string(), |u| u.name);
    let group = nix::unistd::Group::from_gid(m.gid().into())
        .ok()
        .flatten()
        .map_or_else(|| m.gid().to_string(), |g| g.name);
    format!("owned by {user}:{group}")
}

/// Running as the service user: try it.
fn try_it(path: &Path, want: Want) -> Access {
    let r = match want {
        Want::Read => std::fs::File::open(path).map(drop),
        Want::ReadWrite => std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map(drop),
        Want::CreateIn => tempfile::Builder::new()
            .prefix(".regdrop-check")
            .tempfile_in(path)
            .map(drop),
    };
    match r {
        Ok(()) => Access::Yes,
        Err(e) => Access::No(format!(
            "the service user cannot {} it: {e}; fix its owner (chown) or mode (chmod)",
            match want {
                Want::Read => "read",
                Want::ReadWrite => "read and write",
                Want::CreateIn => "create files in",
            }
        )),
    }
}

/// The nearest existing folder at or above `path` (where a missing folder would be
/// created).
pub fn nearest_existing(path: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(path).ok()?;
    abs.ancestors().find(|p| p.exists()).map(Path::to_path_buf)
}
