//! The `receipts` table: appending a receipt to the hash chain in the transaction that
//! marks its run delivered, reading receipts back, verifying the chain from its anchor and
//! the billing exports.

use super::chain::{self, ChainReport, GENESIS};
use super::db::{params, Db, OptionalExtension, Row, ToValue, Value};
use super::export;
use super::model::{
    fmt_ts, parse_ts, trunc_ts, DeliveredFile, NewReceipt, Receipt, ReceiptFilter, RunId,
    SubscriptionId, Transport,
};
use super::runs::get_run_in;
use super::{to_i64, to_u64, Result, Store, StoreError};

const RECEIPT_COLS: &str = "id, run_id, subscription, customer, customer_org_number, \
    case_number, invoice_reference, report, remote_host, remote_port, host_key_fingerprint, \
    remote_path, bytes, rows, plaintext_sha256, ciphertext_sha256, personal_fields, \
    legal_basis, recipients, attempts, started_at, delivered_at, prev_hash, hash, files, \
    transport";

fn read_receipt(row: &Row) -> Result<Receipt> {
    let port: i64 = row.get(9)?;
    let attempts: i64 = row.get(19)?;
    Ok(Receipt {
        id: row.get(0)?,
        run_id: row.get(1)?,
        subscription: row.get(2)?,
        customer: row.get(3)?,
        customer_org_number: row.get(4)?,
        case_number: row.get(5)?,
        invoice_reference: row.get(6)?,
        report: row.get(7)?,
        remote_host: row.get(8)?,
        remote_port: u16::try_from(port)
            .map_err(|_| StoreError::Corrupt(format!("remote_port {port}")))?,
        host_key_fingerprint: row.get(10)?,
        remote_path: row.get(11)?,
        bytes: to_u64(row.get(12)?, "bytes")?,
        rows: to_u64(row.get(13)?, "rows")?,
        plaintext_sha256: row.get(14)?,
        ciphertext_sha256: row.get(15)?,
        personal_fields: serde_json::from_str(&row.get::<_, String>(16)?)?,
        legal_basis: row.get(17)?,
        recipients: serde_json::from_str(&row.get::<_, String>(18)?)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("attempts {attempts}")))?,
        started_at: parse_ts(&row.get::<_, String>(20)?)?,
        delivered_at: parse_ts(&row.get::<_, String>(21)?)?,
        prev_hash: row.get(22)?,
        hash: row.get(23)?,
        files: match row.get::<_, Option<String>>(24)? {
            Some(json) => serde_json::from_str(&json)?,
            None => Vec::new(),
        },
        transport: match row.get::<_, Option<String>>(25)? {
            Some(json) => Some(serde_json::from_str(&json)?),
            None => None,
        },
    })
}

fn query_receipts(conn: &Db, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Receipt>> {
    conn.query(sql, params)?.iter().map(read_receipt).collect()
}

fn receipt_for_run_in(conn: &Db, run_id: &str) -> Result<Option<Receipt>> {
    Ok(query_receipts(
        conn,
        &format!("SELECT {RECEIPT_COLS} FROM receipts WHERE run_id = ?1"),
        &[&run_id],
    )?
    .into_iter()
    .next())
}

/// The chain anchor: `(hash, id of the last purged receipt)`, or genesis.
fn anchor_in(conn: &Db) -> Result<(String, Option<i64>)> {
    Ok(conn
        .query_row(
            "SELECT hash, receipt_id FROM chain_anchor WHERE id = 1",
            [],
            |r| Ok((r.get::<_, String>(0)?, Some(r.get::<_, i64>(1)?))),
        )
        .optional()?
        .unwrap_or_else(|| (GENESIS.to_string(), None)))
}

pub(super) fn verify_in(conn: &Db) -> Result<ChainReport> {
    let (anchor, anchor_id) = anchor_in(conn)?;
    let rows = conn.query(
        &format!("SELECT {RECEIPT_COLS} FROM receipts ORDER BY id"),
        [],
    )?;
    let mut items = Vec::new();
    for row in &rows {
        let id: i64 = row.get(0)?;
        items.push(read_receipt(row).map_err(|e| (id, crate::core::errors::chain(&e))));
    }
    Ok(chain::verify_sequence(&anchor, anchor_id, items))
}

/// The id and `prev_hash` of the next receipt: after the newest one, or after the anchor.
fn next_link(conn: &Db) -> Result<(i64, String)> {
    let (anchor, anchor_id) = anchor_in(conn)?;
    let last: Option<(i64, String)> = conn
        .query_row(
            "SELECT id, hash FROM receipts ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match last {
        Some((id, hash)) => (id + 1, hash),
        // After a full purge the numbering continues after the last purged receipt.
        None => (anchor_id.unwrap_or(0) + 1, anchor),
    })
}

