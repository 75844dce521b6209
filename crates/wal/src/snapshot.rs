//! Snapshot files: one per snapshot, written whole under a temporary name.
//!
//! Layout of `snap/{index:020}-{term:020}.snap`:
//! `magic "RKVSNP" (6) | version u8 | reserved (9 bytes of 0)` (16 bytes), then
//! one `SnapshotMeta` record, then the data bytes as the state machine wrote
//! them, then a 16-byte trailer `data_len u64 | crc32c(data) u32 | "RKVE"`.
//! The data is stored raw (not framed) so a chunk at any offset is one `pread`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft::{Index, SnapshotMeta, Term};

use crate::error::{OpenError, WalError};
use crate::fs::{FileRef, Fs};
use crate::record::{self, Record};
use crate::segment::TMP_SUFFIX;

/// The snapshot file format version written and read by this code.
const FORMAT_VERSION: u8 = 1;

/// The name of the snapshot directory inside the WAL directory.
pub const SNAPSHOT_DIR: &str = "snap";
const MAGIC: [u8; 6] = *b"RKVSNP";
const TRAILER_MAGIC: [u8; 4] = *b"RKVE";
const HEADER_LEN: u64 = 16;
const TRAILER_LEN: u64 = 16;
/// How much is read at a time when verifying a snapshot's checksum.
const VERIFY_CHUNK_BYTES: usize = 1 << 20;

/// The file name of the snapshot `(index, term)`.
pub fn snapshot_name(index: Index, term: Term) -> String {
    format!("{index:020}-{term:020}.snap")
}

/// `(index, term)` from a snapshot file name, if it is one.
pub fn parse_snapshot_name(name: &str) -> Option<(Index, Term)> {
    let (i, t) = name.strip_suffix(".snap")?.split_once('-')?;
    if i.len() != 20 || t.len() != 20 {
        return None;
    }
    Some((i.parse().ok()?, t.parse().ok()?))
}

/// A complete, durable snapshot file.
#[derive(Clone, Debug)]
pub struct SnapshotFile {
    meta: SnapshotMeta,
    path: PathBuf,
    file: FileRef,
    data_offset: u64,
    data_len: u64,
}

impl SnapshotFile {
    /// What the snapshot covers.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The length of the data.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Up to `max_len` bytes of data from `offset`, and whether they reach the
    /// end.
    ///
    /// # Panics
    /// On a read error: a disk that fails a read of a verified file is not
    /// something a Raft node can work around (see [`crate::WalStorage`]).
    pub fn read_chunk(&self, offset: u64, max_len: u64) -> (Bytes, bool) {
        let start = offset.min(self.data_len);
        let end = start.saturating_add(max_len).min(self.data_len);
        let mut buf = vec![0; (end - start) as usize];
        if let Err(e) = self.file.read_exact_at(&mut buf, self.data_offset + start) {
            panic!("fatal: reading {} at offset {}: {e}", self.path.display(), self.data_offset + start);
        }
        (Bytes::from(buf), end == self.data_len)
    }
}

/// Streams one snapshot into a temporary file; [`SnapshotWriter::finish`]
/// makes it durable and visible. A writer dropped unfinished leaves its
/// temporary file behind until the next open removes it.
#[derive(Debug)]
pub struct SnapshotWriter {
    meta: SnapshotMeta,
    dir: PathBuf,
    tmp: PathBuf,
    file: FileRef,
    data_offset: u64,
    data_len: u64,
    crc: u32,
    fs: std::sync::Arc<dyn Fs>,
}

impl SnapshotWriter {
    /// Starts the snapshot `meta` in `dir` (the snapshot directory).
    pub fn create(fs: std::sync::Arc<dyn Fs>, dir: &Path, meta: SnapshotMeta) -> Result<Self, WalError> {
        let name = snapshot_name(meta.index, meta.term);
        let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
        let file = fs.create(&tmp).map_err(|e| WalError::io("create", &tmp, e))?;
        let mut head = vec![0u8; HEADER_LEN as usize];
        head[..6].copy_from_slice(&MAGIC);
        head[6] = FORMAT_VERSION;
        record::encode(&Record::SnapshotMeta(meta.clone()), &mut head);
        file.write_all_at(&head, 0).map_err(|e| WalError::io("write", &tmp, e))?;
        let data_offset = head.len() as u64;
        Ok(SnapshotWriter { meta, dir: dir.to_path_buf(), tmp, file, data_offset, data_len: 0, crc: 0, fs })
    }

    /// How many data bytes have been written: the offset the next chunk of a
    /// snapshot being received must carry.
    pub fn written(&self) -> u64 {
        self.data_len
    }

