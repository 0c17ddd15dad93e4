//! The client's preprocessing store (`veil client --preprocess-dir DIR`): the large offline
//! material of garbled-circuit layers (garbled tables and the client's input labels) goes to
//! files in `DIR` as it arrives, and the online phase reads it back one chunk at a time, so the
//! client's memory holds one layer's chunk instead of every layer's tables.
//!
//! A [`Store`] belongs to one offline phase (one *run*): it draws a random run id and a random
//! MAC key, both kept in memory only. Each stored part of a step is one file,
//! `veil-pre-<step>-<part>.bin`, written under a temporary name (`….tmp`, created exclusively,
//! mode 0600) and renamed when complete. The online phase opens a part once: it is removed from
//! the directory when opened and can never be opened again by this store; the store removes every
//! file it still owns (complete or not) when dropped, so nothing is left after the session, on
//! success or on error. A file whose name already exists is never overwritten (another client's
//! store in the same directory is an error, not a clobber).
//!
//! File format (version [`VERSION`], all integers little-endian):
//! - header, [`HEADER_BYTES`]: magic `VEILPRE\0`, version `u32`, the plan's hash (32 bytes), the
//!   run id (16 bytes), the step `u64` and part `u64`;
//! - records, back to back (their lengths are in the index);
//! - index: per record its length `u64` and its tag (32 bytes), then the index tag (32 bytes),
//!   the record count `u64` and the end magic `VEILEND\0`.
//!
//! Tags are keyed BLAKE3 under the run's key: record `i`'s over `(step, part, i, bytes)`, the
//! index tag over the header and the index. Opening checks the header (magic, version, plan
//! hash, run id, slot), the length and the index tag; reading a record checks its tag. A file
//! from another plan or run, torn, truncated or changed in any byte is refused with one
//! [`StoreError::Refused`] naming the file and the reason.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rand::{CryptoRng, RngCore};
use veil_ir::plan::{Hash, hex};

/// Magic bytes at the start of a store file.
pub const MAGIC: [u8; 8] = *b"VEILPRE\0";
/// Magic bytes at the end of a complete store file.
pub const END: [u8; 8] = *b"VEILEND\0";
/// The store file format version this runtime writes and reads.
pub const VERSION: u32 = 1;
/// Bytes of a file's header.
pub const HEADER_BYTES: usize = 8 + 4 + 32 + 16 + 8 + 8;
const TAG: usize = 32;
/// Bytes after the index entries: index tag, record count, end magic.
const TRAILER: usize = TAG + 8 + 8;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing a store file or its directory failed.
    #[error("preprocessing store {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A store file is not this run's complete, unchanged material for the slot asked for.
    #[error("preprocessing store {}: {reason}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

fn refused(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Refused { path: path.to_path_buf(), reason: reason.into() }
}

/// Which stored part: a plan step and a part within it (a step's garbled-circuit batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    /// The step's index in the lowered plan.
    pub step: usize,
    /// The part within the step.
    pub part: usize,
}

/// One run's store in a directory. Secrets (the MAC key) stay in memory and out of `Debug`.
pub struct Store {
    dir: PathBuf,
    plan: Hash,
    run: [u8; 16],
    key: [u8; 32],
    /// Files of this run that may still exist (temporary or complete): removed on drop.
    owned: Mutex<BTreeSet<PathBuf>>,
    /// Slots written, and slots opened (never opened twice).
    written: Mutex<BTreeSet<Slot>>,
    opened: Mutex<BTreeSet<Slot>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store {{ dir: {}, key: <redacted> }}", self.dir.display())
    }
}

