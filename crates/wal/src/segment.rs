//! Log segment files: naming, the header, preparation and activation.
//!
//! A segment is `[header 24 bytes][entry record]*[anything]`. The header of
//! format version 3 is `magic "RKVWAL" (6) | version u8 = 3 | reserved u8 =
//! 0 | first_index u64 | salt u32 | crc32c u32 of the 20 bytes before it`,
//! and its records are salted ([`Framing::Salted`]): the records end at the
//! first header without the segment's salt, and what follows is either the
//! zeros of preallocation or records of an earlier use of the file.
//!
//! A segment file is preallocated before its first record, so appends
//! overwrite allocated blocks instead of growing the file: either written
//! full of zeros ([`prepare_segment`]), or taken from the segments that
//! compaction removed ([`recycle_segment`]), which costs no write at all.
//! Versions 1 and 2 (plain records, `crc32c u32` of the 16 bytes before
//! it then 4 zero bytes; version 2 zero-filled, ending at an all-zero
//! record header) are still read, never written or recycled.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use raft::Index;

use crate::fs::{FileRef, Fs};
use crate::record::Framing;

/// Bytes of a segment header.
pub const SEGMENT_HEADER_LEN: usize = 24;
/// The first bytes of every segment.
pub const SEGMENT_MAGIC: [u8; 6] = *b"RKVWAL";
/// The segment format version written by this code: 3, salted records in a
/// preallocated (zero-filled or recycled) file.
pub const FORMAT_VERSION: u8 = 3;
/// Versions read with plain records: 1 (ends at the end of the file) and 2
/// (zero-filled, ends at an all-zero record header).
const PLAIN_VERSIONS: [u8; 2] = [1, 2];
const SUFFIX: &str = ".log";
/// The suffix of files being created; any left at open time are removed.
pub const TMP_SUFFIX: &str = ".tmp";
/// The name of the next segment while it is prepared and until it becomes
/// the active one (its first index is not known before then).
pub const PREPARED_NAME: &str = "next-segment.tmp";
/// Zeros are written in pieces of this size (bounding the buffer).
const ZERO_CHUNK_BYTES: u64 = 1 << 20;

/// The name of the `n`th file kept for reuse since the WAL opened.
pub fn recycled_name(n: u64) -> String {
    format!("recycled-{n}{TMP_SUFFIX}")
}

/// A salt for the next use of a file whose last use had `last` (0: a new
/// file): a value from [`Fs::salt_seed`], never 0 and never `last`. Salts
/// are random rather than counted so that they do not look like the small
/// numbers (terms, indices, lengths) that fill a segment: at the end of the
/// log, bytes of an earlier use match the salt by chance with odds of
/// 2^-32. Earlier uses than the last are not remembered; one of them shares
/// the new salt with those odds too.
pub fn new_salt(fs: &dyn Fs, last: u32) -> u32 {
    loop {
        let salt = fs.salt_seed();
        if salt != 0 && salt != last {
            return salt;
        }
    }
}

/// The file name of the segment whose first entry is `first`.
pub fn segment_name(first: Index) -> String {
    format!("{first:020}{SUFFIX}")
}