    /// What the snapshot covers.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// Appends the next chunk of data.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), WalError> {
        let at = self.data_offset + self.data_len;
        self.file.write_all_at(chunk, at).map_err(|e| WalError::io("write", &self.tmp, e))?;
        self.crc = crc32c::crc32c_append(self.crc, chunk);
        self.data_len += chunk.len() as u64;
        Ok(())
    }

    /// Writes the trailer, `fdatasync`s, renames into place and `fsync`s the
    /// directory. The snapshot is durable when this returns.
    pub fn finish(self) -> Result<SnapshotFile, WalError> {
        let mut trailer = Vec::with_capacity(TRAILER_LEN as usize);
        trailer.extend_from_slice(&self.data_len.to_le_bytes());
        trailer.extend_from_slice(&self.crc.to_le_bytes());
        trailer.extend_from_slice(&TRAILER_MAGIC);
        let io = |op| {
            let p = self.tmp.clone();
            move |e| WalError::io(op, p, e)
        };
        self.file.write_all_at(&trailer, self.data_offset + self.data_len).map_err(io("write"))?;
        self.file.sync_data().map_err(io("fdatasync"))?;
        let path = self.dir.join(snapshot_name(self.meta.index, self.meta.term));
        self.fs.rename(&self.tmp, &path).map_err(|e| WalError::io("rename", &path, e))?;
        self.fs.sync_dir(&self.dir).map_err(|e| WalError::io("fsync dir", &self.dir, e))?;
        let SnapshotWriter { meta, file, data_offset, data_len, .. } = self;
        Ok(SnapshotFile { meta, path, file, data_offset, data_len })
    }
}

/// Opens and fully verifies the snapshot at `path`.
pub fn open_snapshot(fs: &dyn Fs, path: &Path) -> Result<SnapshotFile, OpenError> {
    let corrupt = |offset, what: &str| OpenError::corrupt(path, offset, what);
    let io = |e| OpenError::io(path, e);
    let file = fs.open(path).map_err(io)?;
    let len = file.len().map_err(io)?;
    if len < HEADER_LEN + record::RECORD_HEADER_LEN as u64 + TRAILER_LEN {
        return Err(corrupt(0, "snapshot file too short"));
    }
    let mut head = vec![0; (HEADER_LEN as usize + record::RECORD_HEADER_LEN).min(len as usize)];
    file.read_exact_at(&mut head, 0).map_err(io)?;
    if head[..6] != MAGIC || head[6] != FORMAT_VERSION {
        return Err(corrupt(0, "bad snapshot header"));
    }
    let rec_len = u32::from_le_bytes([head[16], head[17], head[18], head[19]]) as u64;
    let data_offset = HEADER_LEN + record::RECORD_HEADER_LEN as u64 + rec_len;
    if data_offset + TRAILER_LEN > len {
        return Err(corrupt(HEADER_LEN, "snapshot metadata record out of bounds"));
    }
    let mut rec = vec![0; (data_offset - HEADER_LEN) as usize];
    file.read_exact_at(&mut rec, HEADER_LEN).map_err(io)?;
    let Ok((Record::SnapshotMeta(meta), _)) = record::decode(&rec) else {
        return Err(corrupt(HEADER_LEN, "bad snapshot metadata record"));
    };
    let data_len = len - TRAILER_LEN - data_offset;
    verify_data(&*file, path, data_offset, data_len)?;
    Ok(SnapshotFile { meta, path: path.to_path_buf(), file, data_offset, data_len })
}

fn verify_data(file: &dyn crate::fs::File, path: &Path, offset: u64, len: u64) -> Result<(), OpenError> {
    let io = |e| OpenError::io(path, e);
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.read_exact_at(&mut trailer, offset + len).map_err(io)?;
    let stored_len = u64::from_le_bytes([
        trailer[0], trailer[1], trailer[2], trailer[3], trailer[4], trailer[5], trailer[6], trailer[7],
    ]);
    if trailer[12..] != TRAILER_MAGIC || stored_len != len {
        return Err(OpenError::corrupt(path, offset + len, "bad snapshot trailer"));
    }
    let mut crc = 0;
    let mut buf = vec![0; VERIFY_CHUNK_BYTES];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(VERIFY_CHUNK_BYTES as u64) as usize;
        file.read_exact_at(&mut buf[..n], offset + at).map_err(io)?;
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        at += n as u64;
    }
    if crc.to_le_bytes() != trailer[8..12] {
        return Err(OpenError::corrupt(path, offset, "snapshot data checksum mismatch"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_snapshot_name(&snapshot_name(7, 3)), Some((7, 3)));
        assert_eq!(parse_snapshot_name("7-3.snap"), None);
    }
}
