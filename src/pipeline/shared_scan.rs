//! Shared scans (docs/design.md §4, "Shared scans"): the artifacts of several runs whose
//! plans read the same rows ([`crate::core::scan::ScanKey`]) from one read of the
//! register — one read transaction, one count, one pass over the rows — formatted once
//! per output form ([`crate::core::scan::FormKey`]) and teed into one sealer per run (its
//! own age recipients, its own SHA-256 sums, its own spool file). The plaintext of each
//! member is byte for byte what [`super::artifact::generate_and_seal`] writes for it alone.
//!
//! Memory is bounded whatever the size: a form's bytes travel as shared chunks of
//! [`CHUNK`] bytes, at most [`DEPTH`] queued per member, so a form holds at most about
//! `(DEPTH + 2) * CHUNK` of plaintext however many members it has; a slow member's disk
//! holds the scan up once its queue is full. A member whose sealer fails (its spool file
//! cannot be made or written) drops out with its own error and the others go on; a value a
//! form cannot write (a character without an ISO-8859-1 form) fails that form's members,
//! as it would fail each alone; an error of the register fails the whole group.

use crate::core::config::location::DbLocation;
use crate::core::plan::RunPlan;
use crate::core::scan::{self, ScanKey};
use crate::extract::writers::{self, RowWriter};
use crate::extract::{self, ExtractError, Register, Snapshot};
use crate::pipeline::artifact::{Artifact, Follow, JobError};
use crate::seal::{Key, SealError, SealWriter, Sealed};
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Bytes per chunk of a form's stream.
pub const CHUNK: usize = 256 * 1024;
/// Chunks queued per member.
pub const DEPTH: usize = 16;

/// One run of a shared scan: its plan and where its artifact goes (`spool/artifact_name`),
/// and who follows the spool file while it is sealed (upload while sealing): the sealer
/// only tells the follower how far the file has grown, it never waits for it.
pub struct Member<'a> {
    pub plan: &'a RunPlan,
    pub spool: &'a Path,
    pub artifact_name: String,
    pub follow: Option<Follow>,
}

/// What a shared scan did: the rows it read, and each member's artifact or error, in the
/// order of the members.
pub struct Scanned {
    pub rows: u64,
    pub results: Vec<Result<Artifact, JobError>>,
}

enum Msg {
    Data(Arc<Vec<u8>>),
    Done,
}

/// A member's sealer on its own thread.
struct Sealer {
    tx: Option<SyncSender<Msg>>,
    handle: JoinHandle<Result<Sealed, SealError>>,
}

fn spawn_sealer(mut w: SealWriter, path: std::path::PathBuf) -> Sealer {
    let (tx, rx): (SyncSender<Msg>, Receiver<Msg>) = sync_channel(DEPTH);
    let handle = std::thread::Builder::new()
        .name("regdrop-seal".into())
        .spawn(move || {
            for msg in rx {
                match msg {
                    Msg::Data(chunk) => {
                        // Dropping the receiver (returning) tells the form this member left.
                        w.write_all(&chunk).map_err(|source| SealError::Write {
                            path: path.clone(),
                            source,
                        })?;
                    }
                    Msg::Done => return w.finish(),
                }
            }
            // The form stopped without finishing: abandon (Drop removes the file).
            Err(SealError::Write {
                path,
                source: io::Error::other(ABANDONED),
            })
        })
        .expect("spawn a sealing thread");
    Sealer {
        tx: Some(tx),
        handle,
    }
}

const ABANDONED: &str = "shared scan abandoned";

fn abandoned(e: &SealError) -> bool {
    matches!(e, SealError::Write { source, .. } if source.to_string() == ABANDONED)
}

