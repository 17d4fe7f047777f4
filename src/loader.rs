//! Reads the daemon file and the subscription folder, runs the shape check and validation,
//! and places every problem at file:line:column. A broken file never stops the others from
//! loading.

use crate::core::config::raw::{RawDaemon, RawSubscription};
use crate::core::config::shape::{self, schema, Shape};
use crate::core::config::validate::{self, DaemonConfig, Problem, Subscription};
use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with its place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The key concerned (`target.host_keys[1]`), empty for syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)
    }
}

/// Everything loaded: the daemon settings, the subscriptions that are valid, and the
/// problems of those that are not.
#[derive(Debug)]
pub struct Loaded {
    pub config_path: PathBuf,
    pub daemon: DaemonConfig,
    pub subscriptions: Vec<Subscription>,
    pub problems: Vec<Located>,
    /// Files that failed, by path (their last good version may keep running).
    pub failed_files: Vec<PathBuf>,
}

impl Loaded {
    pub fn subscription(&self, id: &str) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.id == id)
    }
}

/// The daemon file could not be used at all.
#[derive(Debug)]
pub struct FatalConfig(pub Vec<Located>);

impl fmt::Display for FatalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FatalConfig {}

/// Loads the daemon file at `path` and every `*.toml` in its subscriptions folder.
pub fn load(path: &Path) -> Result<Loaded, FatalConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        FatalConfig(vec![Located {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            key: String::new(),
            message: format!(
                "cannot read the config file: {e}; pass --config PATH or set REGDROP_CONFIG"
            ),
        }])
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    let daemon = daemon_from_str(path, &text, &base).map_err(FatalConfig)?;
    let (subscriptions, problems, failed_files) = load_subscriptions(&daemon);
    Ok(Loaded {
        config_path: path.to_path_buf(),
        daemon,
        subscriptions,
        problems,
        failed_files,
    })
}

/// Loads every `*.toml` of the daemon's subscriptions folder, sorted by file name.
pub fn load_subscriptions(
    daemon: &DaemonConfig,
) -> (Vec<Subscription>, Vec<Located>, Vec<PathBuf>) {
    let dir = &daemon.subscriptions_dir;
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(e) => {
            return (
                vec![],
                vec![Located {
                    file: dir.clone(),
                    line: 1,
                    column: 1,
                    key: String::new(),
                    message: format!(
                    "cannot read the subscriptions folder: {e}; create it or set subscriptions_dir"
                ),
                }],
                vec![],
            )
        }
    };
    files.sort();
    let mut subs: Vec<Subscription> = Vec::new();
    let mut problems = Vec::new();
    let mut failed = Vec::new();
    for file in files {
        match load_subscription_file(&file, &daemon.inherited) {
            Ok((sub, text)) => {
                if let Some(first) = subs.iter().find(|s| s.id == sub.id) {
                    problems.push(locate(
                        &file,
                        &text,
                        Problem {
                            key: "id".into(),
                            message: format!(
                                "id `{}` is already used by {}; every subscription needs its own id",
                                sub.id,
                                first.source.display()
                            ),
                        },
                    ));
                    failed.push(file);
                } else {
                    subs.push(sub);
                }
            }
            Err(ps) => {
                problems.extend(ps);
                failed.push(file);
            }
        }
    }
    (subs, problems, failed)
}

/// Reads and validates one subscription file.
pub fn load_subscription_file(
    file: &Path,
    inherited: &validate::Inherited,
) -> Result<(Subscription, String), Vec<Located>> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        vec![Located {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            key: String::new(),
            message: format!("cannot read the file: {e}"),
        }]
    })?;
    let sub = subscription_from_str(file, &text, inherited)?;
    Ok((sub, text))
}

/// Parses and validates the text of one subscription file (`file` names it in problems).
/// Pure; what `check` and the daemon run on every file, and what the fuzz targets drive.
/// Every problem of the file: its shape (unknown keys, wrong types, missing keys) and,
/// for the keys that passed, the validator's.
pub fn subscription_from_str(
    file: &Path,
    text: &str,
    inherited: &validate::Inherited,
) -> Result<Subscription, Vec<Located>> {
    let (raw, shape): (RawSubscription, _) = parse(file, text, &schema::SUBSCRIPTION)?;
    let validated = validate::validate_subscription(&raw, inherited, file);
    finish(file, text, shape, validated)
}

/// Parses and validates the text of a daemon file; `base` is where relative paths start.
pub fn daemon_from_str(file: &Path, text: &str, base: &Path) -> Result<DaemonConfig, Vec<Located>> {
    let (raw, shape): (RawDaemon, _) = parse(file, text, &schema::DAEMON)?;
    let validated = validate::validate_daemon(&raw, base);
    finish(file, text, shape, validated)
}

