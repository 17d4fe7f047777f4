//! Sealing: rows stream through age encryption into a spool file (0600 in a 0700 folder),
//! with SHA-256 and byte counts of both plaintext and ciphertext taken on the way. The
//! plaintext never touches disk. Encrypted to age recipients, or (e-mail deliveries to
//! customers without an age key) to a passphrase made per delivery ([`new_passphrase`],
//! age scrypt, work factor 2^18 as the age CLI uses).

use crate::core::config::Recipient;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("no recipients: an encrypted artifact needs at least one")]
    NoRecipients,
    #[error("spool folder {path} (check that it exists, is on real disk and writable by regdrop)")]
    Spool { path: PathBuf, source: io::Error },
    #[error("writing the sealed artifact {path} (check that the spool folder's disk has room, with `df`, and is writable)")]
    Write { path: PathBuf, source: io::Error },
}

impl crate::core::retry::Classify for SealError {
    fn class(&self) -> crate::core::retry::ErrorClass {
        match self {
            // A full or failing disk may recover; a plan without recipients will not.
            SealError::Spool { .. } | SealError::Write { .. } => {
                crate::core::retry::ErrorClass::Retryable
            }
            SealError::NoRecipients => crate::core::retry::ErrorClass::Permanent,
        }
    }
}

/// A `Write` that counts bytes and hashes them on their way to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    /// `None`: only counts (someone else hashes the same bytes).
    hasher: Option<Sha256>,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Some(Sha256::new()),
            bytes: 0,
        }
    }

    /// Counts without hashing; [`HashingWriter::finish`] gives an empty SHA-256.
    fn counting(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: None,
            bytes: 0,
        }
    }
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Returns the inner writer, the hex SHA-256 and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        let sum = self
            .hasher
            .map(|h| hex::encode(h.finalize()))
            .unwrap_or_default();
        (self.inner, sum, self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What a sealed artifact is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub path: PathBuf,
    pub plaintext_sha256: String,
    pub plaintext_bytes: u64,
    pub ciphertext_sha256: String,
    pub ciphertext_bytes: u64,
    pub encrypted: bool,
}

type Cipher = HashingWriter<BufWriter<Tap>>;

/// Told how many ciphertext bytes have reached the spool file so far (upload while
/// sealing: a reader follows the file as it grows). Called on the sealing thread, with the
/// total, each time the file has grown by about 1 MiB and once more at the end.
pub type OnWritten = Box<dyn FnMut(u64) + Send>;

/// The spool file under the sealing buffer: counts what reached the file and tells
/// [`SealWriter::follow`]'s hook.
struct Tap {
    file: File,
    written: u64,
    /// What the hook was last told.
    told: u64,
    /// Shared with the [`SealWriter`], which sets it after the encryptor wrapped the file.
    hook: Arc<Mutex<Option<OnWritten>>>,
}

/// How far the file grows between two calls of the hook.
const TELL_EVERY: u64 = 1 << 20;

/// The sealing buffer in front of the spool file. Smaller than age's encrypted chunk
/// (64 KiB + 16), so each chunk goes from age's buffer to the file without a copy through
/// this one (`BufWriter` passes writes of its capacity or more straight through); only
/// age's header and the last short chunk are gathered here.
const SEAL_BUFFER: usize = 64 << 10;

impl Tap {
    fn tell(&mut self) {
        self.told = self.written;
        if let Some(h) = self.hook.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            h(self.written);
        }
    }
}

