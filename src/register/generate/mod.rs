//! The synthetic register: a deterministic (same seed, same content), realistic fleet with
//! valid identifiers, owners, co-owners, lessees and ownership history, fast enough for the
//! real fleet's 4 million vehicles.
//!
//! One thread makes rows (a single `Pcg64` stream, so the content depends only on the seed
//! and the vehicle count), another inserts them into SQLite in large transactions with
//! prepared statements while the journal is off; indexes are built after the load and the
//! database is switched back to WAL at the end. Dates are relative to a fixed as-of date
//! ([`AS_OF`]) so that a seed always means the same register.
//!
//! # Files
//! - this file: [`generate`] (and [`generate_postgres`]), the maker thread and the SQLite
//!   writer (batches, transactions).
//! - `pg.rs`: the PostgreSQL writer (batches as `COPY` text).
//! - `batch.rs`: batches of rows as text ranges; `Record`, the fields of one vehicle.
//! - `maker.rs`: the maker's state (random stream, pools) and the drawing helpers.
//! - `vehicle/`: one vehicle record, one file per section of the record.
//! - `owners.rs`: places, the organisation pool, person and organisation ownership rows.
//! - `plates.rs`, `vin.rs`: plates (unique per register), VINs and older chassis numbers.
//! - `tables.rs`: the makes, models, colours, tyres, ... of `data/generator_*`.
//! - `dates.rs`: civil dates as day numbers; `fields.rs`: positions of technical fields.
//!
//! The content is the order of the random draws: a change of order (or of a table's rows)
//! changes every register made from a seed.

mod batch;
mod dates;
mod fields;
mod maker;
mod owners;
mod pg;
mod plates;
mod tables;
mod vehicle;
mod vin;

pub use dates::AS_OF;

use self::batch::{Batch, Range, OWNER_COLS};
use self::maker::Maker;
use super::schema;
use super::RegisterError;
use crate::core::catalog::{column_of, TECHNICAL};
use rusqlite::{Connection, Statement};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Instant;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Number of vehicles (the real register has about 4 million).
    pub vehicles: u64,
    /// Seed of the random stream; the same seed and count give the same content.
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            vehicles: 10_000,
            seed: 1,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateSummary {
    pub vehicles: u64,
    /// All ownership rows (current and history).
    pub ownerships: u64,
    /// Organisations in the pool owners and lessors are drawn from.
    pub organisations: u64,
    /// Seconds spent loading rows (before indexes).
    pub load_seconds: f64,
    /// Seconds spent building indexes.
    pub index_seconds: f64,
    pub total_seconds: f64,
}

/// Vehicles per batch handed from the maker thread to the writer.
const BATCH: usize = 4096;
/// Batches per transaction.
const BATCHES_PER_TX: usize = 64;