/// The first index a segment file name stands for, if it is one.
pub fn parse_segment_name(name: &str) -> Option<Index> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header of a segment starting at `first` whose records carry `salt`.
pub fn encode_header(first: Index, salt: u32) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..6].copy_from_slice(&SEGMENT_MAGIC);
    h[6] = FORMAT_VERSION;
    h[8..16].copy_from_slice(&first.to_le_bytes());
    h[16..20].copy_from_slice(&salt.to_le_bytes());
    let crc = crc32c::crc32c(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a segment header against the index its file name promises;
/// returns how its records are framed.
pub fn check_header(bytes: &[u8], first: Index) -> Result<Framing, String> {
    let Some(h) = bytes.get(..SEGMENT_HEADER_LEN) else {
        return Err(format!("segment header truncated to {} bytes", bytes.len()));
    };
    if h[..6] != SEGMENT_MAGIC {
        return Err("not a segment (bad magic)".into());
    }
    let version = h[6];
    let (covered, crc) = if PLAIN_VERSIONS.contains(&version) { (16, 16..20) } else { (20, 20..24) };
    if crc32c::crc32c(&h[..covered]).to_le_bytes() != h[crc] {
        return Err("segment header checksum mismatch".into());
    }
    let framing = match version {
        v if PLAIN_VERSIONS.contains(&v) => Framing::Plain,
        FORMAT_VERSION => match u32::from_le_bytes([h[16], h[17], h[18], h[19]]) {
            0 => return Err("segment header has salt 0".into()),
            salt => Framing::Salted(salt),
        },
        v => return Err(format!("unsupported format version {v}")),
    };
    if h[8..16] != first.to_le_bytes() {
        return Err("segment header names a different first index than the file".into());
    }
    Ok(framing)
}

/// A failed file operation and the file it was on.
pub type PathError = (PathBuf, io::Error);

/// A file ready to become the next segment: preallocated, under a
/// temporary name, with the salt its records will carry.
#[derive(Debug)]
pub struct Prepared {
    /// The open file.
    pub file: FileRef,
    /// Its temporary name.
    pub path: PathBuf,
    /// The salt of its next use.
    pub salt: u32,
}

/// Prepares the next segment ahead of need: creates [`PREPARED_NAME`],
/// writes `zero_bytes` of zeros (really written, not `fallocate`d: on
/// ext4 an unwritten extent still costs `fdatasync` a metadata update at
/// the first write into it) and `fdatasync`s them, so appends into it
/// neither allocate blocks nor change the file's size. Stops between two
/// pieces once `cancel` is set (the WAL is closing; the file left is
/// removed at the next open).
pub fn prepare_segment(fs: &dyn Fs, dir: &Path, zero_bytes: u64, cancel: &AtomicBool) -> Result<Prepared, PathError> {
    let tmp = dir.join(PREPARED_NAME);
    let with = |e| (tmp.clone(), e);
    let file = fs.create(&tmp).map_err(with)?;
    let zeros = vec![0u8; zero_bytes.min(ZERO_CHUNK_BYTES) as usize];
    let mut at = 0;
    while at < zero_bytes {
        if cancel.load(Ordering::Relaxed) {
            return Err(with(io::Error::new(io::ErrorKind::Interrupted, "segment preparation cancelled")));
        }
        let n = (zero_bytes - at).min(ZERO_CHUNK_BYTES) as usize;
        file.write_all_at(&zeros[..n], at).map_err(with)?;
        at += n as u64;
    }
    // Nothing to make durable without zeros: the header's sync covers it.
    if zero_bytes > 0 {
        file.sync_data().map_err(with)?;
    }
    Ok(Prepared { file, path: tmp, salt: new_salt(fs, 0) })
}

/// Takes the segment at `path` (whose records carry `salt`) out of the log
/// for reuse: renames it to `recycled` (a temporary name, so a crash before
/// it is used again just removes it). Its contents stay: the next use's
/// salt tells them apart. The caller makes the rename durable with a
/// directory `fsync` before relying on the segment being gone.
pub fn recycle_segment(
    fs: &dyn Fs,
    file: FileRef,
    path: &Path,
    salt: u32,
    recycled: PathBuf,
) -> Result<Prepared, PathError> {
    fs.rename(path, &recycled).map_err(|e| (path.to_path_buf(), e))?;
    Ok(Prepared { file, path: recycled, salt: new_salt(fs, salt) })
}

/// Makes the prepared file the segment starting at `first`, so that its
/// name appears only with a complete, durable header: write the header,
/// `fdatasync`, rename to the segment's name, `fsync` the directory — all
/// before the first record goes in. Returns the file and its path.
pub fn activate_segment(
    fs: &dyn Fs,
    dir: &Path,
    prepared: Prepared,
    first: Index,
) -> Result<(FileRef, PathBuf), PathError> {
    let path = dir.join(segment_name(first));
    let Prepared { file, path: tmp, salt } = prepared;
    file.write_all_at(&encode_header(first, salt), 0).map_err(|e| (tmp.clone(), e))?;
    file.sync_data().map_err(|e| (tmp.clone(), e))?;
    fs.rename(&tmp, &path).map_err(|e| (path.clone(), e))?;
    fs.sync_dir(dir).map_err(|e| (dir.to_path_buf(), e))?;
    Ok((file, path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_index() {
        assert_eq!(segment_name(1), "00000000000000000001.log");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("1.log"), None);
        assert!(segment_name(9) < segment_name(10));
    }

    #[test]
    fn header_checks() {
        let h = encode_header(42, 9);
        assert_eq!(check_header(&h, 42), Ok(Framing::Salted(9)));
        assert!(check_header(&h, 43).is_err());
        assert!(check_header(&h[..10], 42).is_err());
        for byte in [9, 17] {
            let mut bad = h;
            bad[byte] ^= 1;
            assert!(check_header(&bad, 42).is_err(), "flipped byte {byte}");
        }
        assert!(check_header(&encode_header(42, 0), 42).unwrap_err().contains("salt 0"));
    }

    #[test]
    fn version_2_headers_still_read_as_plain() {
        let mut h = [0u8; SEGMENT_HEADER_LEN];
        h[..6].copy_from_slice(&SEGMENT_MAGIC);
        h[6] = 2;
        h[8..16].copy_from_slice(&42u64.to_le_bytes());
        let crc = crc32c::crc32c(&h[..16]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(check_header(&h, 42), Ok(Framing::Plain));
        h[6] = 4;
        assert!(check_header(&h, 42).is_err(), "an unknown version is refused");
    }

    #[test]
    fn a_new_salt_is_never_zero_nor_the_last_one() {
        #[derive(Debug)]
        struct Draws(std::sync::Mutex<Vec<u32>>);
        impl Fs for Draws {
            fn create_dir_all(&self, _: &Path) -> io::Result<()> {
                unimplemented!()
            }
            fn list(&self, _: &Path) -> io::Result<Vec<String>> {
                unimplemented!()
            }
            fn create(&self, _: &Path) -> io::Result<FileRef> {
                unimplemented!()
            }
            fn open(&self, _: &Path) -> io::Result<FileRef> {
                unimplemented!()
            }
            fn exists(&self, _: &Path) -> io::Result<bool> {
                unimplemented!()
            }
            fn rename(&self, _: &Path, _: &Path) -> io::Result<()> {
                unimplemented!()
            }
            fn remove(&self, _: &Path) -> io::Result<()> {
                unimplemented!()
            }
            fn sync_dir(&self, _: &Path) -> io::Result<()> {
                unimplemented!()
            }
            fn salt_seed(&self) -> u32 {
                self.0.lock().unwrap().remove(0)
            }
        }
        let fs = Draws(std::sync::Mutex::new(vec![0, 7, 7, 9]));
        assert_eq!(new_salt(&fs, 7), 9);
        let real = crate::fs::StdFs;
        let (a, b) = (real.salt_seed(), real.salt_seed());
        assert_ne!(a, b, "two draws differ (odds 2^-32 of a false failure)");
    }
}