impl Write for Tap {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        // age's chunks reach the file one by one (64 KiB): the follower hears of them about
        // once per MiB, and of the rest at the end ([`Tap::tell`] in `finish`).
        if self.written - self.told >= TELL_EVERY {
            self.tell();
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

enum Stage {
    Age(age::stream::StreamWriter<Cipher>),
    Plain(Cipher),
}

/// The writer rows go into. Call [`SealWriter::finish`]; dropping it leaves no artifact.
pub struct SealWriter {
    plain: Option<HashingWriter<Stage>>,
    tmp: PathBuf,
    path: PathBuf,
    hook: Arc<Mutex<Option<OnWritten>>>,
}

impl Write for Stage {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stage::Age(w) => w.write(buf),
            Stage::Plain(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stage::Age(w) => w.flush(),
            Stage::Plain(w) => w.flush(),
        }
    }
}

/// What an artifact is sealed to.
#[derive(Clone, Copy)]
pub enum Key<'a> {
    /// age recipients (X25519, ssh-ed25519, ssh-rsa), parsed at validation.
    Recipients(&'a [Recipient]),
    /// An age scrypt passphrase.
    Passphrase(&'a age::secrecy::SecretString),
    /// Not encrypted (open data).
    Plain,
}

/// scrypt work factor (log2 N) of passphrase-sealed files: the age CLI's own choice, about
/// a second to open on a laptop, and below every implementation's limit.
pub const SCRYPT_LOG_N: u8 = 18;

/// The alphabet of generated passphrases: digits and lowercase letters without `i l o u`
/// (Crockford's base32), so nothing is mistaken for another character on a phone.
const PASS_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new random passphrase: 26 characters of a 32-letter alphabet from the OS's random
/// source (130 bits), in groups of five or six joined by `-`
/// (`k7m2x-9qpfa-3v0td-hh8rn-c4wyze`). Never logged; held only until it is sealed with and
/// sent.
pub fn new_passphrase() -> age::secrecy::SecretString {
    use rand::RngCore;
    let mut bytes = [0u8; 26];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut s = String::with_capacity(30);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 5 == 0 && i < 25 {
            s.push('-');
        }
        // 256 is a multiple of 32: every letter equally likely.
        s.push(PASS_ALPHABET[(*b & 31) as usize] as char);
    }
    bytes.fill(0);
    age::secrecy::SecretString::from(s)
}

/// Makes the spool folder (0700) if needed.
pub fn ensure_spool(dir: &Path) -> Result<(), SealError> {
    let err = |source| SealError::Spool {
        path: dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(err)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
    Ok(())
}

impl SealWriter {
    /// Starts an artifact named `name` in `spool` (0700); encrypted to `recipients` (parsed
    /// at validation) unless `encrypt` is false. The file is written under a hidden temporary name and
    /// renamed when finished.
    pub fn create(
        spool: &Path,
        name: &str,
        recipients: &[Recipient],
        encrypt: bool,
    ) -> Result<SealWriter, SealError> {
        let key = if encrypt {
            Key::Recipients(recipients)
        } else {
            Key::Plain
        };
        SealWriter::create_with(spool, name, key)
    }

    /// Starts an artifact named `name` in `spool`, sealed to `key`.
    pub fn create_with(spool: &Path, name: &str, key: Key<'_>) -> Result<SealWriter, SealError> {
        let mut w = SealWriter::create_unhashed(spool, name, key)?;
        if let Some(p) = w.plain.as_mut() {
            p.hasher = Some(Sha256::new());
        }
        Ok(w)
    }

    /// [`SealWriter::create_with`] for a plaintext someone else hashes (a shared scan
    /// hashes each form once for all its sealers): [`SealWriter::finish`] gives an empty
    /// `plaintext_sha256` for the caller to fill in.
    pub fn create_unhashed(
        spool: &Path,
        name: &str,
        key: Key<'_>,
    ) -> Result<SealWriter, SealError> {
        ensure_spool(spool)?;
        let path = spool.join(name);
        let tmp = spool.join(format!(".{name}.tmp"));
        let werr = |source| SealError::Write {
            path: tmp.clone(),
            source,
        };
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(werr)?;
        let hook = Arc::new(Mutex::new(None));
        let tap = Tap {
            file,
            written: 0,
            told: 0,
            hook: hook.clone(),
        };
        let cipher = HashingWriter::new(BufWriter::with_capacity(SEAL_BUFFER, tap));
        let stage = match key {
            Key::Recipients(recipients) => {
                if recipients.is_empty() {
                    return Err(SealError::NoRecipients);
                }
                let enc = age::Encryptor::with_recipients(recipients.iter().map(Recipient::age))
                    .map_err(|_| SealError::NoRecipients)?;
                Stage::Age(enc.wrap_output(cipher).map_err(werr)?)
            }
            Key::Passphrase(pass) => {
                let mut r = age::scrypt::Recipient::new(pass.clone());
                r.set_work_factor(SCRYPT_LOG_N);
                let enc =
                    age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
                        .map_err(|_| SealError::NoRecipients)?;
                Stage::Age(enc.wrap_output(cipher).map_err(werr)?)
            }
            Key::Plain => Stage::Plain(cipher),
        };
        Ok(SealWriter {
            plain: Some(HashingWriter::counting(stage)),
            tmp,
            path,
            hook,
        })
    }

    /// Upload while sealing: a reader of the file being written (its own descriptor, so
    /// the rename at [`SealWriter::finish`] does not disturb it), and `on_written` told
    /// after every write how many ciphertext bytes the file holds. The bytes up to that
    /// count are readable at once (page cache); they are on disk only after `finish`.
    pub fn follow(&mut self, on_written: OnWritten) -> Result<File, SealError> {
        let reader = File::open(&self.tmp).map_err(|source| SealError::Write {
            path: self.tmp.clone(),
            source,
        })?;
        *self.hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(on_written);
        Ok(reader)
    }

    /// Plaintext bytes written so far.
    pub fn plaintext_bytes(&self) -> u64 {
        self.plain.as_ref().map_or(0, |p| p.bytes())
    }

    /// Finishes encryption, syncs the file to disk and renames it into place.
    pub fn finish(mut self) -> Result<Sealed, SealError> {
        let plain = self.plain.take().expect("finish once");
        let (tmp, path) = (self.tmp.clone(), self.path.clone());
        let werr = |source| SealError::Write {
            path: tmp.clone(),
            source,
        };
        let (stage, plaintext_sha256, plaintext_bytes) = plain.finish();
        let (cipher, encrypted) = match stage {
            Stage::Age(w) => (w.finish().map_err(werr)?, true),
            Stage::Plain(w) => (w, false),
        };
        let (buf, ciphertext_sha256, ciphertext_bytes) = cipher.finish();
        let mut tap = buf.into_inner().map_err(|e| werr(e.into_error()))?;
        if tap.written > tap.told {
            tap.tell();
        }
        let Tap { file, .. } = tap;
        file.sync_all().map_err(werr)?;
        drop(file);
        fs::rename(&tmp, &path).map_err(werr)?;
        if let Some(dir) = path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(werr)?;
        }
        Ok(Sealed {
            path,
            plaintext_sha256,
            plaintext_bytes,
            ciphertext_sha256,
            ciphertext_bytes,
            encrypted,
        })
    }
}

impl Drop for SealWriter {
    fn drop(&mut self) {
        // After a successful finish the temporary name no longer exists; on abandon this
        // removes the partial ciphertext so nothing half-written stays in the spool.
        let _ = fs::remove_file(&self.tmp);
    }
}

impl Write for SealWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.plain.as_mut().expect("not finished").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.plain.as_mut().expect("not finished").flush()
    }
}

