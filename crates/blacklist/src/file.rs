//! The binary file format for snapshots and deltas, and crash-safe saving.
//!
//! All integers are big-endian. A file is a header, one or two *entry sets*, and a CRC-32:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `OCBL` |
//! | 4 | 2 | format version, `1` |
//! | 6 | 1 | kind: `01` snapshot, `02` delta |
//! | 7 | 1 | reserved, `00` |
//! | 8 | 8 | snapshot: list version; delta: from version |
//! | 16 | 8 | delta only: to version |
//! | … | | snapshot: one entry set; delta: additions set, then removals set |
//! | end − 4 | 4 | CRC-32 (IEEE, as zlib) of every byte before it |
//!
//! An entry set is `entry count (4) ‖ group count (4)` and then one group per issuer:
//! `issuer (8) ‖ count (4) ‖ count × serial (10)`. Issuers strictly increase; serials strictly
//! increase within a group in canonical order (BCD serials by value, then non-BCD by bytes; see
//! [`crate::Entry`]); every group has at least one entry and the groups' counts add up to the
//! entry count. Grouping stores an issuer once, so a 10M-entry snapshot is ~100 MB, 10 bytes an
//! entry. A snapshot holds at most [`crate::MAX_ENTRIES`] entries, a delta at most
//! [`crate::MAX_DELTA_ENTRIES`] in its two sets together.
//!
//! Parsing reads forward once, checks every count against the limits before trusting it,
//! allocates only for bytes actually read, and never panics. From a reader it builds the list
//! while reading (no copy of the file in memory) and publishes nothing unless the CRC matches;
//! the first problem found is reported, which for a corrupted file may be a structural one met
//! before the CRC. [`List::decode`] on bytes in memory checks the CRC first.
//!
//! The CRC guards against corruption, not forgery: the download layer must authenticate files
//! (MAC or signature) before they reach this parser.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::entry::{code_serial, serial_code, Entry, Key};
use crate::error::{Error, FormatError};
use crate::list::{Delta, List};
use crate::segment::{Builder, Layout};
use crate::{MAX_DELTA_ENTRIES, MAX_ENTRIES};

/// File magic.
pub const MAGIC: [u8; 4] = *b"OCBL";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
const KIND_SNAPSHOT: u8 = 1;
const KIND_DELTA: u8 = 2;
/// Serials read (and hashed) per chunk: large enough for the CRC's SIMD path, small enough
/// (40 KB) to stay in cache.
const SERIALS_PER_READ: usize = 4096;
const IO_BUFFER: usize = 1 << 16;

impl List {
    /// Writes the snapshot file to `w`.
    pub fn write_to(&self, w: impl Write) -> io::Result<()> {
        let mut sink = Sink::new(w);
        sink.header(KIND_SNAPSHOT)?;
        sink.put(&self.version().to_be_bytes())?;
        sink.set(&self.issuer_groups(), self.keys())?;
        sink.finish()?.flush()
    }

    /// The snapshot file as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(usize::try_from(self.encoded_len()).unwrap_or(0));
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut v);
        v
    }

    /// Size of the snapshot file in bytes.
    pub fn encoded_len(&self) -> u64 {
        16 + 8 + 12 * self.issuer_groups().len() as u64 + 10 * self.len() as u64 + 4
    }

    /// Saves the snapshot to `path` crash-safely: writes a temporary file in the same
    /// directory, fsyncs it, renames it over `path` and fsyncs the directory, so after a crash
    /// `path` holds either the old file or the new one, complete.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        save_atomic(path.as_ref(), |w| Ok(self.write_to(w)?))
    }

    /// Reads a snapshot file from `r`, building the list as it reads.
    pub fn read_from(r: impl Read) -> Result<List, Error> {
        let mut src = Src::new(r);
        src.header(KIND_SNAPSHOT, "snapshot")?;
        let version = src.u64()?;
        let mut b = Builder::new(Layout::DEFAULT);
        read_set(&mut src, MAX_ENTRIES as u64, |k| {
            // read_set checked the order already.
            let _ = b.push(k);
        })?;
        src.finish()?;
        Ok(List::from_builder(version, b, Layout::DEFAULT))
    }

    /// Parses a snapshot file held in memory.
    pub fn decode(bytes: &[u8]) -> Result<List, Error> {
        precheck(bytes)?;
        List::read_from(bytes)
    }

    /// Loads a snapshot file.
    pub fn load(path: impl AsRef<Path>) -> Result<List, Error> {
        let f = File::open(path)?;
        List::read_from(BufReader::with_capacity(IO_BUFFER, f))
    }
}