impl Store {
    /// A new run's store in `dir` for the plan with hash `plan` (the directory is created, mode
    /// 0700, if it does not exist).
    pub fn create<R: RngCore + CryptoRng>(dir: &Path, plan: &Hash, rng: &mut R) -> Result<Store, StoreError> {
        if !dir.exists() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(dir).map_err(io(dir))?;
        }
        if !dir.is_dir() {
            return Err(refused(dir, "not a directory"));
        }
        let mut run = [0u8; 16];
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut run);
        rng.fill_bytes(&mut key);
        Ok(Store {
            dir: dir.to_path_buf(),
            plan: *plan,
            run,
            key,
            owned: Mutex::default(),
            written: Mutex::default(),
            opened: Mutex::default(),
        })
    }

    /// Refused unless the store was made for the plan with hash `plan`.
    pub fn check_plan(&self, plan: &Hash) -> Result<(), StoreError> {
        if &self.plan != plan {
            let reason = format!("made for plan {}, not this plan {}", hex(&self.plan), hex(plan));
            return Err(refused(&self.dir, reason));
        }
        Ok(())
    }

    /// The file of `slot`.
    pub fn path(&self, slot: Slot) -> PathBuf {
        self.dir.join(format!("veil-pre-{}-{}.bin", slot.step, slot.part))
    }

    fn header(&self, slot: Slot) -> [u8; HEADER_BYTES] {
        let mut h = [0u8; HEADER_BYTES];
        let mut w = &mut h[..];
        for part in [&MAGIC[..], &VERSION.to_le_bytes(), &self.plan, &self.run] {
            w.write_all(part).expect("fits");
        }
        w.write_all(&(slot.step as u64).to_le_bytes()).expect("fits");
        w.write_all(&(slot.part as u64).to_le_bytes()).expect("fits");
        h
    }

    fn record_tag(&self, slot: Slot, i: usize, bytes: &[u8]) -> [u8; TAG] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&(slot.step as u64).to_le_bytes()).update(&(slot.part as u64).to_le_bytes());
        h.update(&(i as u64).to_le_bytes()).update(bytes);
        *h.finalize().as_bytes()
    }

    fn index_tag(&self, header: &[u8], index: &[u8]) -> [u8; TAG] {
        *blake3::Hasher::new_keyed(&self.key).update(header).update(index).finalize().as_bytes()
    }

    /// Starts writing `slot`'s file (each slot once per run). The file appears under its name
    /// only when [`Writer::finish`] completes it.
    pub fn writer(&self, slot: Slot) -> Result<Writer<'_>, StoreError> {
        let path = self.path(slot);
        if !self.written.lock().expect("not poisoned").insert(slot) {
            return Err(refused(&path, "written twice in one run"));
        }
        let tmp = path.with_extension("tmp");
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let file = o.open(&tmp).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                refused(&tmp, "already exists (another client's store in this directory, or left by a killed one?)")
            }
            _ => StoreError::Io { path: tmp.clone(), source: e },
        })?;
        {
            let mut owned = self.owned.lock().expect("not poisoned");
            owned.insert(tmp.clone());
            owned.insert(path.clone());
        }
        let mut w =
            Writer { store: self, slot, file: BufWriter::with_capacity(1 << 20, file), tmp, path, index: vec![] };
        let header = self.header(slot);
        w.file.write_all(&header).map_err(io(&w.tmp))?;
        Ok(w)
    }

    /// Opens `slot`'s file for the online phase and removes it from the directory (the open
    /// handle keeps it readable). Refused: a slot opened before (material is never reused), a
    /// missing file, or one that is not this run's complete file for `slot`.
    pub fn open(&self, slot: Slot) -> Result<Reader<'_>, StoreError> {
        let path = self.path(slot);
        if !self.opened.lock().expect("not poisoned").insert(slot) {
            return Err(refused(&path, "already used: preprocessed material is never used twice"));
        }
        let mut file = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => refused(&path, "missing (removed since the offline phase?)"),
            _ => StoreError::Io { path: path.clone(), source: e },
        })?;
        // Removed as soon as it is open: whatever happens next, no secret stays in the directory.
        let _ = std::fs::remove_file(&path);
        self.owned.lock().expect("not poisoned").remove(&path);
        let len = file.metadata().map_err(io(&path))?.len();
        let mut header = [0u8; HEADER_BYTES];
        if len < (HEADER_BYTES + TRAILER) as u64 {
            return Err(refused(&path, format!("truncated ({len} bytes)")));
        }
        file.read_exact(&mut header).map_err(io(&path))?;
        self.check_header(&path, &header, slot)?;
        let mut trailer = [0u8; TRAILER];
        file.seek(SeekFrom::End(-(TRAILER as i64))).map_err(io(&path))?;
        file.read_exact(&mut trailer).map_err(io(&path))?;
        let torn = || refused(&path, "torn or changed (its index does not check)");
        if trailer[TRAILER - 8..] != END {
            return Err(torn());
        }
        let count = u64::from_le_bytes(trailer[TAG..TAG + 8].try_into().expect("8 bytes"));
        let index_bytes = count.checked_mul((8 + TAG) as u64).filter(|&b| b <= len).ok_or_else(torn)?;
        let index_start = len.checked_sub(TRAILER as u64 + index_bytes).ok_or_else(torn)?;
        let mut index = vec![0u8; index_bytes as usize];
        file.seek(SeekFrom::Start(index_start)).map_err(io(&path))?;
        file.read_exact(&mut index).map_err(io(&path))?;
        let mut covered = index.clone();
        covered.extend_from_slice(&trailer[TAG..]);
        if self.index_tag(&header, &covered) != trailer[..TAG] {
            return Err(torn());
        }
        let mut records = Vec::with_capacity(count as usize);
        let mut offset = HEADER_BYTES as u64;
        for e in index.chunks_exact(8 + TAG) {
            let n = u64::from_le_bytes(e[..8].try_into().expect("8 bytes"));
            records.push((offset, n, <[u8; TAG]>::try_from(&e[8..]).expect("32 bytes")));
            offset = offset.checked_add(n).ok_or_else(torn)?;
        }
        if offset != index_start {
            return Err(torn());
        }
        Ok(Reader { store: self, slot, file: Mutex::new(file), path, records })
    }

    fn check_header(&self, path: &Path, h: &[u8; HEADER_BYTES], slot: Slot) -> Result<(), StoreError> {
        let want = self.header(slot);
        if h[..8] != MAGIC {
            return Err(refused(path, "not a Veil preprocessing file"));
        }
        if h[8..12] != want[8..12] {
            let v = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
            return Err(refused(path, format!("format version {v}, this veil reads version {VERSION}")));
        }
        if h[12..44] != want[12..44] {
            let found: Hash = h[12..44].try_into().expect("32 bytes");
            return Err(refused(path, format!("made for plan {}, not this plan {}", hex(&found), hex(&self.plan))));
        }
        if h[44..60] != want[44..60] {
            return Err(refused(path, "from another run (preprocessed material is never reused)"));
        }
        if h[60..] != want[60..] {
            return Err(refused(path, "holds another step's material"));
        }
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        for p in self.owned.get_mut().map(std::mem::take).unwrap_or_default() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Writes one slot's records. Dropped without [`Writer::finish`], it removes its partial file.
pub struct Writer<'s> {
    store: &'s Store,
    slot: Slot,
    file: BufWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    /// Per record written: its length and tag.
    index: Vec<(u64, [u8; TAG])>,
}

