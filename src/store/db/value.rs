//! Values between the store and either engine: [`Value`] (what a parameter or a column
//! holds), the conversions from and to Rust types ([`ToValue`], [`FromValue`]), owned rows
//! ([`Row`]) and parameter lists ([`Params`]).

use super::super::error::{Result, StoreError};
use bytes::BytesMut;
use postgres::types::{to_sql_checked, IsNull, Kind, Type};
use std::error::Error as StdError;

/// A parameter or a column value. The store's columns are text, 64-bit integers and
/// (rarely) bytes; both engines store exactly these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Text(_) => "text",
            Value::Blob(_) => "bytes",
        }
    }

    pub(super) fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Result<Value> {
        use rusqlite::types::ValueRef as V;
        Ok(match v {
            V::Null => Value::Null,
            V::Integer(i) => Value::Int(i),
            V::Text(t) => Value::Text(
                String::from_utf8(t.to_vec())
                    .map_err(|_| StoreError::Corrupt("a text column is not UTF-8".into()))?,
            ),
            V::Blob(b) => Value::Blob(b.to_vec()),
            V::Real(r) => {
                return Err(StoreError::Corrupt(format!(
                    "a column holds the real number {r}; the store has none"
                )))
            }
        })
    }
}

/// A Rust value that can be a statement parameter.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}
impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}
impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}
macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(i64::from(*self))
            }
        }
    )*};
}
int_to_value!(i64, i32, i16, u32, u16, u8);

/// A Rust value a column can be read as.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> std::result::Result<Self, String>;
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}
impl FromValue for Value {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        Ok(v.clone())
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Text(t) => Ok(t.clone()),
            other => Err(format!("expected text, found {}", other.kind())),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            other => Err(format!("expected bytes, found {}", other.kind())),
        }
    }
}
impl FromValue for bool {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        i64::from_value(v).map(|i| i != 0)
    }
}
macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value) -> std::result::Result<Self, String> {
                match v {
                    Value::Int(i) => <$t>::try_from(*i)
                        .map_err(|_| format!("{i} is out of range for {}", stringify!($t))),
                    other => Err(format!("expected an integer, found {}", other.kind())),
                }
            }
        }
    )*};
}
int_from_value!(i64, i32, u32, u16);

/// A column position (as rusqlite's `RowIndex`; only positions here).
pub trait RowIndex {
    fn index(&self) -> usize;
}
impl RowIndex for usize {
    fn index(&self) -> usize {
        *self
    }
}

/// One result row, owned (PostgreSQL rows are fetched whole; SQLite rows are copied out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    pub(super) fn new(values: Vec<Value>) -> Row {
        Row { values }
    }

    /// Column `i` as `T`; a NULL or another type than `T` is [`StoreError::Corrupt`].
    pub fn get<I: RowIndex, T: FromValue>(&self, i: I) -> Result<T> {
        let i = i.index();
        let v = self.values.get(i).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "column {i} asked for, the row has {}",
                self.values.len()
            ))
        })?;
        T::from_value(v).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// A statement's parameters: `params![..]`, `[a, b]`, `[]`, or a `Vec<Value>`.
pub trait Params {
    fn into_values(self) -> Vec<Value>;
}

impl Params for &[&dyn ToValue] {
    fn into_values(self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}
impl Params for Vec<Value> {
    fn into_values(self) -> Vec<Value> {
        self
    }
}
impl Params for &[Value] {
    fn into_values(self) -> Vec<Value> {
        self.to_vec()
    }
}
impl Params for [Value; 0] {
    fn into_values(self) -> Vec<Value> {
        Vec::new()
    }
}
macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToValue> Params for [T; $n] {
            fn into_values(self) -> Vec<Value> {
                self.iter().map(ToValue::to_value).collect()
            }
        }
        impl<T: ToValue> Params for &[T; $n] {
            fn into_values(self) -> Vec<Value> {
                self.iter().map(ToValue::to_value).collect()
            }
        }
    )*};
}
array_params!(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

/// The base type behind a domain (information_schema's columns are domains).
fn base_type(ty: &Type) -> &Type {
    match ty.kind() {
        Kind::Domain(inner) => base_type(inner),
        _ => ty,
    }
}

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

/// Binds to whatever type the server inferred for the parameter: an integer to any
/// integer type (range-checked), text to the text types, bytes to `bytea`; anything else
/// is refused with both types named (a store bug, not a data problem).
impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        let ty = base_type(ty);
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                _ => Err(format!("integer parameter where PostgreSQL expects {ty}").into()),
            },
            Value::Text(t) if is_text(ty) => t.as_str().to_sql(&Type::TEXT, out),
            Value::Text(_) => Err(format!("text parameter where PostgreSQL expects {ty}").into()),
            Value::Blob(b) if *ty == Type::BYTEA => b.as_slice().to_sql(ty, out),
            Value::Blob(_) => Err(format!("bytes parameter where PostgreSQL expects {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Reads any column of the types the store uses into a [`Value`].
pub(super) struct PgValue(pub Value);

impl<'a> postgres::types::FromSql<'a> for PgValue {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn StdError + Sync + Send>> {
        let ty = base_type(ty);
        Ok(PgValue(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::OID => Value::Int(u32::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            ref t if is_text(t) => Value::Text(std::str::from_utf8(raw)?.to_string()),
            ref t => return Err(format!("column type {t} is not one the store reads").into()),
        }))
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}