/// Writes the receipt row as it is (hash included).
fn insert_receipt(conn: &Db, r: &Receipt) -> Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO receipts ({RECEIPT_COLS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
              ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)"
        ),
        params![
            r.id,
            r.run_id,
            r.subscription,
            r.customer,
            r.customer_org_number,
            r.case_number,
            r.invoice_reference,
            r.report,
            r.remote_host,
            r.remote_port,
            r.host_key_fingerprint,
            r.remote_path,
            r.bytes as i64,
            r.rows as i64,
            r.plaintext_sha256,
            r.ciphertext_sha256,
            serde_json::to_string(&r.personal_fields)?,
            r.legal_basis,
            serde_json::to_string(&r.recipients)?,
            r.attempts,
            fmt_ts(r.started_at),
            fmt_ts(r.delivered_at),
            r.prev_hash,
            r.hash,
            if r.files.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&r.files)?)
            },
            match &r.transport {
                Some(t) => Some(serde_json::to_string(t)?),
                None => None,
            },
        ],
    )?;
    Ok(())
}

impl Store {
    /// In one transaction: appends the receipt to the chain and marks the run delivered.
    /// Idempotent: if the run already has a receipt, that receipt is returned and nothing
    /// is written. Refuses a receipt whose file does not match the run's sealed artifact.
    /// The attempt count is taken from the attempts table (at least 1).
    pub fn commit_receipt(&self, new: &NewReceipt) -> Result<Receipt> {
        self.commit_receipt_with_files(new, &[])
    }

    /// [`commit_receipt`](Store::commit_receipt) for a run that delivered further files
    /// (code tables) beside its main file; the receipt records them under `files`, and the
    /// chain hash covers them.
    pub fn commit_receipt_with_files(
        &self,
        new: &NewReceipt,
        files: &[DeliveredFile],
    ) -> Result<Receipt> {
        self.commit_delivery(new, files, None)
    }

    /// [`commit_receipt_with_files`](Store::commit_receipt_with_files) that also records how
    /// the delivery went out (server, commit path); the chain hash covers it (form v3).
    pub fn commit_delivery(
        &self,
        new: &NewReceipt,
        files: &[DeliveredFile],
        transport: Option<&Transport>,
    ) -> Result<Receipt> {
        let tx = self.write_tx()?;
        if let Some(existing) = receipt_for_run_in(&tx, &new.run_id)? {
            if existing.ciphertext_sha256 != new.ciphertext_sha256
                || existing.remote_path != new.remote_path
            {
                tracing::warn!(run = %new.run_id, receipt = existing.id,
                    "A second, different receipt was offered for a delivered run; kept the first.");
            }
            return Ok(existing);
        }
        let run = get_run_in(&tx, &new.run_id)?
            .ok_or_else(|| StoreError::NoSuchRun(new.run_id.clone()))?;
        self.fence_in(&tx, &new.run_id)?;
        let mismatch = |detail: String| StoreError::Mismatch {
            run: run.id.clone(),
            detail,
        };
        if run.subscription != new.subscription {
            return Err(mismatch(format!(
                "receipt is for subscription {}, the run belongs to {}",
                new.subscription, run.subscription
            )));
        }
        if let Some(a) = &run.artifact {
            if a.ciphertext_sha256 != new.ciphertext_sha256 || a.ciphertext_bytes != new.bytes {
                return Err(mismatch(format!(
                    "delivered file ({} bytes, sha256 {}) is not the sealed artifact ({} bytes, sha256 {})",
                    new.bytes, new.ciphertext_sha256, a.ciphertext_bytes, a.ciphertext_sha256
                )));
            }
        }
        let attempts: i64 = tx.query_row(
            "SELECT COUNT(*) FROM attempts WHERE run_id = ?1",
            [&new.run_id],
            |r| r.get(0),
        )?;
        let (id, prev_hash) = next_link(&tx)?;
        to_i64(new.bytes, "bytes")?;
        to_i64(new.rows, "rows")?;
        let mut r = Receipt {
            id,
            run_id: new.run_id.clone(),
            subscription: new.subscription.clone(),
            customer: new.customer.clone(),
            customer_org_number: new.customer_org_number.clone(),
            case_number: new.case_number.clone(),
            invoice_reference: new.invoice_reference.clone(),
            report: new.report.clone(),
            remote_host: new.remote_host.clone(),
            remote_port: new.remote_port,
            host_key_fingerprint: new.host_key_fingerprint.clone(),
            remote_path: new.remote_path.clone(),
            bytes: new.bytes,
            rows: new.rows,
            plaintext_sha256: new.plaintext_sha256.clone(),
            ciphertext_sha256: new.ciphertext_sha256.clone(),
            personal_fields: new.personal_fields.clone(),
            legal_basis: new.legal_basis.clone(),
            recipients: new.recipients.clone(),
            attempts: attempts.max(1) as u32,
            started_at: trunc_ts(new.started_at),
            delivered_at: trunc_ts(new.delivered_at),
            files: files.to_vec(),
            transport: transport.cloned(),
            prev_hash,
            hash: String::new(),
        };
        for f in files {
            to_i64(f.bytes, "bytes")?;
            to_i64(f.rows, "rows")?;
        }
        r.hash = chain::receipt_hash(&r);
        insert_receipt(&tx, &r)?;
        tx.execute(
            "UPDATE runs SET state = 'delivered', state_reason = NULL, updated_at = ?2, \
             delivered_by = ?3 WHERE id = ?1",
            params![r.run_id, self.now(), self.node],
        )?;
        tx.commit()?;
        Ok(r)
    }

