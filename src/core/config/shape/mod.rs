//! The shape check: every key of a parsed file against the keys and value types its table
//! may hold ([`schema`]), collecting every unknown key (with "did you mean"), missing key
//! and wrong type, each at its place and in plain words, before serde sees the file. Pure.
//!
//! Serde stops at the first error and speaks Rust (`invalid type: string "2222", expected
//! u16`); this walk does not stop, and it repairs what it reports (drops an unknown or
//! mistyped key, puts a placeholder where a required one is missing) so that the file still
//! deserializes and the validator can report the problems of the remaining keys too.

pub mod schema;

use super::validate::Problem;
use schema::{Key, Table, Ty};
use std::borrow::Cow;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A problem of the file's shape, with the byte offset it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeProblem {
    pub offset: usize,
    pub problem: Problem,
}

/// What the shape check found.
#[derive(Debug, Default)]
pub struct Shape {
    /// Every problem, in file order.
    pub problems: Vec<ShapeProblem>,
    /// The keys whose values were dropped or replaced by a placeholder: the validator's
    /// problems about them (or below them) are not the operator's to fix.
    pub covered: Vec<String>,
}

/// Checks `doc` against `root`, collecting every problem, and repairs it so that it
/// deserializes into `root`'s serde type.
pub fn check(doc: &mut DeTable<'_>, root: &'static Table) -> Shape {
    let mut w = Walk {
        root,
        out: Shape::default(),
    };
    w.table(doc, root, "", 0);
    w.out.problems.sort_by_key(|p| p.offset);
    w.out
}

/// Whether a problem at `key` may come from a key the shape check repaired: the same key
/// or one below it (`target.auth` covers `target.auth.key_file`).
pub fn covered_by(key: &str, covered: &[String]) -> bool {
    covered.iter().any(|k| {
        let k = k.as_str();
        key == k
            || key
                .strip_prefix(k)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    })
}

struct Walk {
    root: &'static Table,
    out: Shape,
}

