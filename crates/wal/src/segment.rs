//! Log segment files: naming, the header, preparation and activation.
//!
//! A segment is `[header 24 bytes][entry record]*[zeros]`. The header is
//! `magic "RKVWAL" (6) | version u8 | reserved u8 = 0 | first_index u64 |
//! crc32c u32 of the 16 bytes before it | reserved u32 = 0`. Since format
//! version 2 a segment is preallocated: written full of zeros before its
//! first record, so appends overwrite allocated blocks instead of growing
//! the file, and an all-zero record header marks the end of its records.

use std::io;
use std::path::{Path, PathBuf};

use raft::Index;

use crate::fs::{FileRef, Fs};

/// Bytes of a segment header.
pub const SEGMENT_HEADER_LEN: usize = 24;
/// The first bytes of every segment.
pub const SEGMENT_MAGIC: [u8; 6] = *b"RKVWAL";
/// The segment format version written by this code: 2, a segment with a
/// zero-filled (preallocated) tail after its last record.
pub const FORMAT_VERSION: u8 = 2;
/// Version 1 segments end at the end of the file; they read the same under
/// the version 2 rules (an end of file is an end of log), so they are
/// still accepted.
const FORMAT_VERSIONS_READ: [u8; 2] = [1, 2];
const SUFFIX: &str = ".log";
/// The suffix of files being created; any left at open time are removed.
pub const TMP_SUFFIX: &str = ".tmp";
/// The name of the next segment while it is prepared and until it becomes
/// the active one (its first index is not known before then).
pub const PREPARED_NAME: &str = "next-segment.tmp";
/// Zeros are written in pieces of this size (bounding the buffer).
const ZERO_CHUNK_BYTES: u64 = 1 << 20;

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

/// The header of a segment starting at `first`.
pub fn encode_header(first: Index) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..6].copy_from_slice(&SEGMENT_MAGIC);
    h[6] = FORMAT_VERSION;
    h[8..16].copy_from_slice(&first.to_le_bytes());
    let crc = crc32c::crc32c(&h[..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a segment header against the index its file name promises.
pub fn check_header(bytes: &[u8], first: Index) -> Result<(), String> {
    let Some(h) = bytes.get(..SEGMENT_HEADER_LEN) else {
        return Err(format!("segment header truncated to {} bytes", bytes.len()));
    };
    if h[..6] != SEGMENT_MAGIC {
        return Err("not a segment (bad magic)".into());
    }
    if crc32c::crc32c(&h[..16]).to_le_bytes() != h[16..20] {
        return Err("segment header checksum mismatch".into());
    }
    if !FORMAT_VERSIONS_READ.contains(&h[6]) {
        return Err(format!("unsupported format version {}", h[6]));
    }
    if h[8..16] != first.to_le_bytes() {
        return Err("segment header names a different first index than the file".into());
    }
    Ok(())
}

/// A failed file operation and the file it was on.
pub type PathError = (PathBuf, io::Error);

/// Prepares the next segment ahead of need: creates [`PREPARED_NAME`],
/// writes `zero_bytes` of zeros (really written, not `fallocate`d: on
/// ext4 an unwritten extent still costs `fdatasync` a metadata update at
/// the first write into it) and `fdatasync`s them, so appends into it
/// neither allocate blocks nor change the file's size.
pub fn prepare_segment(fs: &dyn Fs, dir: &Path, zero_bytes: u64) -> Result<FileRef, PathError> {
    let tmp = dir.join(PREPARED_NAME);
    let with = |e| (tmp.clone(), e);
    let file = fs.create(&tmp).map_err(with)?;
    let zeros = vec![0u8; zero_bytes.min(ZERO_CHUNK_BYTES) as usize];
    let mut at = 0;
    while at < zero_bytes {
        let n = (zero_bytes - at).min(ZERO_CHUNK_BYTES) as usize;
        file.write_all_at(&zeros[..n], at).map_err(with)?;
        at += n as u64;
    }
    // Nothing to make durable without zeros: the header's sync covers it.
    if zero_bytes > 0 {
        file.sync_data().map_err(with)?;
    }
    Ok(file)
}

/// Makes the prepared `file` the segment starting at `first`, so that its
/// name appears only with a complete, durable header: write the header,
/// `fdatasync`, rename to the segment's name, `fsync` the directory — all
/// before the first record goes in. Returns the file and its path.
pub fn activate_segment(fs: &dyn Fs, dir: &Path, file: FileRef, first: Index) -> Result<(FileRef, PathBuf), PathError> {
    let path = dir.join(segment_name(first));
    let tmp = dir.join(PREPARED_NAME);
    file.write_all_at(&encode_header(first), 0).map_err(|e| (tmp.clone(), e))?;
    file.sync_data().map_err(|e| (tmp.clone(), e))?;
    fs.rename(&tmp, &path).map_err(|e| (path.clone(), e))?;
    fs.sync_dir(dir).map_err(|e| (dir.to_path_buf(), e))?;
    Ok((file, path))
}

#[cfg(test)]
mod tests {
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
        let h = encode_header(42);
        assert_eq!(check_header(&h, 42), Ok(()));
        assert!(check_header(&h, 43).is_err());
        assert!(check_header(&h[..10], 42).is_err());
        let mut bad = h;
        bad[9] ^= 1;
        assert!(check_header(&bad, 42).is_err());
    }
}