enum Msg {
    Data(Vec<u8>),
    Done,
}

/// A [`SealWriter`] on its own thread: the caller's thread produces rows while this one
/// hashes, encrypts and writes, so a large extract uses both cores. Bytes travel in 1 MiB
/// chunks through a bounded channel (at most 4 in flight, so memory stays flat). Dropping
/// it without [`Piped::finish`] abandons the artifact (nothing is left in the spool).
pub struct Piped {
    tx: Option<std::sync::mpsc::SyncSender<Msg>>,
    /// Chunks the sealing thread has emptied, to be filled again.
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    handle: Option<std::thread::JoinHandle<Result<Sealed, SealError>>>,
}

const CHUNK: usize = 1 << 20;
/// Chunks queued for the sealing thread.
const IN_FLIGHT: usize = 4;

impl Piped {
    pub fn new(mut w: SealWriter) -> Piped {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(IN_FLIGHT);
        // Emptied chunks go back to the producer to be filled again: a fresh 1 MiB
        // allocation per chunk cost a page fault per 4 KiB (docs/performance.md).
        let (back, spare) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
        let handle = std::thread::Builder::new()
            .name("regdrop-seal".into())
            .spawn(move || {
                let path = w.tmp.clone();
                for msg in rx {
                    match msg {
                        Msg::Data(mut chunk) => {
                            w.write_all(&chunk).map_err(|source| SealError::Write {
                                path: path.clone(),
                                source,
                            })?;
                            chunk.clear();
                            let _ = back.try_send(chunk);
                        }
                        Msg::Done => return w.finish(),
                    }
                }
                // The producer went away without finishing: abandon (Drop removes the file).
                Err(SealError::Write {
                    path,
                    source: io::Error::other("extract abandoned"),
                })
            })
            .expect("spawn the sealing thread");
        Piped {
            tx: Some(tx),
            spare,
            buf: Vec::with_capacity(CHUNK),
            handle: Some(handle),
        }
    }