impl Delta {
    /// Writes the delta file to `w`. Entries are written sorted; refused (nothing written) if
    /// an entry appears twice on one side or the delta exceeds [`MAX_DELTA_ENTRIES`].
    pub fn write_to(&self, w: impl Write) -> Result<(), Error> {
        let total = self.add.len().saturating_add(self.remove.len());
        if total > MAX_DELTA_ENTRIES {
            return Err(Error::DeltaTooLarge {
                entries: total,
                max: MAX_DELTA_ENTRIES,
            });
        }
        let add = sorted_keys(&self.add, "additions")?;
        let remove = sorted_keys(&self.remove, "removals")?;
        let mut sink = Sink::new(w);
        sink.header(KIND_DELTA)?;
        sink.put(&self.from_version.to_be_bytes())?;
        sink.put(&self.to_version.to_be_bytes())?;
        for keys in [&add, &remove] {
            sink.set(&groups_of(keys), keys.iter().copied())?;
        }
        sink.finish()?.flush()?;
        Ok(())
    }

    /// The delta file as bytes (see [`Delta::write_to`] for refusals).
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut v = Vec::new();
        self.write_to(&mut v)?;
        Ok(v)
    }

    /// Saves the delta crash-safely (as [`List::save`]).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        save_atomic(path.as_ref(), |w| self.write_to(w))
    }

    /// Reads a delta file from `r`. Checks the format only; whether the delta fits a list is
    /// checked by [`List::apply`].
    pub fn read_from(r: impl Read) -> Result<Delta, Error> {
        let mut src = Src::new(r);
        src.header(KIND_DELTA, "delta")?;
        let from_version = src.u64()?;
        let to_version = src.u64()?;
        let mut add = Vec::new();
        let n = read_set(&mut src, MAX_DELTA_ENTRIES as u64, |k| {
            add.push(Entry::from_key(k));
        })?;
        let mut remove = Vec::new();
        read_set(&mut src, MAX_DELTA_ENTRIES as u64 - n, |k| {
            remove.push(Entry::from_key(k));
        })?;
        src.finish()?;
        Ok(Delta {
            from_version,
            to_version,
            add,
            remove,
        })
    }

    /// Parses a delta file held in memory.
    pub fn decode(bytes: &[u8]) -> Result<Delta, Error> {
        precheck(bytes)?;
        Delta::read_from(bytes)
    }

    /// Loads a delta file.
    pub fn load(path: impl AsRef<Path>) -> Result<Delta, Error> {
        let f = File::open(path)?;
        Delta::read_from(BufReader::with_capacity(IO_BUFFER, f))
    }
}

/// Keys of `entries` sorted, refusing duplicates.
fn sorted_keys(entries: &[Entry], side: &'static str) -> Result<Vec<Key>, Error> {
    let mut keys: Vec<Key> = entries.iter().map(Entry::key).collect();
    keys.sort_unstable();
    match keys.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(Error::Duplicate {
            entry: Entry::from_key(w[0]),
            side,
        }),
        None => Ok(keys),
    }
}

/// Entry counts per issuer of sorted keys.
fn groups_of(keys: &[Key]) -> Vec<(u64, usize)> {
    keys.chunk_by(|a, b| a.issuer == b.issuer)
        .map(|g| (g[0].issuer, g.len()))
        .collect()
}

/// On bytes in memory, a wrong magic or CRC is reported as such before any structure is read.
fn precheck(bytes: &[u8]) -> Result<(), FormatError> {
    if bytes.len() >= 4 && bytes[..4] != MAGIC {
        return Err(FormatError::BadMagic);
    }
    if bytes.len() >= 16 + 4 {
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(FormatError::BadCrc { stored, computed });
        }
    }
    Ok(())
}

/// Reads one entry set, handing each key to `put` in order; returns the entry count.
fn read_set<R: Read>(src: &mut Src<R>, max: u64, mut put: impl FnMut(Key)) -> Result<u64, Error> {
    let count_at = src.offset;
    let count = u64::from(src.u32()?);
    if count > max {
        return Err(FormatError::TooLarge { count, max }.into());
    }
    let groups_at = src.offset;
    let groups = u64::from(src.u32()?);
    if groups > count || (count > 0 && groups == 0) {
        return Err(FormatError::BadCount { offset: groups_at }.into());
    }
    let mut buf = vec![0u8; 10 * SERIALS_PER_READ.min(count as usize)];
    let mut remaining = count;
    let mut prev_issuer: Option<u64> = None;
    let mut last: Option<Key> = None;
    for _ in 0..groups {
        let at = src.offset;
        let issuer = src.u64()?;
        if prev_issuer.is_some_and(|p| issuer <= p) {
            return Err(FormatError::Unsorted { offset: at }.into());
        }
        prev_issuer = Some(issuer);
        let n_at = src.offset;
        let n = u64::from(src.u32()?);
        if n == 0 || n > remaining {
            return Err(FormatError::BadCount { offset: n_at }.into());
        }
        remaining -= n;
        let mut left = n;
        while left > 0 {
            let take = left.min(SERIALS_PER_READ as u64) as usize;
            let chunk_at = src.offset;
            // take ≤ min(count, SERIALS_PER_READ), the buffer's length in serials.
            let chunk = &mut buf[..10 * take];
            src.fill(chunk)?;
            for (i, s) in chunk.chunks_exact(10).enumerate() {
                let mut serial = [0u8; 10];
                serial.copy_from_slice(s);
                let k = Key {
                    issuer,
                    code: serial_code(&serial),
                };
                if last.is_some_and(|l| k <= l) {
                    let offset = chunk_at + 10 * i as u64;
                    return Err(FormatError::Unsorted { offset }.into());
                }
                last = Some(k);
                put(k);
            }
            left -= take as u64;
        }
    }
    if remaining != 0 {
        return Err(FormatError::BadCount { offset: count_at }.into());
    }
    Ok(count)
}

