//! A simulated disk for crash tests: [`SimFs`] implements [`Fs`] in memory and
//! models what survives a power cut.
//!
//! The model, per file: a *live* image (what reads see) and a *durable* image
//! (what `sync_data` last made durable). Per directory: live and durable name
//! tables (`sync_dir` makes the live names of that directory durable). At a
//! crash ([`SimFs::crash_image`]) every name and file reverts to its durable
//! image, except that the last unsynced write may survive in part (a torn
//! write: a prefix of it, sometimes zeroed, as sectors that reached the platter
//! or a block the file system extended with zeros).
//!
//! Faults are injected by counting mutating operations (write, set_len, sync,
//! create, rename, remove): [`SimFs::crash_at`] makes operation `n` the crash
//! point (it fails, and so does everything after it); [`SimFs::fail_sync_at`]
//! makes the `n`-th sync from then on report an IO error without crashing,
//! and [`SimFs::fail_write_at`] does the same for the `n`-th file write.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::fs::{File, FileRef, Fs, parent_of};

/// The simulated disk. Cheap to clone; clones share the disk.
#[derive(Clone, Debug, Default)]
pub struct SimFs {
    state: Arc<Mutex<SimState>>,
}

#[derive(Clone, Debug, Default)]
struct SimFile {
    live: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug)]
struct LastWrite {
    file: usize,
    offset: u64,
    data: Vec<u8>,
}

#[derive(Debug, Default)]
struct SimState {
    files: Vec<SimFile>,
    live: BTreeMap<PathBuf, usize>,
    durable: BTreeMap<PathBuf, usize>,
    ops: u64,
    syncs: u64,
    crash_at: Option<u64>,
    fail_sync_at: Option<u64>,
    writes: u64,
    fail_write_at: Option<u64>,
    crashed: bool,
    last_write: Option<LastWrite>,
    /// Seed for choosing how much of a torn write survives.
    torn_seed: u64,
    /// Salts handed out ([`Fs::salt_seed`]); carried into crash images, so a
    /// recovered WAL does not draw an earlier run's salts again.
    salts: u64,
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash")
}

impl SimState {
    /// Counts one mutating operation; fails once the crash point is reached.
    fn tick(&mut self) -> io::Result<()> {
        if self.crashed {
            return Err(crashed());
        }
        self.ops += 1;
        if self.crash_at == Some(self.ops) {
            self.crashed = true;
            return Err(crashed());
        }
        Ok(())
    }

    fn id(&self, path: &Path) -> io::Result<usize> {
        self.live.get(path).copied().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.display().to_string()))
    }
}

fn write_into(buf: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = offset as usize;
    if buf.len() < start + data.len() {
        buf.resize(start + data.len(), 0);
    }
    buf[start..start + data.len()].copy_from_slice(data);
}

impl SimFs {
    /// An empty disk.
    pub fn new() -> Self {
        SimFs::default()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes mutating operation number `n` (counting from 1) the crash point.
    pub fn crash_at(&self, n: u64) {
        self.lock().crash_at = Some(n);
    }

    /// Makes the `n`-th sync from now (file or directory, counting from 1)
    /// fail with an IO error.
    pub fn fail_sync_at(&self, n: u64) {
        let mut s = self.lock();
        s.fail_sync_at = Some(s.syncs + n);
    }

    /// Makes the `n`-th file write from now (counting from 1) fail with an
    /// IO error, writing nothing.
    pub fn fail_write_at(&self, n: u64) {
        let mut s = self.lock();
        s.fail_write_at = Some(s.writes + n);
    }

    /// Sets the seed that decides how much of a torn write survives.
    pub fn set_torn_seed(&self, seed: u64) {
        self.lock().torn_seed = seed;
    }

    /// How many mutating operations have run.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Whether the crash point has been reached.
    pub fn has_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// The disk as it would be found after a power cut now: durable names and
    /// data, plus part of the last unsynced write.
    pub fn crash_image(&self) -> SimFs {
        let s = self.lock();
        let mut files: Vec<SimFile> =
            s.files.iter().map(|f| SimFile { live: f.durable.clone(), durable: f.durable.clone() }).collect();
        if let Some(w) = &s.last_write {
            let seed = splitmix(s.torn_seed ^ s.ops);
            let keep = (seed % (w.data.len() as u64 + 1)) as usize;
            let mut torn = w.data[..keep].to_vec();
            if seed & (1 << 40) != 0 {
                torn.iter_mut().skip(keep / 2).for_each(|b| *b = 0);
            }
            let f = &mut files[w.file];
            write_into(&mut f.durable, w.offset, &torn);
            f.live = f.durable.clone();
        }
        let state = SimState {
            files,
            live: s.durable.clone(),
            durable: s.durable.clone(),
            salts: s.salts,
            ..SimState::default()
        };
        SimFs { state: Arc::new(Mutex::new(state)) }
    }

    /// The live contents of `path`, for tests that corrupt files on purpose.
    pub fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.lock();
        Ok(s.files[s.id(path)?].live.clone())
    }