impl std::fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store::Writer {{ {}, records: {} }}", self.tmp.display(), self.index.len())
    }
}

impl Writer<'_> {
    /// Appends a record (record `i` is the `i`-th call).
    pub fn record(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let tag = self.store.record_tag(self.slot, self.index.len(), bytes);
        self.file.write_all(bytes).map_err(io(&self.tmp))?;
        self.index.push((bytes.len() as u64, tag));
        Ok(())
    }

    /// Writes the index and gives the file its name.
    pub fn finish(mut self) -> Result<(), StoreError> {
        let mut index = Vec::with_capacity(self.index.len() * (8 + TAG) + 16);
        for (n, tag) in &self.index {
            index.extend_from_slice(&n.to_le_bytes());
            index.extend_from_slice(tag);
        }
        let tail_start = index.len();
        index.extend_from_slice(&(self.index.len() as u64).to_le_bytes());
        index.extend_from_slice(&END);
        let tag = self.store.index_tag(&self.store.header(self.slot), &index);
        let (entries, tail) = index.split_at(tail_start);
        for part in [entries, &tag[..], tail] {
            self.file.write_all(part).map_err(io(&self.tmp))?;
        }
        self.file.flush().map_err(io(&self.tmp))?;
        if self.path.exists() {
            return Err(refused(&self.path, "already exists (another client's store in this directory?)"));
        }
        std::fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        self.store.owned.lock().expect("not poisoned").remove(&self.tmp);
        self.index.clear();
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Reads one slot's records (the file is already gone from the directory).
pub struct Reader<'s> {
    store: &'s Store,
    slot: Slot,
    /// Shared by [`Reader::record`] calls from several threads (a read ahead).
    file: Mutex<File>,
    path: PathBuf,
    /// Per record: offset, length, tag.
    records: Vec<(u64, u64, [u8; TAG])>,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store::Reader {{ {}, records: {} }}", self.path.display(), self.records.len())
    }
}

