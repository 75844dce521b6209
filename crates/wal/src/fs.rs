//! The file operations the WAL needs, behind a trait.
//!
//! Everything the WAL does to the disk goes through [`Fs`] and [`File`], so the
//! same code runs on the real file system ([`StdFs`]) and on the simulated disk
//! of [`crate::sim`], which loses unsynced data and tears writes at a crash.
//! The operations are positional (`read_at`/`write_at` on `&self`) so one open
//! handle can be shared by the writer and the readers.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A shared handle to an open file.
pub type FileRef = Arc<dyn File>;

/// One open file, read-write.
#[allow(clippy::len_without_is_empty)] // `len` is an IO call, not a collection's
pub trait File: Send + Sync + std::fmt::Debug {
    /// Fills `buf` from `offset`; a short file is an error (`UnexpectedEof`).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// The file's current length.
    fn len(&self) -> io::Result<u64>;
    /// Cuts (or zero-extends) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// `fdatasync`: data and the metadata needed to read it (size) are durable.
    fn sync_data(&self) -> io::Result<()>;
}

/// Directory-level operations.
pub trait Fs: Send + Sync + std::fmt::Debug {
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the files in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates `path` empty (truncating any old file), open read-write.
    fn create(&self, path: &Path) -> io::Result<FileRef>;
    /// Opens the existing `path` read-write.
    fn open(&self, path: &Path) -> io::Result<FileRef>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// `fsync` on the directory: makes creates, renames and removes in it durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// A value for a segment's salt (see [`crate::record::Framing`]):
    /// unpredictable on a real disk, so no stored data (a client's value
    /// holding a forged record) can be made to match a future salt, and
    /// reproducible on the simulated one.
    fn salt_seed(&self) -> u32;
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

#[derive(Debug)]
struct StdFile(std::fs::File);

impl File for StdFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.0, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.0, buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Fs for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn create(&self, path: &Path) -> io::Result<FileRef> {
        let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        Ok(Arc::new(StdFile(f)))
    }

    fn open(&self, path: &Path) -> io::Result<FileRef> {
        let f = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(StdFile(f)))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }

    fn salt_seed(&self) -> u32 {
        // std's hasher keys are random per process; the counter and the
        // clock make each call differ.
        use std::hash::{BuildHasher, Hasher};
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write_u64(CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        let v = h.finish();
        (v ^ (v >> 32)) as u32
    }
}

/// The directory a file lives in (`.` for a bare name).
pub(crate) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
