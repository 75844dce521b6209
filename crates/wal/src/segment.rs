//! Log segment files: naming, the header, creation.
//!
//! A segment is `[header 24 bytes][entry record]*`. The header is
//! `magic "RKVWAL" (6) | version u8 | reserved u8 = 0 | first_index u64 |
//! crc32c u32 of the 16 bytes before it | reserved u32 = 0`.

use std::io;
use std::path::{Path, PathBuf};

use raft::Index;

use crate::fs::{FileRef, Fs};

/// Bytes of a segment header.
pub const SEGMENT_HEADER_LEN: usize = 24;
/// The first bytes of every segment.
pub const SEGMENT_MAGIC: [u8; 6] = *b"RKVWAL";
/// The on-disk format version written by this code.
pub const FORMAT_VERSION: u8 = 1;
const SUFFIX: &str = ".log";
/// The suffix of files being created; any left at open time are removed.
pub const TMP_SUFFIX: &str = ".tmp";

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
    if h[6] != FORMAT_VERSION {
        return Err(format!("unsupported format version {}", h[6]));
    }
    if h[8..16] != first.to_le_bytes() {
        return Err("segment header names a different first index than the file".into());
    }
    Ok(())
}

/// Creates the segment starting at `first` so that its name appears only with
/// a complete, durable header: write to a temporary name, `fdatasync`, rename,
/// `fsync` the directory. Returns the open file and its path.
pub fn create_segment(fs: &dyn Fs, dir: &Path, first: Index) -> Result<(FileRef, PathBuf), (PathBuf, io::Error)> {
    let path = dir.join(segment_name(first));
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", segment_name(first)));
    let with = |p: &Path| {
        let p = p.to_path_buf();
        move |e| (p, e)
    };
    let file = fs.create(&tmp).map_err(with(&tmp))?;
    file.write_all_at(&encode_header(first), 0).map_err(with(&tmp))?;
    file.sync_data().map_err(with(&tmp))?;
    fs.rename(&tmp, &path).map_err(with(&path))?;
    fs.sync_dir(dir).map_err(with(dir))?;
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