impl Reader<'_> {
    /// Records in the file.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the file has no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Asks the kernel to start reading record `i` into its cache (no effect where unsupported,
    /// or for an `i` past the end): the online phase calls it for the next chunk while it
    /// evaluates this one, so the disk reads overlap the evaluation.
    pub fn read_ahead(&self, i: usize) {
        #[cfg(unix)]
        if let Some(&(offset, n, _)) = self.records.get(i) {
            use std::os::fd::AsRawFd;
            let file = self.file.lock().expect("not poisoned");
            let (Ok(offset), Ok(n)) = (i64::try_from(offset), i64::try_from(n)) else { return };
            // SAFETY: the descriptor is open (the locked `File` owns it); the call only advises.
            unsafe { libc::posix_fadvise(file.as_raw_fd(), offset, n, libc::POSIX_FADV_WILLNEED) };
        }
        #[cfg(not(unix))]
        let _ = i;
    }

    /// Record `i`, checked against its tag. `expect`: its length, as the caller computes it
    /// from the plan (a different one is refused before any allocation). Callable from several
    /// threads at once (the reads take turns, the checks do not).
    pub fn record(&self, i: usize, expect: usize) -> Result<Vec<u8>, StoreError> {
        let mut buf = Vec::new();
        self.record_into(i, expect, &mut buf)?;
        Ok(buf)
    }

    /// [`Reader::record`] into `buf` (resized to the record; its allocation is reused).
    pub fn record_into(&self, i: usize, expect: usize, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        let Some(&(offset, n, tag)) = self.records.get(i) else {
            return Err(refused(&self.path, format!("has {} records, record {i} was asked for", self.records.len())));
        };
        if n != expect as u64 {
            return Err(refused(&self.path, format!("record {i} has {n} bytes, the plan needs {expect}")));
        }
        buf.resize(expect, 0);
        {
            let mut file = self.file.lock().expect("not poisoned");
            file.seek(SeekFrom::Start(offset)).map_err(io(&self.path))?;
            file.read_exact(buf).map_err(io(&self.path))?;
        }
        if self.store.record_tag(self.slot, i, buf) != tag {
            return Err(refused(&self.path, format!("record {i} was changed (its tag does not check)")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn store(dir: &Path, plan: u8, seed: u64) -> Store {
        Store::create(dir, &[plan; 32], &mut rand_chacha::ChaCha20Rng::seed_from_u64(seed)).unwrap()
    }

    const SLOT: Slot = Slot { step: 3, part: 1 };

    fn write(s: &Store, records: &[&[u8]]) {
        let mut w = s.writer(SLOT).unwrap();
        for r in records {
            w.record(r).unwrap();
        }
        w.finish().unwrap();
    }

    fn refusal(e: StoreError) -> String {
        match e {
            StoreError::Refused { reason, .. } => reason,
            e => panic!("expected a refusal, got {e}"),
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn records_round_trip_once_from_a_0600_file_that_is_gone_after_opening() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), 7, 1);
        write(&s, &[b"labels", b"", b"tables!"]);
        assert_eq!(files(dir.path()), ["veil-pre-3-1.bin"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(s.path(SLOT)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let copy = std::fs::read(s.path(SLOT)).unwrap();
        let r = s.open(SLOT).unwrap();
        assert!(files(dir.path()).is_empty(), "removed once open");
        assert_eq!(r.len(), 3);
        assert_eq!(r.record(2, 7).unwrap(), b"tables!");
        assert_eq!(r.record(0, 6).unwrap(), b"labels");
        assert!(refusal(r.record(0, 5).unwrap_err()).contains("6 bytes, the plan needs 5"));
        assert!(refusal(r.record(3, 0).unwrap_err()).contains("has 3 records"));
        drop(r);
        // Put back by someone: still never used twice.
        std::fs::write(s.path(SLOT), &copy).unwrap();
        assert!(refusal(s.open(SLOT).unwrap_err()).contains("never used twice"));
        drop(s);
        assert_eq!(files(dir.path()), ["veil-pre-3-1.bin"], "the store removes its own files, not a copy put back");
    }

    /// Each change to a complete file: (what, the change, words of the refusal).
    #[test]
    fn foreign_torn_or_changed_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let original = {
            let s = store(dir.path(), 7, 1);
            write(&s, &[b"labels", b"tables!"]);
            std::fs::read(s.path(SLOT)).unwrap()
        };
        let flip = |at: usize| {
            move |b: &mut Vec<u8>| {
                let i = if at < b.len() { at } else { b.len() - (at - b.len()) - 1 };
                b[i] ^= 1;
            }
        };
        type Change = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Change, &str)> = vec![
            ("magic", Box::new(flip(0)), "not a Veil preprocessing file"),
            ("version", Box::new(|b: &mut Vec<u8>| b[8] = 9), "format version 9"),
            ("plan", Box::new(flip(12)), "made for plan"),
            ("run", Box::new(flip(50)), "from another run"),
            ("slot", Box::new(flip(60)), "another step"),
            ("record", Box::new(flip(HEADER_BYTES + 7)), "record 1 was changed"),
            ("index tag", Box::new(|b: &mut Vec<u8>| *b.iter_mut().rev().nth(20).unwrap() ^= 1), "torn"),
            ("truncated", Box::new(|b: &mut Vec<u8>| b.truncate(b.len() - 1)), "torn"),
            ("cut short", Box::new(|b: &mut Vec<u8>| b.truncate(40)), "truncated (40 bytes)"),
            ("grown", Box::new(|b: &mut Vec<u8>| b.insert(HEADER_BYTES, 0)), "torn"),
        ];
        for (what, change, words) in cases {
            // The same run (seed) as the writer, so only the change can be refused.
            let s = store(dir.path(), 7, 1);
            let mut bytes = original.clone();
            change(&mut bytes);
            std::fs::write(s.path(SLOT), &bytes).unwrap();
            let got = s.open(SLOT).and_then(|r| r.record(0, 6).and_then(|_| r.record(1, 7)));
            let reason = refusal(got.expect_err(what));
            assert!(reason.contains(words), "{what}: {reason}");
        }
        // Unchanged, in the same run, it reads; another plan's or run's store refuses it.
        for (plan, seed, words) in [(7, 1, ""), (8, 1, "made for plan"), (7, 2, "from another run")] {
            let s = store(dir.path(), plan, seed);
            std::fs::write(s.path(SLOT), &original).unwrap();
            match s.open(SLOT) {
                Ok(r) if words.is_empty() => assert_eq!(r.record(1, 7).unwrap(), b"tables!"),
                Ok(_) => panic!("plan {plan} seed {seed} opened"),
                Err(e) => assert!(refusal(e).contains(words)),
            }
        }
        assert!(files(dir.path()).is_empty());
    }

    #[test]
    fn no_partial_file_stays_and_no_existing_file_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), 7, 1);
        let mut w = s.writer(SLOT).unwrap();
        w.record(b"secret").unwrap();
        assert_eq!(files(dir.path()), ["veil-pre-3-1.tmp"]);
        drop(w);
        assert!(files(dir.path()).is_empty(), "a writer dropped unfinished removes its file");
        assert!(refusal(s.writer(SLOT).unwrap_err()).contains("written twice"));
        // Another client's file at the same name is neither clobbered nor removed.
        let other = Slot { step: 0, part: 0 };
        std::fs::write(s.path(other).with_extension("tmp"), b"theirs").unwrap();
        assert!(refusal(s.writer(other).unwrap_err()).contains("already exists"));
        let complete = Slot { step: 1, part: 0 };
        write_slot(&s, complete);
        drop(s);
        assert_eq!(files(dir.path()), ["veil-pre-0-0.tmp"], "the store removed its own files only");
    }

    fn write_slot(s: &Store, slot: Slot) {
        let mut w = s.writer(slot).unwrap();
        w.record(b"x").unwrap();
        w.finish().unwrap();
    }
}