/// A form's bytes teed to its members' sealers: gathered into chunks, each chunk shared by
/// every member that is still there. Fails only when no member is left.
struct Tee {
    /// Indexes into the scan's sealers, with their senders while they take data.
    outs: Vec<(usize, Option<SyncSender<Msg>>)>,
    buf: Vec<u8>,
    /// The form's plaintext SHA-256, taken once for all its members.
    hasher: Sha256,
    /// Sent chunks, reclaimed once every member has written them (no allocation per chunk).
    sent: std::collections::VecDeque<Arc<Vec<u8>>>,
}

impl Tee {
    fn live(&self) -> bool {
        self.outs.iter().any(|(_, tx)| tx.is_some())
    }

    fn fresh(&mut self) -> Vec<u8> {
        if let Some(front) = self.sent.front() {
            if Arc::strong_count(front) == 1 {
                let a = self.sent.pop_front().expect("front");
                if let Ok(mut v) = Arc::try_unwrap(a) {
                    v.clear();
                    return v;
                }
            }
        }
        Vec::with_capacity(CHUNK)
    }

    fn send(&mut self, msg: impl Fn() -> Msg) {
        for (_, tx) in self.outs.iter_mut() {
            if let Some(t) = tx {
                if t.send(msg()).is_err() {
                    // Its sealer stopped on an error: it is reported when joined.
                    *tx = None;
                }
            }
        }
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self.fresh();
        self.hasher.update(&self.buf);
        let chunk = Arc::new(std::mem::replace(&mut self.buf, next));
        self.send(|| Msg::Data(chunk.clone()));
        if self.sent.len() > DEPTH + 2 {
            self.sent.pop_front();
        }
        self.sent.push_back(chunk);
        if self.live() {
            Ok(())
        } else {
            Err(io::Error::other(NO_MEMBER))
        }
    }

    /// Sends the rest and tells each member the stream is complete.
    fn finish(&mut self) {
        let _ = self.flush_chunk();
        self.send(|| Msg::Done);
        for (_, tx) in self.outs.iter_mut() {
            *tx = None;
        }
    }
}

const NO_MEMBER: &str = "no member of this form is left";

impl Write for &mut Tee {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.live() {
            return Err(io::Error::other(NO_MEMBER));
        }
        if !self.buf.is_empty() && self.buf.len() + data.len() > CHUNK {
            self.flush_chunk()?;
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One output form: its writer over its tee, or the error that stopped it.
struct Form<'t> {
    members: Vec<usize>,
    writer: Option<Box<dyn RowWriter + 't>>,
    failed: Option<ExtractError>,
}

/// The same error again, for each member of a form it stopped (the writer's errors are
/// values, I/O or the workbook; never SQL).
fn again(e: &ExtractError) -> ExtractError {
    match e {
        ExtractError::Value {
            row,
            field,
            problem,
        } => ExtractError::Value {
            row: *row,
            field: field.clone(),
            problem: problem.clone(),
        },
        ExtractError::Io(io) => ExtractError::Io(io::Error::new(io.kind(), io.to_string())),
        other => ExtractError::Xlsx(other.to_string()),
    }
}

/// What a member's artifact is sealed to (e-mail passphrases never share a scan).
fn key_of(plan: &RunPlan) -> Key<'_> {
    if plan.encryption.encrypt {
        Key::Recipients(&plan.encryption.recipients)
    } else {
        Key::Plain
    }
}