    pub fn receipt(&self, id: i64) -> Result<Option<Receipt>> {
        Ok(query_receipts(
            &self.conn,
            &format!("SELECT {RECEIPT_COLS} FROM receipts WHERE id = ?1"),
            &[&id],
        )?
        .into_iter()
        .next())
    }

    /// The receipt of a run, if it was delivered.
    pub fn receipt_for_run(&self, run: &RunId) -> Result<Option<Receipt>> {
        receipt_for_run_in(&self.conn, run)
    }

    /// Receipts matching `filter` (`delivered_at` in `[since, until)`), in chain order.
    pub fn receipts(&self, filter: &ReceiptFilter) -> Result<Vec<Receipt>> {
        let mut sql = format!("SELECT {RECEIPT_COLS} FROM receipts WHERE 1=1");
        let mut args: Vec<Value> = Vec::new();
        if let Some(s) = &filter.subscription {
            args.push(s.to_value());
            sql += &format!(" AND subscription = ?{}", args.len());
        }
        if let Some(t) = filter.since {
            args.push(Value::Text(fmt_ts(t)));
            sql += &format!(" AND delivered_at >= ?{}", args.len());
        }
        if let Some(t) = filter.until {
            args.push(Value::Text(fmt_ts(t)));
            sql += &format!(" AND delivered_at < ?{}", args.len());
        }
        sql += " ORDER BY id";
        self.conn
            .query(&sql, args)?
            .iter()
            .map(read_receipt)
            .collect()
    }

    /// Recomputes every receipt's hash in id order from the anchor (genesis, or the last
    /// purged receipt) and reports the first broken link. `Err` only for database errors.
    pub fn verify_chain(&self) -> Result<ChainReport> {
        // One snapshot: a purge committed by another process between reading the anchor
        // and the receipts would look like a deleted receipt.
        let tx = self.conn.read_tx()?;
        let report = verify_in(&tx)?;
        tx.commit()?;
        Ok(report)
    }

    /// The newest `delivered_at` per subscription (the metrics' last success after a
    /// restart).
    pub fn last_delivery_per_subscription(&self) -> Result<Vec<(SubscriptionId, String)>> {
        self.conn
            .query(
                "SELECT subscription, MAX(delivered_at) FROM receipts GROUP BY subscription \
                 ORDER BY subscription",
                [],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect()
    }

    /// Billing export as CSV (see [`export`] for the columns); returns the line count.
    pub fn export_csv<W: std::io::Write>(&self, w: W, filter: &ReceiptFilter) -> Result<u64> {
        export::write_csv(w, &self.receipts(filter)?)
    }

    /// Billing export as JSON (see [`export`]); returns the object count.
    pub fn export_json<W: std::io::Write>(&self, w: W, filter: &ReceiptFilter) -> Result<u64> {
        export::write_json(w, &self.receipts(filter)?)
    }
}
