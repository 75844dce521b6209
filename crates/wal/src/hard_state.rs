//! The hard-state file: two checksummed slots, written alternately.
//!
//! File `hardstate` holds slot 0 at byte 0 and slot 1 at byte
//! [`HARD_STATE_SLOT_LEN`]. Each slot is one `HardState` record carrying a
//! sequence number. A write goes to the slot *not* holding the latest value,
//! then `fdatasync`: a crash mid-write can only damage that slot, and the
//! other still holds the previous value. On open the valid slot with the
//! higher sequence number wins. One write and one sync per update, against
//! three syncs for write-temp-and-rename.

use std::path::{Path, PathBuf};

use raft::HardState;

use crate::error::{OpenError, WalError};
use crate::fs::{FileRef, Fs};
use crate::record::{self, Record};

/// The name of the hard-state file.
pub const HARD_STATE_FILE: &str = "hardstate";
/// The distance between the two slots (one sector, so a torn write of one
/// slot cannot reach the other).
pub const HARD_STATE_SLOT_LEN: u64 = 512;
const RECORD_LEN: usize = record::RECORD_HEADER_LEN + 1 + 32;

/// The open hard-state file.
#[derive(Debug)]
pub struct HardStateFile {
    file: FileRef,
    path: PathBuf,
    seq: u64,
    current: HardState,
}

fn encode(seq: u64, hard_state: HardState) -> Vec<u8> {
    let mut buf = Vec::with_capacity(RECORD_LEN);
    record::encode(&Record::HardState { seq, hard_state }, &mut buf);
    buf
}

/// Where the value with sequence number `seq` goes: odd and even numbers
/// alternate, so a write never touches the slot holding the latest value.
fn slot_offset(seq: u64) -> u64 {
    (seq % 2) * HARD_STATE_SLOT_LEN
}

impl HardStateFile {
    /// Creates the file holding the default (zero) hard state, durably: a
    /// temporary file, synced, renamed into place, directory synced.
    pub fn create(fs: &dyn Fs, dir: &Path) -> Result<Self, OpenError> {
        let path = dir.join(HARD_STATE_FILE);
        let tmp = dir.join(format!("{HARD_STATE_FILE}.tmp"));
        let file = fs.create(&tmp).map_err(|e| OpenError::io(&tmp, e))?;
        let io = |e| OpenError::io(&tmp, e);
        file.write_all_at(&encode(1, HardState::default()), slot_offset(1)).map_err(io)?;
        file.sync_data().map_err(io)?;
        fs.rename(&tmp, &path).map_err(|e| OpenError::io(&path, e))?;
        fs.sync_dir(dir).map_err(|e| OpenError::io(dir, e))?;
        Ok(HardStateFile { file, path, seq: 1, current: HardState::default() })
    }

    /// Opens the existing file and picks the newest valid slot.
    pub fn open(fs: &dyn Fs, dir: &Path) -> Result<Self, OpenError> {
        let path = dir.join(HARD_STATE_FILE);
        let file = fs.open(&path).map_err(|e| OpenError::io(&path, e))?;
        let len = file.len().map_err(|e| OpenError::io(&path, e))?;
        let mut best: Option<(u64, HardState)> = None;
        for slot in 0..2u64 {
            let offset = slot * HARD_STATE_SLOT_LEN;
            let avail = len.saturating_sub(offset).min(RECORD_LEN as u64) as usize;
            let mut buf = vec![0; avail];
            file.read_exact_at(&mut buf, offset).map_err(|e| OpenError::io(&path, e))?;
            if let Ok((Record::HardState { seq, hard_state }, _)) = record::decode(&buf)
                && best.is_none_or(|(s, _)| seq > s)
            {
                best = Some((seq, hard_state));
            }
        }
        let Some((seq, current)) = best else {
            return Err(OpenError::corrupt(&path, 0, "neither hard-state slot is valid"));
        };
        Ok(HardStateFile { file, path, seq, current })
    }

    /// The latest durable value.
    pub fn current(&self) -> HardState {
        self.current
    }

    /// Makes `hs` durable (one slot write and one `fdatasync`).
    pub fn write(&mut self, hs: HardState) -> Result<(), WalError> {
        let seq = self.seq + 1;
        let offset = slot_offset(seq);
        let err = |op| {
            let path = self.path.clone();
            move |e| WalError::io(op, path, e)
        };
        self.file.write_all_at(&encode(seq, hs), offset).map_err(err("write"))?;
        self.file.sync_data().map_err(err("fdatasync"))?;
        self.seq = seq;
        self.current = hs;
        Ok(())
    }
}