    /// Replaces the contents of `path`, live and durable (a test's corruption).
    pub fn write_file(&self, path: &Path, data: Vec<u8>) -> io::Result<()> {
        let mut s = self.lock();
        let id = s.id(path)?;
        s.files[id] = SimFile { live: data.clone(), durable: data };
        Ok(())
    }
}

/// A 64-bit mixer (SplitMix64 finaliser): a deterministic "random" choice.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Debug)]
struct SimHandle {
    fs: SimFs,
    id: usize,
}

impl File for SimHandle {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let s = self.fs.lock();
        let data = &s.files[self.id].live;
        let start = offset as usize;
        if buf.is_empty() {
            return Ok(());
        }
        let src = data.get(start..start + buf.len()).ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut s = self.fs.lock();
        let tick = s.tick();
        // A crash during a write leaves that write as the one that may be torn.
        s.last_write = Some(LastWrite { file: self.id, offset, data: buf.to_vec() });
        tick?;
        s.writes += 1;
        if s.fail_write_at == Some(s.writes) {
            s.last_write = None;
            return Err(io::Error::other("simulated write failure"));
        }
        write_into(&mut s.files[self.id].live, offset, buf);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.fs.lock().files[self.id].live.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.fs.lock();
        s.tick()?;
        if s.last_write.as_ref().is_some_and(|w| w.file == self.id) {
            s.last_write = None;
        }
        s.files[self.id].live.resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut s = self.fs.lock();
        s.tick()?;
        s.syncs += 1;
        if s.fail_sync_at == Some(s.syncs) {
            return Err(io::Error::other("simulated fsync failure"));
        }
        if s.last_write.as_ref().is_some_and(|w| w.file == self.id) {
            s.last_write = None;
        }
        let f = &mut s.files[self.id];
        f.durable = f.live.clone();
        Ok(())
    }
}

impl Fs for SimFs {
    fn salt_seed(&self) -> u32 {
        let mut s = self.lock();
        s.salts += 1;
        splitmix(s.salts) as u32
    }

    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.lock();
        Ok(s.live
            .keys()
            .filter(|p| parent_of(p) == dir)
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn create(&self, path: &Path) -> io::Result<FileRef> {
        let mut s = self.lock();
        s.tick()?;
        s.files.push(SimFile::default());
        let id = s.files.len() - 1;
        s.live.insert(path.to_path_buf(), id);
        Ok(Arc::new(SimHandle { fs: self.clone(), id }))
    }

    fn open(&self, path: &Path) -> io::Result<FileRef> {
        let id = self.lock().id(path)?;
        Ok(Arc::new(SimHandle { fs: self.clone(), id }))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        Ok(self.lock().live.contains_key(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.tick()?;
        let id = s.id(from)?;
        s.live.remove(from);
        s.live.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.tick()?;
        s.id(path)?;
        s.live.remove(path);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.tick()?;
        s.syncs += 1;
        if s.fail_sync_at == Some(s.syncs) {
            return Err(io::Error::other("simulated fsync failure"));
        }
        let SimState { live, durable, .. } = &mut *s;
        durable.retain(|p, _| parent_of(p) != dir);
        for (p, id) in live.iter().filter(|(p, _)| parent_of(p) == dir) {
            durable.insert(p.clone(), *id);
        }
        Ok(())
    }
}