    fn send(&mut self, msg: Msg) -> io::Result<()> {
        let tx = self.tx.as_ref().expect("not finished");
        if tx.send(msg).is_err() {
            // The sealing thread stopped on an error: report it in finish(); here say why
            // the write failed.
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the sealing thread stopped",
            ));
        }
        Ok(())
    }

    /// Sends what is left, waits for the sealing thread and returns the artifact. A sealing
    /// error (full disk, ...) wins over the write error it caused upstream.
    pub fn finish(mut self) -> Result<Sealed, SealError> {
        let rest = std::mem::take(&mut self.buf);
        let sent = (if rest.is_empty() {
            Ok(())
        } else {
            self.send(Msg::Data(rest))
        })
        .and_then(|_| self.send(Msg::Done));
        self.tx = None;
        let result = self
            .handle
            .take()
            .expect("finish once")
            .join()
            .unwrap_or_else(|_| {
                Err(SealError::Write {
                    path: PathBuf::from("(sealing thread)"),
                    source: io::Error::other("the sealing thread panicked"),
                })
            });
        match (result, sent) {
            (Ok(s), Ok(())) => Ok(s),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(SealError::Write {
                path: PathBuf::from("(sealing thread)"),
                source: e,
            }),
        }
    }

    /// The sealing thread's error, if it stopped on one (to report instead of the broken
    /// pipe it caused upstream).
    pub fn abandon(mut self) -> Option<SealError> {
        self.tx = None;
        self.handle.take().and_then(|h| h.join().ok()).and_then(|r| r.err()).filter(|e| {
            !matches!(e, SealError::Write { source, .. } if source.to_string() == "extract abandoned")
        })
    }
}