/// Generates a synthetic register into `db` (created if missing). Existing vehicles and
/// ownerships in `db` are replaced (no other connection may hold the database). The load
/// runs without a journal: an interrupted run leaves a partial register, so run it again.
/// `progress` is called with the number of vehicles written so far.
pub fn generate(
    db: &Path,
    opts: &GenerateOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<GenerateSummary, RegisterError> {
    check_vehicles(opts)?;
    let started = Instant::now();
    let conn = open_for_load(db)?;
    let (vehicles, ownerships, orgs) =
        make_and_write(opts, |rx| write_batches(&conn, rx, progress))?;
    let load_seconds = started.elapsed().as_secs_f64();

    let t = Instant::now();
    conn.execute_batch(schema::INDEXES)?;
    let index_seconds = t.elapsed().as_secs_f64();
    finish(&conn, opts.seed, vehicles, ownerships)?;
    Ok(GenerateSummary {
        vehicles,
        ownerships,
        organisations: orgs,
        load_seconds,
        index_seconds,
        total_seconds: started.elapsed().as_secs_f64(),
    })
}

/// [`generate`] into a PostgreSQL register: in one transaction, the vehicle and ownership
/// tables are dropped and made again, each batch goes in with two `COPY ... FROM STDIN`
/// (loaded by the server while the next batch is formatted), then the indexes, the
/// metadata and `ANALYZE`. The content is the SQLite register's of the same seed, ids
/// included. An interrupted run leaves the register as it was.
pub fn generate_postgres(
    url: &crate::core::config::location::PgUrl,
    opts: &GenerateOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<GenerateSummary, RegisterError> {
    check_vehicles(opts)?;
    let started = Instant::now();
    let w = super::pg::connect(url)?;
    super::pg::batch(
        &w,
        "BEGIN; SET LOCAL client_min_messages = warning; \
         DROP TABLE IF EXISTS ownership; DROP TABLE IF EXISTS vehicle;",
    )?;
    super::pg::create_schema(&w)?;
    super::pg::batch(&w, "DELETE FROM register_meta")?;
    let (vehicles, ownerships, orgs) =
        make_and_write(opts, |rx| pg::write_batches(&w, rx, progress))?;
    let load_seconds = started.elapsed().as_secs_f64();
    let t = Instant::now();
    super::pg::batch(&w, schema::INDEXES)?;
    let index_seconds = t.elapsed().as_secs_f64();
    super::pg::put_meta(&w, meta(opts.seed, vehicles, ownerships))?;
    super::pg::batch(&w, "COMMIT; ANALYZE vehicle; ANALYZE ownership;")?;
    Ok(GenerateSummary {
        vehicles,
        ownerships,
        organisations: orgs,
        load_seconds,
        index_seconds,
        total_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The `register_meta` rows of a generated register.
fn meta(seed: u64, vehicles: u64, ownerships: u64) -> Vec<(&'static str, String)> {
    let generated_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let as_of = format!("{:04}{:02}{:02}", AS_OF.0, AS_OF.1, AS_OF.2);
    vec![
        ("source", "generated".to_string()),
        ("seed", seed.to_string()),
        ("vehicles", vehicles.to_string()),
        ("ownerships", ownerships.to_string()),
        ("as_of", as_of),
        ("generated_at", generated_at),
    ]
}

/// Opens `db` with empty register tables, journal and syncing off for the bulk load.
fn open_for_load(db: &Path) -> Result<Connection, RegisterError> {
    let conn = schema::open_rw(db)?;
    conn.execute_batch(
        "DROP TABLE IF EXISTS ownership; DROP TABLE IF EXISTS vehicle;
         DELETE FROM register_meta;",
    )?;
    conn.execute_batch(&schema::ddl())?;
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -65_536i64)?; // 64 MiB
    Ok(conn)
}

/// `--vehicles` within what the plate series can hold.
fn check_vehicles(opts: &GenerateOptions) -> Result<(), RegisterError> {
    if opts.vehicles > 50_000_000 {
        return Err(RegisterError::InvalidOption(format!(
            "--vehicles {} is more than the 50,000,000 the plate series can hold",
            opts.vehicles
        )));
    }
    Ok(())
}

/// Makes the vehicles of `opts` on a thread of their own and hands the batches to `write`
/// (either engine's loader); returns (vehicles, ownerships, organisations). The writer drops
/// the receiver when it returns, so on an error the maker stops.
fn make_and_write(
    opts: &GenerateOptions,
    write: impl FnOnce(Receiver<Batch>) -> Result<(u64, u64), RegisterError>,
) -> Result<(u64, u64, u64), RegisterError> {
    let total = opts.vehicles;
    let (tx, rx) = mpsc::sync_channel::<Batch>(4);
    let maker = spawn_maker(opts.seed, total, tx)?;
    let written = write(rx);
    let orgs = maker
        .join()
        .map_err(|_| RegisterError::Worker("panicked".into()))?;
    let (vehicles, ownerships) = written?;
    if vehicles != total {
        return Err(RegisterError::Worker(format!(
            "made {vehicles} of {total} vehicles"
        )));
    }
    Ok((vehicles, ownerships, orgs))
}

/// Starts the thread that makes `total` vehicles in batches; it returns the number of
/// organisations in the owner pool.
fn spawn_maker(
    seed: u64,
    total: u64,
    tx: SyncSender<Batch>,
) -> Result<JoinHandle<u64>, RegisterError> {
    std::thread::Builder::new()
        .name("register-generate".into())
        .spawn(move || {
            let mut m = Maker::new(seed, total);
            let orgs = m.orgs.len() as u64;
            let mut next = 1u64;
            while next <= total {
                let n = (total - next + 1).min(BATCH as u64);
                let mut b = Batch::with_capacity(n as usize);
                for id in next..next + n {
                    m.vehicle(id, &mut b);
                }
                next += n;
                if tx.send(b).is_err() {
                    break; // the writer stopped; it reports its error
                }
            }
            orgs
        })
        .map_err(|e| RegisterError::Worker(e.to_string()))
}

/// Inserts every batch of `rx` in transactions of [`BATCHES_PER_TX`] batches; returns the
/// numbers of vehicles and ownership rows written.
fn write_batches(
    conn: &Connection,
    rx: Receiver<Batch>,
    progress: &mut dyn FnMut(u64),
) -> Result<(u64, u64), RegisterError> {
    let cols: Vec<String> = TECHNICAL.iter().map(|f| column_of(f.0)).collect();
    let placeholders: Vec<String> = (1..=86).map(|i| format!("?{i}")).collect();
    let vsql = format!(
        "INSERT INTO vehicle (id, {}) VALUES ({})",
        cols.join(", "),
        placeholders.join(", ")
    );
    let osql = format!(
        "INSERT INTO ownership (vehicle_id, role, {}) VALUES ({})",
        OWNER_COLS.join(", "),
        (1..=OWNER_COLS.len() + 2)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (mut vehicles, mut owners) = (0u64, 0u64);
    let mut in_tx = 0usize;
    conn.execute_batch("BEGIN")?;
    {
        let mut vst = conn.prepare(&vsql)?;
        let mut ost = conn.prepare(&osql)?;
        for b in rx.iter() {
            for (i, v) in b.vehicles.iter().enumerate() {
                vst.raw_bind_parameter(1, b.ids[i] as i64)?;
                bind_fields(&mut vst, 2, &b, v)?;
                vst.raw_execute()?;
            }
            for o in &b.owners {
                ost.raw_bind_parameter(1, o.vehicle as i64)?;
                ost.raw_bind_parameter(2, o.role.as_str())?;
                bind_fields(&mut ost, 3, &b, &o.fields)?;
                ost.raw_execute()?;
            }
            vehicles += b.vehicles.len() as u64;
            owners += b.owners.len() as u64;
            progress(vehicles);
            in_tx += 1;
            if in_tx == BATCHES_PER_TX {
                conn.execute_batch("COMMIT; BEGIN")?;
                in_tx = 0;
            }
        }
    }
    conn.execute_batch("COMMIT")?;
    Ok((vehicles, owners))
}

/// Binds `fields` of batch `b` to the parameters from `first` on (empty range = NULL).
fn bind_fields(
    st: &mut Statement<'_>,
    first: usize,
    b: &Batch,
    fields: &[Range],
) -> rusqlite::Result<()> {
    for (j, &r) in fields.iter().enumerate() {
        if r.0 == r.1 {
            st.raw_bind_parameter(j + first, rusqlite::types::Null)?;
        } else {
            st.raw_bind_parameter(j + first, b.get(r))?;
        }
    }
    Ok(())
}

/// Records what was generated in `register_meta`, analyses the tables and switches the
/// database back to WAL.
fn finish(
    conn: &Connection,
    seed: u64,
    vehicles: u64,
    ownerships: u64,
) -> Result<(), RegisterError> {
    {
        let mut st =
            conn.prepare("INSERT OR REPLACE INTO register_meta (key, value) VALUES (?1, ?2)")?;
        for (k, v) in meta(seed, vehicles, ownerships) {
            st.execute([k, v.as_str()])?;
        }
    }
    conn.execute_batch("PRAGMA analysis_limit = 1000; ANALYZE;")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a over every value of both tables in id order (stable across Rust versions).
    fn fingerprint(conn: &Connection) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for sql in [
            "SELECT * FROM vehicle ORDER BY id",
            "SELECT * FROM ownership ORDER BY id",
        ] {
            let mut st = conn.prepare(sql).unwrap();
            let cols = st.column_count();
            let mut rows = st.query([]).unwrap();
            while let Some(r) = rows.next().unwrap() {
                for i in 0..cols {
                    match r.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Null => eat(b"\x00N"),
                        rusqlite::types::ValueRef::Integer(n) => eat(&n.to_le_bytes()),
                        v => eat(v.as_str().unwrap().as_bytes()),
                    }
                    eat(b"\x1f");
                }
                eat(b"\x1e");
            }
        }
        h
    }

    /// The content of a small register is pinned: a change of the draw order or of a
    /// table's rows shows here (update the number only for an intended change of content).
    #[test]
    fn content_of_a_seed_is_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("r.sqlite");
        let opts = GenerateOptions {
            vehicles: 600,
            seed: 1,
        };
        let s = generate(&db, &opts, &mut |_| {}).unwrap();
        let conn = Connection::open(&db).unwrap();
        assert_eq!((s.vehicles, s.ownerships), (600, 1233));
        assert_eq!(fingerprint(&conn), 15_520_750_627_673_456_384);
    }
}
