//! The generator's PostgreSQL writer: each batch as COPY text for `vehicle` and
//! `ownership`, ownership ids numbered as SQLite numbers them (1, 2, ... in insert order).

use super::batch::{Batch, Range, OWNER_COLS};
use crate::core::catalog::{column_of, TECHNICAL};
use crate::pgconn::copy_text::push_field;
use crate::pgconn::Worker;
use crate::register::pg::{copy_in_background, Pending};
use crate::register::RegisterError;
use std::sync::mpsc::Receiver;

/// Loads every batch of `rx`; returns the numbers of vehicles and ownership rows written.
pub(super) fn write_batches(
    w: &Worker,
    rx: Receiver<Batch>,
    progress: &mut dyn FnMut(u64),
) -> Result<(u64, u64), RegisterError> {
    let cols: Vec<String> = TECHNICAL.iter().map(|f| column_of(f.0)).collect();
    let vsql = format!("COPY vehicle (id, {}) FROM STDIN", cols.join(", "));
    // OWNER_COLS ends with `id`, which SQLite numbers itself; here it is written.
    let osql = format!(
        "COPY ownership (vehicle_id, role, {}) FROM STDIN",
        OWNER_COLS.join(", ")
    );
    let (mut vehicles, mut owners) = (0u64, 0u64);
    let mut pending: Option<Pending> = None;
    let mut num = String::new();
    for b in rx.iter() {
        let mut vbuf = Vec::with_capacity(b.text.len() + b.vehicles.len() * 200);
        for (i, v) in b.vehicles.iter().enumerate() {
            num.clear();
            num.push_str(&b.ids[i].to_string());
            vbuf.extend_from_slice(num.as_bytes());
            fields(&mut vbuf, &b, v);
            vbuf.push(b'\n');
        }
        let mut obuf = Vec::with_capacity(b.owners.len() * 160);
        for o in &b.owners {
            owners += 1;
            obuf.extend_from_slice(o.vehicle.to_string().as_bytes());
            obuf.push(b'\t');
            obuf.extend_from_slice(o.role.as_str().as_bytes());
            fields(&mut obuf, &b, &o.fields[..OWNER_COLS.len() - 1]);
            obuf.push(b'\t');
            obuf.extend_from_slice(owners.to_string().as_bytes());
            obuf.push(b'\n');
        }
        if let Some(p) = pending.take() {
            p.wait()?;
        }
        pending = Some(copy_in_background(
            w,
            vec![(vsql.clone(), vbuf), (osql.clone(), obuf)],
        )?);
        vehicles += b.vehicles.len() as u64;
        progress(vehicles);
    }
    if let Some(p) = pending.take() {
        p.wait()?;
    }
    Ok((vehicles, owners))
}

/// `\t` and each field of `b` (an empty range is NULL).
fn fields(out: &mut Vec<u8>, b: &Batch, fields: &[Range]) {
    for &r in fields {
        out.push(b'\t');
        push_field(out, (r.0 != r.1).then(|| b.get(r)));
    }
}
