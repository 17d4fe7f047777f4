//! The register on PostgreSQL: the schema of [`super::schema`] ([`super::schema::ddl_postgres`]),
//! loads with `COPY ... FROM STDIN` (text format, [`crate::pgconn::copy_text`]) on a client
//! thread ([`Worker`]), `register_meta`, the vehicle count guarding an import, and the
//! statistics' queries. The generator and the import write through here.

use super::schema::{self, CODE_TABLES};
use super::RegisterError;
use crate::core::config::location::PgUrl;
use crate::pgconn::copy_text::push_field;
use crate::pgconn::{Worker, WorkerError};
use std::io::Write;

/// Connects to the register database.
pub fn connect(url: &PgUrl) -> Result<Worker, RegisterError> {
    Ok(Worker::connect(url)?)
}

/// Runs `sql` (statements without parameters).
pub fn batch(w: &Worker, sql: &str) -> Result<(), RegisterError> {
    let sql = sql.to_string();
    Ok(w.call(move |c| c.batch_execute(&sql))?)
}

/// Creates what is missing of the schema and (re)fills the code tables, in the open
/// transaction.
pub fn create_schema(w: &Worker) -> Result<(), RegisterError> {
    batch(w, &schema::ddl_postgres())?;
    for (table, text) in CODE_TABLES {
        let mut data = Vec::new();
        for (code, name) in schema::parse_code_csv(text) {
            push_row(&mut data, &[Some(&code), Some(&name)]);
        }
        batch(w, &format!("DELETE FROM {table}"))?;
        copy_in(w, format!("COPY {table} (code, name) FROM STDIN"), data)?;
    }
    Ok(())
}

/// Appends one row in COPY text format.
pub fn push_row(out: &mut Vec<u8>, values: &[Option<&str>]) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        push_field(out, *v);
    }
    out.push(b'\n');
}

/// One `COPY ... FROM STDIN` of `data` (whole rows), waiting for it.
pub fn copy_in(w: &Worker, sql: String, data: Vec<u8>) -> Result<u64, RegisterError> {
    Ok(w.call(move |c| {
        let mut writer = c.copy_in(&sql)?;
        writer.write_all(&data)?;
        Ok::<_, WorkerError>(writer.finish()?)
    })?)
}

/// Several COPYs one after the other in one round of waiting, so the caller can prepare
/// the next batch while the server loads this one: [`Pending::wait`] for the result.
pub fn copy_in_background(
    w: &Worker,
    copies: Vec<(String, Vec<u8>)>,
) -> Result<Pending, RegisterError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    w.submit(move |c| {
        let r = (|| {
            for (sql, data) in copies {
                let mut writer = c.copy_in(&sql)?;
                writer.write_all(&data)?;
                writer.finish()?;
            }
            Ok::<(), WorkerError>(())
        })();
        let _ = tx.send(r);
    })?;
    Ok(Pending(rx))
}

/// COPYs under way on the client's thread.
pub struct Pending(std::sync::mpsc::Receiver<Result<(), WorkerError>>);

impl Pending {
    pub fn wait(self) -> Result<(), RegisterError> {
        match self.0.recv() {
            Ok(r) => Ok(r?),
            Err(_) => Err(WorkerError::Thread.into()),
        }
    }
}

/// Sets `register_meta` rows (insert or replace).
pub fn put_meta(w: &Worker, rows: Vec<(&'static str, String)>) -> Result<(), RegisterError> {
    Ok(w.call(move |c| {
        for (k, v) in &rows {
            c.execute(
                "INSERT INTO register_meta (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[k, v],
            )?;
        }
        Ok::<_, WorkerError>(())
    })?)
}

/// Vehicles in the register, or `None` when it has no vehicle table yet.
pub fn vehicle_count(w: &Worker) -> Result<Option<u64>, RegisterError> {
    Ok(w.call(|c| {
        let exists: bool = c
            .query_one("SELECT to_regclass('vehicle') IS NOT NULL", &[])?
            .get(0);
        if !exists {
            return Ok::<_, WorkerError>(None);
        }
        let n: i64 = c.query_one("SELECT count(*) FROM vehicle", &[])?.get(0);
        Ok(Some(n as u64))
    })?)
}

/// The largest vehicle id (0 when empty): an import numbers its rows on from there, as
/// SQLite's rowid does.
pub fn max_vehicle_id(w: &Worker) -> Result<i64, RegisterError> {
    Ok(w.call(|c| {
        c.query_one("SELECT coalesce(max(id), 0)::bigint FROM vehicle", &[])
            .map(|r| r.get::<_, i64>(0))
    })?)
}

/// Every row of `sql`, each column read as text (cast them in the SQL: `count(*)::text`).
pub fn text_rows(w: &Worker, sql: &str) -> Result<Vec<Vec<Option<String>>>, RegisterError> {
    let sql = sql.to_string();
    Ok(w.call(move |c| {
        c.query(&sql, &[]).map(|rows| {
            rows.iter()
                .map(|r| (0..r.len()).map(|i| r.get(i)).collect())
                .collect()
        })
    })?)
}