fn path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl Walk {
    fn push(&mut self, offset: usize, key: String, message: String) {
        self.out.covered.push(key.clone());
        self.out.problems.push(ShapeProblem {
            offset,
            problem: Problem::new(key, message),
        });
    }

    /// `at` is where a missing key of this table is reported (its header or first line).
    fn table(&mut self, t: &mut DeTable<'_>, schema: &'static Table, prefix: &str, at: usize) {
        let serde_knows = (schema.serde_fields)();
        let unknown: Vec<(String, usize)> = t
            .iter()
            .filter(|(k, _)| {
                let k = k.get_ref().as_ref();
                !schema.keys.iter().any(|s| s.name == k) && !serde_knows.contains(&k)
            })
            .map(|(k, _)| (k.get_ref().to_string(), k.span().start))
            .collect();
        // Required keys an unknown key was taken for (`custmer` -> `customer`): its "did you
        // mean" says it all, so no second line says `customer` is missing.
        let mut meant = Vec::new();
        for (name, offset) in unknown {
            let (message, suggestion) = self.unknown_key(&name, schema);
            meant.extend(suggestion);
            self.push(offset, path(prefix, &name), message);
            t.remove(name.as_str());
        }
        for key in schema.keys {
            let key_path = path(prefix, key.name);
            match t.get_mut(key.name) {
                None if key.required && meant.contains(&key.name) => {
                    self.out.covered.push(key_path);
                    t.insert(
                        Spanned::new(at..at, Cow::Owned(key.name.into())),
                        placeholder(key, at),
                    );
                }
                None if key.required => {
                    self.push(
                        at,
                        key_path,
                        format!(
                            "missing from {}; add {}",
                            where_(schema, prefix),
                            example(key)
                        ),
                    );
                    t.insert(
                        Spanned::new(at..at, Cow::Owned(key.name.into())),
                        placeholder(key, at),
                    );
                }
                None => {}
                Some(v) => {
                    let offset = v.span().start;
                    if let Err(message) = self.value(v, key, &key_path) {
                        self.push(offset, key_path, message);
                        if key.required {
                            *v = placeholder(key, offset);
                        } else {
                            t.remove(key.name);
                        }
                    }
                }
            }
        }
    }

    /// Checks one value (and, for tables and lists, what is inside); `Err` when the value
    /// itself has the wrong type (problems inside are pushed and repaired).
    fn value(
        &mut self,
        v: &mut Spanned<DeValue<'_>>,
        key: &Key,
        key_path: &str,
    ) -> Result<(), String> {
        let offset = v.span().start;
        let wrong = |v: &DeValue<'_>| Err(mistyped(key, v));
        match (key.ty, v.get_mut()) {
            (Ty::Any, _)
            | (Ty::Text | Ty::TextOrTable(_), DeValue::String(_))
            | (Ty::Bool, DeValue::Boolean(_))
            | (Ty::Number, DeValue::Float(_) | DeValue::Integer(_))
            | (Ty::Date, DeValue::Datetime(_)) => Ok(()),
            (Ty::Int { min, max }, DeValue::Integer(i)) => {
                match i128::from_str_radix(i.as_str(), i.radix()) {
                    Ok(n) if (min..=max).contains(&n) => Ok(()),
                    _ => Err(format!(
                        "expected {}, found {i}; write a number in that range",
                        expect(key.ty)
                    )),
                }
            }
            (Ty::OneOf(choices), DeValue::String(s)) => {
                if choices.contains(&s.as_ref()) {
                    Ok(())
                } else {
                    Err(format!(
                        "`{s}` is not one of {}{}",
                        quoted(choices),
                        did_you_mean(s, choices.iter().copied())
                            .map(|m| format!("; did you mean \"{m}\"?"))
                            .unwrap_or_else(|| "; write one of them".into())
                    ))
                }
            }
            (Ty::TextList, DeValue::Array(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    if item.get_ref().is_str() {
                        continue;
                    }
                    let found = describe(item.get_ref());
                    let at = item.span().start;
                    self.push(
                        at,
                        format!("{key_path}[{i}]"),
                        format!("expected text in quotes, found {found}; put it in quotes"),
                    );
                    // The same index, so later items keep their place in messages.
                    *item = Spanned::new(at..at, DeValue::String(Cow::Owned(String::new())));
                }
                Ok(())
            }
            (Ty::Table(t) | Ty::TextOrTable(t), DeValue::Table(inner)) => {
                self.table(inner, t, key_path, offset);
                Ok(())
            }
            (Ty::TableList(t), DeValue::Array(items)) => {
                let mut not_tables = Vec::new();
                for (i, item) in items.iter_mut().enumerate() {
                    let at = item.span().start;
                    let item_path = format!("{key_path}[{i}]");
                    match item.get_mut() {
                        DeValue::Table(inner) => self.table(inner, t, &item_path, at),
                        other => {
                            let found = describe(other);
                            self.push(
                                at,
                                item_path,
                                format!("expected a table, found {found}; write each as a [[{key_path}]] table"),
                            );
                            not_tables.push(i);
                        }
                    }
                }
                if !not_tables.is_empty() {
                    let all = std::mem::replace(items, toml::de::DeArray::new());
                    *items = all
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !not_tables.contains(i))
                        .map(|(_, v)| v)
                        .collect();
                }
                Ok(())
            }
            (Ty::TextMap, DeValue::Table(inner)) => {
                for (k, item) in inner.iter_mut() {
                    if item.get_ref().is_str() {
                        continue;
                    }
                    let found = describe(item.get_ref());
                    let at = item.span().start;
                    self.push(
                        at,
                        format!("{key_path}.{}", k.get_ref()),
                        format!("expected text in quotes, found {found}; put it in quotes"),
                    );
                    *item = Spanned::new(at..at, DeValue::String(Cow::Owned(String::new())));
                }
                Ok(())
            }
            (_, other) => wrong(other),
        }
    }

    /// The message for an unknown key, and the key it was probably meant to be.
    fn unknown_key(&self, name: &str, schema: &'static Table) -> (String, Option<&'static str>) {
        let here: Vec<&'static str> = schema.keys.iter().map(|k| k.name).collect();
        if let Some(m) = did_you_mean(name, here.iter().copied()) {
            return (format!("unknown key; did you mean `{m}`?"), Some(m));
        }
        if let Some(elsewhere) = schema::tables(self.root)
            .into_iter()
            .find(|t| !std::ptr::eq(*t, schema) && t.keys.iter().any(|k| k.name == name))
        {
            return (
                format!(
                    "unknown key here; `{name}` belongs in {}: move it there",
                    elsewhere.name
                ),
                None,
            );
        }
        (
            format!(
                "unknown key; remove it or fix its spelling (the keys of {} are {})",
                schema.name,
                here.join(", ")
            ),
            None,
        )
    }
}

/// "the top level" or `[target]`.
fn where_(schema: &Table, prefix: &str) -> String {
    if prefix.is_empty() {
        format!("{} (top level)", schema.name)
    } else {
        format!("[{prefix}]")
    }
}