/// A reader that hashes what it reads and knows its offset.
struct Src<R> {
    r: R,
    crc: crc32fast::Hasher,
    offset: u64,
}

impl<R: Read> Src<R> {
    fn new(r: R) -> Src<R> {
        Src {
            r,
            crc: crc32fast::Hasher::new(),
            offset: 0,
        }
    }

    fn raw(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        self.r.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => FormatError::Truncated {
                offset: self.offset,
            }
            .into(),
            _ => Error::Io(e),
        })
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        self.raw(buf)?;
        self.crc.update(buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Magic, format version, kind, reserved byte.
    fn header(&mut self, kind: u8, name: &'static str) -> Result<(), Error> {
        if self.array::<4>()? != MAGIC {
            return Err(FormatError::BadMagic.into());
        }
        let format = u16::from_be_bytes(self.array()?);
        if format != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion(format).into());
        }
        let [found, reserved] = self.array()?;
        if found != kind {
            return Err(FormatError::WrongKind {
                expected: name,
                found,
            }
            .into());
        }
        if reserved != 0 {
            return Err(FormatError::Reserved(reserved).into());
        }
        Ok(())
    }

    /// The CRC, then end of input.
    fn finish(mut self) -> Result<(), Error> {
        let computed = self.crc.clone().finalize();
        let mut b = [0u8; 4];
        self.raw(&mut b)?;
        let stored = u32::from_be_bytes(b);
        if stored != computed {
            return Err(FormatError::BadCrc { stored, computed }.into());
        }
        let offset = self.offset + 4;
        let mut one = [0u8; 1];
        loop {
            match self.r.read(&mut one) {
                Ok(0) => return Ok(()),
                Ok(_) => return Err(FormatError::TrailingBytes { offset }.into()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A writer that hashes what it writes, in large chunks (the CRC is slow on small slices).
struct Sink<W: Write> {
    w: W,
    crc: crc32fast::Hasher,
    buf: Vec<u8>,
}

impl<W: Write> Sink<W> {
    fn new(w: W) -> Sink<W> {
        Sink {
            w,
            crc: crc32fast::Hasher::new(),
            buf: Vec::with_capacity(IO_BUFFER + 64),
        }
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= IO_BUFFER {
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> io::Result<()> {
        self.crc.update(&self.buf);
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    fn header(&mut self, kind: u8) -> io::Result<()> {
        self.put(&MAGIC)?;
        self.put(&FORMAT_VERSION.to_be_bytes())?;
        self.put(&[kind, 0])
    }

    /// One entry set: `groups` are (issuer, count) and `keys` yields exactly those entries.
    fn set(
        &mut self,
        groups: &[(u64, usize)],
        mut keys: impl Iterator<Item = Key>,
    ) -> io::Result<()> {
        let count: usize = groups.iter().map(|g| g.1).sum();
        self.put(&(count as u32).to_be_bytes())?;
        self.put(&(groups.len() as u32).to_be_bytes())?;
        for &(issuer, n) in groups {
            self.put(&issuer.to_be_bytes())?;
            self.put(&(n as u32).to_be_bytes())?;
            for k in keys.by_ref().take(n) {
                self.put(&code_serial(k.code))?;
            }
        }
        Ok(())
    }

    /// Writes the CRC and hands back the writer.
    fn finish(mut self) -> io::Result<W> {
        self.drain()?;
        let crc = self.crc.clone().finalize();
        self.w.write_all(&crc.to_be_bytes())?;
        Ok(self.w)
    }
}

/// Distinguishes temporary files of concurrent saves within one process.
static SAVES: AtomicU64 = AtomicU64::new(0);

/// Write to a temporary file beside `path`, fsync, rename over `path`, fsync the directory.
fn save_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), Error>,
) -> Result<(), Error> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "save path has no file name"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        SAVES.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| -> Result<(), Error> {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let mut w = BufWriter::with_capacity(IO_BUFFER, f);
        write(&mut w)?;
        let f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)?;
    Ok(())
}

/// Makes the rename durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows cannot open a directory as a file; its rename is durable with the file's flush.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