/// The shape problems and the validator's (less those about keys the shape check already
/// reported), in file order.
fn finish<T>(
    file: &Path,
    text: &str,
    shape: Shape,
    validated: Result<T, Vec<Problem>>,
) -> Result<T, Vec<Located>> {
    let rest = match validated {
        Ok(v) if shape.problems.is_empty() => return Ok(v),
        Ok(_) => Vec::new(),
        Err(ps) => ps,
    };
    let mut all: Vec<Located> = rest
        .into_iter()
        .filter(|p| !shape::covered_by(&p.key, &shape.covered))
        .map(|p| locate(file, text, p))
        .collect();
    all.extend(
        shape
            .problems
            .into_iter()
            .map(|s| located_at(file, text, s.offset, s.problem)),
    );
    all.sort_by_key(|l| (l.line, l.column));
    Err(all)
}

/// Parses a file (every syntax error), checks its shape against `root` (every problem) and
/// deserializes what passed.
fn parse<T: DeserializeOwned>(
    file: &Path,
    text: &str,
    root: &'static schema::Table,
) -> Result<(T, Shape), Vec<Located>> {
    use serde::de::IntoDeserializer;
    let (doc, errors) = toml::de::DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|e| serde_problem(file, text, e))
            .collect());
    }
    let span = doc.span();
    let mut doc = doc.into_inner();
    let shape = shape::check(&mut doc, root);
    let raw = T::deserialize(toml::Spanned::new(span, doc).into_deserializer())
        .map_err(|e| vec![serde_problem(file, text, &e)])?;
    Ok((raw, shape))
}

fn serde_problem(file: &Path, text: &str, e: &toml::de::Error) -> Located {
    let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
    Located {
        file: file.to_path_buf(),
        line,
        column,
        key: String::new(),
        message: tidy(e.message()),
    }
}

fn located_at(file: &Path, text: &str, offset: usize, p: Problem) -> Located {
    let (line, column) = line_col(text, offset);
    Located {
        file: file.to_path_buf(),
        line,
        column,
        key: p.key,
        message: p.message,
    }
}

fn tidy(msg: &str) -> String {
    let m = msg.trim().trim_end_matches('.').to_string();
    if m.starts_with("unknown field") {
        format!("{m}; remove it or fix its spelling")
    } else if m.starts_with("missing field") {
        format!("{m}; add it")
    } else if m.starts_with("duplicate key") {
        format!("{m}; a key may appear once in its table: remove one of them")
    } else {
        m
    }
}

/// Places a problem at the value its key names; a missing key points at the nearest
/// table that exists.
pub fn locate(file: &Path, text: &str, p: Problem) -> Located {
    let offset = span_of(text, &p.key).unwrap_or(0);
    let (line, column) = line_col(text, offset);
    Located {
        file: file.to_path_buf(),
        line,
        column,
        key: p.key,
        message: p.message,
    }
}

fn span_of(text: &str, key: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut best = None;
    let mut table = doc.get_ref();
    let mut segments = key.split('.').peekable();
    while let Some(seg) = segments.next() {
        let (name, index) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        let Some((k, v)) = table.get_key_value(name) else {
            return best;
        };
        best = Some(k.span().start);
        let mut value = v;
        if let Some(i) = index {
            if let DeValue::Array(a) = value.get_ref() {
                if let Some(item) = a.get(i) {
                    value = item;
                }
            }
        }
        if segments.peek().is_none() {
            return Some(value.span().start);
        }
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return Some(value.span().start),
        }
    }
    best
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// The config path: `--config`, else `$REGDROP_CONFIG`, else `./regdrop.toml` when it
/// exists, else `/etc/regdrop/regdrop.toml`.
pub fn default_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("REGDROP_CONFIG") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from("regdrop.toml");
    if local.exists() {
        return local;
    }
    PathBuf::from("/etc/regdrop/regdrop.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars() {
        assert_eq!(line_col("a\nbæc\n", 5), (2, 3));
        assert_eq!(line_col("x", 0), (1, 1));
    }

    #[test]
    fn span_of_finds_nested_keys_and_array_items() {
        let text = "id = \"x\"\n[target]\nhost = \"h\"\nhost_keys = [\"a\", \"b\"]\n";
        let off = span_of(text, "target.host_keys[1]").unwrap();
        assert_eq!(line_col(text, off), (4, 19));
        let off = span_of(text, "target.host").unwrap();
        assert_eq!(line_col(text, off), (3, 8));
        // A missing key points at the nearest existing parent.
        let off = span_of(text, "target.auth.password").unwrap();
        assert_eq!(line_col(text, off).0, 2);
    }
}
