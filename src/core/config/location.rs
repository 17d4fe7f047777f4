//! Where a database lives: a SQLite file (a path, relative to the config file) or a
//! PostgreSQL server (`postgresql://...` / `postgres://...`). Used by `state_db` and
//! `register`. Pure: the URL is only recognised and kept here; the adapter that connects
//! parses it fully and reports what is wrong with it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A database: a SQLite file or a PostgreSQL connection URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DbLocation {
    Sqlite(PathBuf),
    Postgres(PgUrl),
}

/// A PostgreSQL connection URL. [`fmt::Display`] and [`fmt::Debug`] hide a password written
/// in it (`postgresql://user:secret@host/db` shows as `postgresql://user:***@host/db`), so the
/// value can go into logs and error messages; [`PgUrl::expose`] gives the real text to connect
/// with.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl(String);

impl PgUrl {
    /// The URL as written, password included: only for handing to the driver.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let s = &self.0;
        let Some(scheme_end) = s.find("://").map(|i| i + 3) else {
            return s.clone();
        };
        let rest = &s[scheme_end..];
        // The authority ends at the first '/', '?' or '#'; userinfo is before its last '@'.
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..auth_end];
        let mut out = String::with_capacity(s.len());
        out.push_str(&s[..scheme_end]);
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        // A `password=` query parameter is hidden too.
        let tail = &rest[auth_end..];
        match tail.find('?') {
            Some(q) => {
                out.push_str(&tail[..=q]);
                let params: Vec<String> = tail[q + 1..]
                    .split('&')
                    .map(|kv| match kv.split_once('=') {
                        Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                        _ => kv.to_string(),
                    })
                    .collect();
                out.push_str(&params.join("&"));
            }
            None => out.push_str(tail),
        }
        out
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({})", self.redacted())
    }
}

impl fmt::Debug for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbLocation::Sqlite(p) => write!(f, "Sqlite({})", p.display()),
            DbLocation::Postgres(u) => write!(f, "Postgres({u})"),
        }
    }
}

impl fmt::Display for DbLocation {
    /// The file path, or the URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbLocation::Sqlite(p) => write!(f, "{}", p.display()),
            DbLocation::Postgres(u) => write!(f, "{u}"),
        }
    }
}

/// Whether `value` names a PostgreSQL server rather than a file.
pub fn is_postgres_url(value: &str) -> bool {
    let v = value.trim_start().to_ascii_lowercase();
    v.starts_with("postgres://") || v.starts_with("postgresql://")
}

impl DbLocation {
    /// A config value: a `postgresql://` URL as it is, anything else a path relative to
    /// `base` (the folder of the config file).
    pub fn from_config(value: &str, base: &Path) -> DbLocation {
        if is_postgres_url(value) {
            DbLocation::Postgres(PgUrl(value.trim().to_string()))
        } else {
            DbLocation::Sqlite(base.join(value))
        }
    }

    /// The SQLite file, if it is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            DbLocation::Sqlite(p) => Some(p),
            DbLocation::Postgres(_) => None,
        }
    }

    /// The PostgreSQL URL, if it is one.
    pub fn postgres(&self) -> Option<&PgUrl> {
        match self {
            DbLocation::Sqlite(_) => None,
            DbLocation::Postgres(u) => Some(u),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_are_told_apart() {
        let base = Path::new("/etc/regdrop");
        assert_eq!(
            DbLocation::from_config("state/regdrop.sqlite", base),
            DbLocation::Sqlite(PathBuf::from("/etc/regdrop/state/regdrop.sqlite"))
        );
        let pg = DbLocation::from_config(" PostgreSQL://regdrop@db/regdrop ", base);
        assert_eq!(
            pg.postgres().map(PgUrl::expose),
            Some("PostgreSQL://regdrop@db/regdrop")
        );
        assert!(is_postgres_url("postgres://x"));
        assert!(!is_postgres_url("postgres.sqlite"));
    }

    #[test]
    fn passwords_never_show() {
        let shown = |s: &str| PgUrl(s.to_string()).to_string();
        assert_eq!(
            shown("postgresql://regdrop:s3cr%40t@db.example:5432/regdrop?sslmode=require"),
            "postgresql://regdrop:***@db.example:5432/regdrop?sslmode=require"
        );
        assert_eq!(
            shown("postgresql://regdrop@db/regdrop"),
            "postgresql://regdrop@db/regdrop"
        );
        assert_eq!(
            shown("postgresql:///regdrop?host=/run/pg&password=hunter2&user=x"),
            "postgresql:///regdrop?host=/run/pg&password=***&user=x"
        );
        let dbg = format!(
            "{:?}",
            DbLocation::Postgres(PgUrl("postgres://a:b@c/d".into()))
        );
        assert!(!dbg.contains(":b@"), "{dbg}");
    }
}