/// Seals the artifacts of `members` from one scan of `register`.
///
/// # Panics
/// When the members do not share one [`ScanKey`] or one of them may not share a scan
/// ([`scan::solo_reason`]): the caller groups them with [`scan::groups`].
pub fn seal_shared(
    register: &DbLocation,
    members: &mut [Member<'_>],
    progress: &mut dyn FnMut(u64, u64),
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<Scanned, JobError> {
    let lead = members.first().expect("a group has members").plan;
    let key = ScanKey::of(lead);
    for m in members.iter() {
        assert!(
            ScanKey::of(m.plan) == key && scan::solo_reason(m.plan).is_none(),
            "shared scan of runs that do not share a query"
        );
    }
    let source = Register::open(register).map_err(|source| JobError::Register {
        location: register.to_string(),
        source,
    })?;
    // Count and stream in one snapshot: every member sees the same register state.
    let snap = source.snapshot()?;
    let (total, _, _) = extract::plan(&snap, &lead.extract, lead.period.as_ref(), u64::MAX)?;

    // Each member's sealer, or the error that kept it from starting.
    let mut results: Vec<Option<Result<Artifact, JobError>>> =
        (0..members.len()).map(|_| None).collect();
    let mut sealers: Vec<Option<Sealer>> = (0..members.len()).map(|_| None).collect();
    for (i, m) in members.iter_mut().enumerate() {
        let started = crate::seal::ensure_spool(m.spool)
            .and_then(|_| SealWriter::create_unhashed(m.spool, &m.artifact_name, key_of(m.plan)))
            .and_then(|mut w| {
                if let Some(f) = m.follow.take() {
                    (f.opened)(w.follow(f.written)?);
                }
                Ok(w)
            });
        match started {
            Ok(w) => sealers[i] = Some(spawn_sealer(w, m.spool.join(&m.artifact_name))),
            Err(e) => results[i] = Some(Err(JobError::Seal(e))),
        }
    }
    let plans: Vec<&RunPlan> = members.iter().map(|m| m.plan).collect();
    let mut tees: Vec<Tee> = scan::forms(&plans)
        .into_iter()
        .map(|(_, idx)| Tee {
            outs: idx
                .iter()
                .map(|&i| (i, sealers[i].as_mut().and_then(|s| s.tx.take())))
                .collect(),
            buf: Vec::with_capacity(CHUNK),
            hasher: Sha256::new(),
            sent: Default::default(),
        })
        .collect();
    let q = extract::query::build(&lead.extract, lead.period.as_ref(), snap.dialect());
    let columns = &lead.extract.columns;
    let (scanned, stopped, failed) = scan_forms(
        &snap,
        &q,
        columns,
        &plans,
        &mut tees,
        &mut results,
        total,
        progress,
        cancelled,
    );
    // The read ends before any member's file is final: a failed COMMIT leaves every member
    // without its Done, which removes its file.
    let ended = match scanned {
        Ok(_) => snap.end(),
        Err(_) => Ok(()),
    };
    // A member gets its Done only when the whole scan went through and its form did.
    let mut plain_sums: Vec<String> = vec![String::new(); members.len()];
    for (tee, failed) in tees.iter_mut().zip(failed) {
        if scanned.is_ok() && ended.is_ok() && !stopped && !failed {
            tee.finish();
            let sum = hex::encode(std::mem::take(&mut tee.hasher).finalize());
            for (i, _) in &tee.outs {
                plain_sums[*i] = sum.clone();
            }
        } else {
            for (_, tx) in tee.outs.iter_mut() {
                *tx = None;
            }
        }
    }
    let sealed: Vec<Option<Result<Sealed, SealError>>> = sealers
        .into_iter()
        .map(|s| {
            s.map(|s| {
                drop(s.tx);
                s.handle.join().unwrap_or_else(|_| {
                    Err(SealError::Write {
                        path: "(sealing thread)".into(),
                        source: io::Error::other("the sealing thread panicked"),
                    })
                })
            })
        })
        .collect();
    let rows = scanned.map_err(JobError::Extract)?;
    ended?;
    progress(rows, total);
    let results = results
        .into_iter()
        .zip(sealed)
        .zip(members.iter().zip(plain_sums))
        .map(|((r, s), (m, sum))| match (r, s) {
            (Some(r), _) => r,
            (None, Some(Ok(sealed))) => Ok(artifact_of(
                m.plan,
                Sealed {
                    plaintext_sha256: sum,
                    ..sealed
                },
                rows,
            )),
            (None, Some(Err(e))) if !abandoned(&e) => Err(JobError::Seal(e)),
            // Not sealed because the scan stopped (shutdown) or every form did.
            (None, _) => Err(JobError::Extract(ExtractError::Io(io::Error::new(
                io::ErrorKind::Interrupted,
                if cancelled() {
                    "stopped by shutdown"
                } else {
                    ABANDONED
                },
            )))),
        })
        .collect();
    Ok(Scanned { rows, results })
}

/// One pass over the rows into every form's writer. Returns the rows read (or the
/// register's error), whether the pass stopped early (shutdown, or no member left), and
/// per form whether it failed (its members' results are set to its error).
#[allow(clippy::too_many_arguments)]
fn scan_forms(
    snap: &Snapshot<'_>,
    q: &extract::query::Query,
    columns: &[crate::core::catalog::Field],
    plans: &[&RunPlan],
    tees: &mut [Tee],
    results: &mut [Option<Result<Artifact, JobError>>],
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
    cancelled: &(dyn Fn() -> bool + Sync),
) -> (Result<u64, ExtractError>, bool, Vec<bool>) {
    let mut forms: Vec<Form<'_>> = tees
        .iter_mut()
        .map(|tee| {
            let members: Vec<usize> = tee.outs.iter().map(|(i, _)| *i).collect();
            let spec = &plans[members[0]].extract;
            let mut writer = writers::text(spec.format, tee, spec.encoding, spec.line_ending);
            let (writer, failed) = match writer.header(columns) {
                Ok(()) => (Some(writer), None),
                Err(e) => (None, Some(e)),
            };
            Form {
                members,
                writer,
                failed,
            }
        })
        .collect();
    let mut stopped = false;
    let rows = extract::stream_rows(
        snap,
        q,
        columns,
        |row, values| {
            if row.is_multiple_of(4096) && cancelled() {
                stopped = true;
                return Err(ExtractError::Io(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "stopped by shutdown",
                )));
            }
            let mut any = false;
            for f in forms.iter_mut() {
                let Some(w) = f.writer.as_mut() else { continue };
                match w.row(row, values) {
                    Ok(()) => any = true,
                    Err(e) => {
                        f.writer = None;
                        if !matches!(&e, ExtractError::Io(io) if io.to_string() == NO_MEMBER) {
                            f.failed = Some(e);
                        }
                    }
                }
            }
            if any {
                Ok(())
            } else {
                stopped = true;
                Err(ExtractError::Io(io::Error::other(NO_MEMBER)))
            }
        },
        total,
        progress,
    );
    let scanned = match rows {
        Ok(n) => Ok(n),
        // Every form stopped (each member has its own error) or shutdown: no group error.
        Err(_) if stopped => Ok(0),
        Err(e) => Err(e),
    };
    let mut failed = Vec::with_capacity(forms.len());
    for f in forms.iter_mut() {
        if let (Some(w), Ok(_)) = (f.writer.take(), &scanned) {
            if let Err(e) = w.finish() {
                if !matches!(&e, ExtractError::Io(io) if io.to_string() == NO_MEMBER) {
                    f.failed = Some(e);
                }
            }
        }
        if let Some(e) = &f.failed {
            for &i in &f.members {
                if results[i].is_none() {
                    results[i] = Some(Err(JobError::Extract(again(e))));
                }
            }
        }
        failed.push(f.failed.is_some());
    }
    (scanned, stopped, failed)
}

/// A member's artifact from its sealed file and the scan's rows.
fn artifact_of(plan: &RunPlan, sealed: Sealed, rows: u64) -> Artifact {
    Artifact {
        sealed,
        rows,
        format: plan.extract.format,
        fallback_note: None,
        period: plan.period,
        columns: plan
            .extract
            .columns
            .iter()
            .map(|f| f.name.clone())
            .collect(),
        file_name: plan.files(plan.extract.format).main.clone(),
        extras: Vec::new(),
    }
}