/// The closest of `names` to `name`, if it is close enough to be a typo.
fn did_you_mean<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    names
        .map(|n| {
            // A name cut short (`spool` for `spool_dir`) is as close as a typo.
            let d = if n.starts_with(name) && name.len() >= 4 {
                1
            } else {
                strsim::damerau_levenshtein(name, n)
            };
            (d, n)
        })
        .filter(|(d, n)| *d <= (n.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn quoted(choices: &[&str]) -> String {
    choices
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a type is, in words.
fn expect(ty: Ty) -> String {
    match ty {
        Ty::Text => "text in quotes".into(),
        Ty::Bool => "true or false".into(),
        Ty::Number => "a number".into(),
        Ty::Int { min, .. } if min == i128::from(i64::MIN) => "a whole number".into(),
        Ty::Int { min, max } if max == i128::from(u64::MAX) => {
            format!("a whole number {min} or more")
        }
        Ty::Int { min, max } => format!("a whole number {min}-{max}"),
        Ty::OneOf(c) => format!("one of {}", quoted(c)),
        Ty::TextList => "a list of texts in quotes".into(),
        Ty::Date => "a date like 2026-01-31 (no quotes)".into(),
        Ty::Table(_) => "a table".into(),
        Ty::TextOrTable(_) => "text in quotes or a table".into(),
        Ty::TableList(_) => "a list of tables".into(),
        Ty::TextMap => "a table of texts in quotes".into(),
        Ty::Any => "a value".into(),
    }
}

/// What a value is, in words.
fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("the text \"{s}\""),
        DeValue::Integer(i) => format!("the whole number {i}"),
        DeValue::Float(f) => format!("the number {f}"),
        DeValue::Boolean(b) => format!("{b}"),
        DeValue::Datetime(d) => format!("the date {d}"),
        DeValue::Array(_) => "a list".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

/// The message for a value of the wrong type: what was expected, what was found, and the
/// line to write instead.
fn mistyped(key: &Key, v: &DeValue<'_>) -> String {
    let name = key.name;
    let fix = match (key.ty, v) {
        (Ty::Int { .. } | Ty::Number, DeValue::String(s)) if s.trim().parse::<f64>().is_ok() => {
            format!("write {name} = {} without quotes", s.trim())
        }
        (Ty::Bool, DeValue::String(s)) if matches!(s.trim(), "true" | "false") => {
            format!("write {name} = {} without quotes", s.trim())
        }
        (Ty::Date, DeValue::String(s)) => format!("write {name} = {s} without quotes"),
        (
            Ty::Text | Ty::OneOf(_) | Ty::TextOrTable(_),
            DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) | DeValue::Datetime(_),
        ) => {
            format!("write {name} = \"{}\" in quotes", scalar(v))
        }
        (Ty::TextList, DeValue::String(s)) => format!("write {name} = [\"{s}\"]"),
        _ => format!("write {}", example(key)),
    };
    format!("expected {}, found {}; {fix}", expect(key.ty), describe(v))
}

fn scalar(v: &DeValue<'_>) -> String {
    match v {
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(f) => f.to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        _ => String::new(),
    }
}

/// A line showing the key with a value of its type.
fn example(key: &Key) -> String {
    let name = key.name;
    match key.ty {
        Ty::Text | Ty::TextOrTable(_) => format!("{name} = \"...\""),
        Ty::Bool => format!("{name} = true"),
        Ty::Number => format!("{name} = 2.0"),
        Ty::Int { min, .. } => format!("{name} = {}", min.max(1)),
        Ty::OneOf(c) => format!("{name} = \"{}\"", c.first().copied().unwrap_or_default()),
        Ty::TextList => format!("{name} = [\"...\"]"),
        Ty::Date => format!("{name} = 2026-01-31"),
        Ty::Table(_) => format!("a [{name}] table"),
        Ty::TableList(_) => format!("[[{name}]] tables"),
        Ty::TextMap => format!("{name} = {{ key = \"...\" }}"),
        Ty::Any => format!("{name} = ..."),
    }
}

/// A value of the key's type standing in for a missing or mistyped required key (the file
/// is refused anyway; the placeholder only lets the other keys be checked).
fn placeholder<'i>(key: &Key, at: usize) -> Spanned<DeValue<'i>> {
    let v = match key.ty {
        Ty::Table(t) => {
            let mut inner = DeTable::new();
            for k in t.keys.iter().filter(|k| k.required) {
                inner.insert(
                    Spanned::new(at..at, Cow::Owned(k.name.into())),
                    placeholder(k, at),
                );
            }
            DeValue::Table(inner)
        }
        Ty::Bool => DeValue::Boolean(false),
        Ty::Int { .. } => DeValue::Integer(toml::de::DeInteger::default()),
        Ty::Number => DeValue::Float(toml::de::DeFloat::default()),
        Ty::Date => DeValue::Datetime("2026-01-01".parse().expect("a TOML date")),
        Ty::TextList | Ty::TableList(_) => DeValue::Array(toml::de::DeArray::new()),
        Ty::TextMap => DeValue::Table(DeTable::new()),
        Ty::OneOf(c) => DeValue::String(Cow::Owned(c.first().copied().unwrap_or_default().into())),
        Ty::Text | Ty::TextOrTable(_) | Ty::Any => DeValue::String(Cow::Owned(String::new())),
    };
    Spanned::new(at..at, v)
}

/// The field names serde's derive gives `T` (`deserialize_struct`'s list), asked of a
/// deserializer that records them and stops.
pub fn serde_fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(FieldProbe) {
        Err(ProbeStop(Some(fields))) => fields,
        _ => &[],
    }
}

struct FieldProbe;

#[derive(Debug)]
struct ProbeStop(Option<&'static [&'static str]>);

impl std::fmt::Display for ProbeStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for ProbeStop {}

impl serde::de::Error for ProbeStop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        ProbeStop(None)
    }
}

impl<'de> serde::Deserializer<'de> for FieldProbe {
    type Error = ProbeStop;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeStop> {
        Err(ProbeStop(None))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ProbeStop> {
        Err(ProbeStop(Some(fields)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests;