impl Write for Piped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // A chunk is filled to its allocation and sent: never grown (a realloc to twice the
        // size and a copy otherwise), also by a write larger than a chunk (a parallel
        // read's block of 4 MiB: chunks grown to that, IN_FLIGHT of them queued, held 60
        // MiB more).
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            let next = self
                .spare
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
            let chunk = std::mem::replace(&mut self.buf, next);
            self.send(Msg::Data(chunk))?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        // Closing the channel without `Done` makes the thread abandon the artifact.
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// SHA-256 (hex) and size of a file, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut h = HashingWriter::new(io::sink());
    io::copy(&mut f, &mut h)?;
    let (_, sum, n) = h.finish();
    Ok((sum, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn passphrases_are_random_readable_and_open_their_file() {
        use age::secrecy::ExposeSecret;
        let a = new_passphrase();
        let b = new_passphrase();
        assert_ne!(a.expose_secret(), b.expose_secret());
        let text = a.expose_secret();
        assert_eq!(text.len(), 30, "{text}");
        assert_eq!(
            text.split('-').map(str::len).collect::<Vec<_>>(),
            [5, 5, 5, 5, 6]
        );
        assert!(
            text.bytes()
                .all(|c| c == b'-' || PASS_ALPHABET.contains(&c)),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut w = SealWriter::create_with(dir.path(), "p.age", Key::Passphrase(&a)).unwrap();
        w.write_all(b"hemmelig").unwrap();
        let sealed = w.finish().unwrap();
        let file = fs::read(&sealed.path).unwrap();
        let mut id = age::scrypt::Identity::new(a.clone());
        id.set_max_work_factor(SCRYPT_LOG_N);
        let mut out = String::new();
        age::Decryptor::new(&file[..])
            .unwrap()
            .decrypt(std::iter::once(&id as &dyn age::Identity))
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hemmelig");
        let mut wrong = age::scrypt::Identity::new(b);
        wrong.set_max_work_factor(SCRYPT_LOG_N);
        assert!(age::Decryptor::new(&file[..])
            .unwrap()
            .decrypt(std::iter::once(&wrong as &dyn age::Identity))
            .is_err());
    }

    #[test]
    fn hashes_both_sides_and_decrypts() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let id = age::x25519::Identity::generate();
        let recipient = Recipient::from(id.to_public());
        let mut w = SealWriter::create(&spool, "a.age", &[recipient], true).unwrap();
        w.write_all(b"hello\xc2\xa4world\n").unwrap();
        let s = w.finish().unwrap();
        assert_eq!(s.plaintext_bytes, 13);
        assert_eq!(
            s.plaintext_sha256,
            hex::encode(Sha256::digest(b"hello\xc2\xa4world\n"))
        );
        let (sum, n) = sha256_file(&s.path).unwrap();
        assert_eq!((sum, n), (s.ciphertext_sha256.clone(), s.ciphertext_bytes));
        let mode = fs::metadata(&s.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            fs::metadata(&spool).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let dec = age::Decryptor::new(File::open(&s.path).unwrap()).unwrap();
        let mut r = dec
            .decrypt(std::iter::once(&id as &dyn age::Identity))
            .unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello\xc2\xa4world\n");
        assert!(!spool.join(".a.age.tmp").exists());
    }

    #[test]
    fn piped_equals_direct_and_abandon_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let id = age::x25519::Identity::generate();
        let rec = vec![Recipient::from(id.to_public())];
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        // Writes smaller than a chunk, just larger, and of the whole.
        for piece in [70_001, CHUNK + 7, data.len()] {
            let name = format!("p{piece}.age");
            let mut p = Piped::new(SealWriter::create(dir.path(), &name, &rec, true).unwrap());
            for c in data.chunks(piece) {
                p.write_all(c).unwrap();
            }
            let s = p.finish().unwrap();
            assert_eq!(s.plaintext_sha256, hex::encode(Sha256::digest(&data)));
            assert_eq!(s.plaintext_bytes, data.len() as u64);
            let mut out = Vec::new();
            age::Decryptor::new(File::open(&s.path).unwrap())
                .unwrap()
                .decrypt(std::iter::once(&id as &dyn age::Identity))
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert!(out == data, "writes of {piece} bytes");
            fs::remove_file(&s.path).unwrap();
        }
        let mut p = Piped::new(SealWriter::create(dir.path(), "q.age", &rec, true).unwrap());
        p.write_all(&data).unwrap();
        assert!(p.abandon().is_none());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn a_follower_reads_what_reached_the_file_as_it_grows() {
        let dir = tempfile::tempdir().unwrap();
        let id = age::x25519::Identity::generate();
        let rec = vec![Recipient::from(id.to_public())];
        let mut w = SealWriter::create(dir.path(), "f.age", &rec, true).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let mut reader = w
            .follow(Box::new(move |n| log.lock().unwrap().push(n)))
            .unwrap();
        let data: Vec<u8> = (0..3_500_000u32).map(|i| (i % 241) as u8).collect();
        let mut p = Piped::new(w);
        for c in data.chunks(65_536) {
            p.write_all(c).unwrap();
        }
        let s = p.finish().unwrap();
        let seen = seen.lock().unwrap().clone();
        assert!(seen.len() >= 3, "told about once per MiB: {seen:?}");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert_eq!(*seen.last().unwrap(), s.ciphertext_bytes);
        // The reader opened on the temporary name still reads the renamed file.
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        assert_eq!(got.len() as u64, s.ciphertext_bytes);
        assert_eq!(hex::encode(Sha256::digest(&got)), s.ciphertext_sha256);
    }

    #[test]
    fn abandoned_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let w = SealWriter::create(
            dir.path(),
            "b.age",
            &[age::x25519::Identity::generate().to_public().into()],
            true,
        )
        .unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
