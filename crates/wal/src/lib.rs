//! Durable storage for a raftkv node: a segmented write-ahead log, the hard
//! state and snapshot files, crash recovery, and a group-commit writer.
//!
//! A Raft node is only as safe as what it has on disk when the power goes.
//! This crate is what makes "persisted" true: [`Wal`] is the single-threaded
//! write side, [`WalWriter`] runs it on a dedicated thread doing group commit,
//! and [`WalStorage`] is the read side the Raft core sees, implementing
//! [`raft::Storage`].
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use raft::{Entry, EntryPayload, HardState, Storage};
//! use wal::{Op, Wal, WalOptions, WalWriter, WriterOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let writer = WalWriter::start(Wal::open(dir.path(), WalOptions::default())?, WriterOptions::default(), None)?;
//! let entry = Entry { term: 1, index: 1, payload: EntryPayload::Noop };
//! writer.submit(Op::HardState(HardState { term: 1, vote: 1, commit: 0 }))?;
//! let seq = writer.submit(Op::Append(vec![entry.clone()]))?;
//! let durable = writer.wait_durable(seq)?; // now it may be acknowledged
//! assert_eq!((durable.index, durable.term), (1, 1));
//! assert_eq!(writer.storage().entries(1, 2, u64::MAX), Ok(vec![entry]));
//! writer.shutdown()?;
//! # Ok(()) }
//! ```
//!
//! # Driving it from the Raft core's actions
//!
//! | [`raft::Action`] | with a [`WalWriter`] |
//! |---|---|
//! | `PersistHardState(hs)` | `submit(Op::HardState(hs))` |
//! | `PersistEntries(es)` | `submit(Op::Append(es))` (conflict repair included) |
//! | `PersistSnapshotChunk { meta, offset, data }` | at offset 0 [`WalWriter::begin_snapshot`]`(meta)`, dropping any partial one; then [`SnapshotWriter::write`]`(data)` after checking `offset == `[`SnapshotWriter::written`] |
//! | `InstallSnapshot(meta)` | [`SnapshotWriter::finish`], then `submit(Op::InstallSnapshot(file))` |
//! | `CompactLog(i)` | `submit(Op::Compact(i))` |
//! | `Send { after_persist: true, .. }` | send once [`WalWriter::wait_durable`] (or the `on_durable` callback) reports the seq of the last persist before it |
//!
//! A local snapshot (taken from the state machine) is written the same way:
//! `begin_snapshot`, `write` its bytes, `finish`, submit the install.
//! A new node is bootstrapped by installing a snapshot at index 0 whose
//! meta carries the initial membership.
//!
//! # Directory layout
//!
//! ```text
//! DIR/00000000000000000001.log     log segments, named by their first index (20 digits)
//! DIR/00000000000000100001.log
//! DIR/hardstate                    term, vote, commit: two checksummed slots
//! DIR/snap/00000000000000090000-00000000000000000003.snap   the snapshot (index-term)
//! DIR/next-segment.tmp             the next segment, prepared ahead of need
//! DIR/recycled-7.tmp               a segment removed from the log, kept for reuse
//! DIR/**/*.tmp                     files being created; removed at open
//! ```
//!
//! # Byte layout (all integers little-endian)
//!
//! **Record** — the unit of every file:
//! `[len u32][crc32c u32][kind u8][payload]` (*plain*), or in a segment
//! `[len u32][crc32c u32][salt u32][kind u8][payload]` (*salted*), where
//! `len` counts `kind` and `payload` (1 ..= 64 MiB) and the CRC32C
//! (Castagnoli, hardware accelerated) covers the 4 `len` bytes, the salt,
//! `kind` and `payload`. Kinds and payloads:
//!
//! | kind | record            | payload |
//! |------|-------------------|---------|
//! | 1    | entry, no-op      | `term u64, index u64` |
//! | 2    | entry, command    | `term u64, index u64, bytes` (to the end) |
//! | 3    | entry, membership | `term u64, index u64, membership` |
//! | 4    | hard state        | `seq u64, term u64, vote u64, commit u64` |
//! | 5    | snapshot meta     | `index u64, term u64, membership` |
//!
//! A membership is three id sets (voters, outgoing voters, learners), each
//! `count u32` then `count` ids `u64` in ascending order.
//!
//! **Segment**: a 24-byte header — magic `"RKVWAL"`, format version `u8`
//! (currently 3), a zero byte, `first_index u64`, `salt u32`, `crc32c u32`
//! of the 20 bytes before it — then salted entry records with consecutive
//! indices starting at `first_index` and carrying the header's salt, then
//! anything. The records end at the end of the file or at the first
//! record header that does not hold the salt (zeros, or a record of an
//! earlier use of the file). A record of the salt that fails its checksum
//! is damage: a torn write if it is in the last segment and no valid
//! record of the salt follows (cut there), corruption otherwise (refused,
//! naming file and offset); so is a valid record of the salt anywhere
//! after the end.
//!
//! A segment is preallocated before its first record, so appends overwrite
//! allocated blocks and `fdatasync` has no file size or allocation to write
//! (on ext4 a write that grows a file makes `fdatasync` write the inode
//! too): it is a file written full of zeros ahead of need, or — in the
//! steady state, where snapshots compact the log — a segment that
//! compaction, a snapshot or conflict repair removed, reused as it is
//! ([`WalOptions::recycle_segments`]).
//! Reuse writes nothing but the new header: the old records stay behind the
//! new ones, and the salt, drawn at random for each use of a file and
//! different from its last one, keeps them out of the log. A random salt
//! (not a counter) cannot be foreseen, so no stored data, such as a
//! client's value holding a forged record, can be made to read as a
//! record of a later use; and it does not look like the small numbers that
//! fill a segment, so the bytes at the end of the log match it by chance
//! with odds of 2^-32. (A segment cut by recovery or truncation loses
//! the rest of its preallocation: until the next rotation, its appends grow
//! the file again.)
//!
//! *Version 2* segments (plain records in a zero-filled file, ending at
//! the first all-zero record header, and everything after it zero) and
//! *version 1* ones (plain records to the end of the file) have the CRC of
//! the header at bytes 16..20 covering the 16 bytes before it, then four
//! zero bytes. They are still read; appends never go into one (the next
//! append starts a version 3 segment), and compaction deletes them rather
//! than reusing them. A reader of version 2 refuses a version 3 segment
//! rather than taking an old use's records for damage — though it says
//! "segment header checksum mismatch" (it checks bytes 16..20, now the
//! salt, as its header's CRC), not "unsupported version".
//!
//! **Hard state** (`hardstate`): a kind-4 record at byte 0 (slot 0) and one
//! at byte 512 (slot 1); the valid slot with the higher `seq` is current.
//! This file has no header of its own: its format is versioned by the record
//! kind (a new layout gets a new kind, which this code refuses to read as a
//! hard state rather than misread).
//!
//! **Snapshot**: a 16-byte header (magic `"RKVSNP"`, version `u8`, nine zero
//! bytes), a kind-5 record, the raw data, and a 16-byte trailer
//! `data_len u64, crc32c(data) u32, "RKVE"`.
//!
//! The codec is written by hand rather than with a serialization framework:
//! the byte layout *is* the durability contract, so it must be stated
//! exactly, stay stable across library upgrades, and be checked record by
//! record during recovery — things a derive hides. It is also ~200 lines.
//!
//! # Durability contract
//!
//! * Nothing is durable until [`Wal::sync`] returns (or
//!   [`WalWriter::wait_durable`] reports the operation's sequence number):
//!   only then may a vote, an append response or a client reply that depends
//!   on it leave the node.
//! * A sync writes the buffered records with one `write` and one
//!   `fdatasync`, then the hard state if its term or vote changed (one slot
//!   write, one `fdatasync`) — log first, so a durable commit index never
//!   points past the durable log. The next write to the log waits for that
//!   `fdatasync`, so at most one write is unsynced at any time: a crash
//!   leaves the log synced so far plus a torn prefix of that one write,
//!   which is what lets recovery call damage followed by a valid record
//!   corruption rather than a torn tail. (Overlapping the next write with
//!   the sync would break that: the disk may keep the later write and not
//!   the earlier one; docs/BENCHMARKS.md has the measured, withdrawn
//!   attempt.) A change that only raises `commit` does not cost a batch
//!   with records a second `fdatasync`: it is written with
//!   the next term/vote change or the next [`Wal::sync`] without records.
//!   The group-commit writer never forces it at all until it stops
//!   ([`Wal::sync_batch`]), so a commit announced by a heartbeat costs no
//!   I/O (Raft does not need `commit` to be durable; after a crash it may
//!   lag, never lead), and [`WalWriter::submit_commit`] queues such a
//!   change without even waking the writer: it goes with the next batch.
//! * [`WalWriter::submit`] encodes an append's records (framing and CRC32C,
//!   see [`EncodedEntries`]) on the caller's thread, so the writer thread
//!   only copies them: the next batch is encoded while the previous one is
//!   in its `fdatasync`. The bytes on disk are those [`Wal::append`] writes.
//! * A new segment is prepared ahead of need ([`Preallocation`]): a
//!   segment compaction removed, kept under a temporary name
//!   ([`WalOptions::recycle_segments`]), or else a file created as
//!   `next-segment.tmp`, zero-filled to the segment size and `fdatasync`ed
//!   (by default on a helper thread, off the writer's path). When it
//!   becomes the active segment its header (with a new salt) is written and synced,
//!   it is renamed to its segment name and the directory synced — all
//!   before any record goes into it — and the next preparation starts. So
//!   a segment appears only complete; the previous segment is complete
//!   and synced first, so only the last segment can ever end in a torn
//!   write. (A
//!   segment is preferably closed at the start of a batch, when the last
//!   sync has already sealed it, rather than in the middle of one, which
//!   costs an extra `fdatasync`: see [`WalOptions::segment_bytes_max`].)
//! * Hard state: a crash leaves the old or the new value (the slot not
//!   holding the latest value is the one written).
//! * Snapshots: written to a temporary file, synced, renamed, directory
//!   synced; only then is the log it covers dropped (whole segments below
//!   the snapshot's last entry) and older snapshots removed. A durable snapshot file *is* the installed snapshot: if a crash
//!   comes before the log was cleaned up, recovery finishes the job.
//! * Truncating a suffix (conflict repair) removes whole segments from the
//!   last backwards (deletes them, or renames them for reuse), syncing the
//!   directory after each, then cuts the
//!   containing segment (`set_len`, which also drops the rest of its zero
//!   tail) and syncs it: at every crash point the log is a prefix of the
//!   old one, and no old record is left past the new end to come back.
//!   (Zeroing the truncated records in place instead could be torn into
//!   zeros followed by an old record, which recovery must refuse.)
//!   Compaction removes (deletes or renames for reuse) whole segments
//!   below the snapshot and then syncs the directory; any subset of them
//!   is harmless to recovery, which deletes segments below the snapshot
//!   unread. A removed segment is reused only after that sync.
//! * Any write or sync error is fatal ([`WalError`]): the WAL refuses all
//!   further work and the runtime must stop. A failed `fsync` is never
//!   retried (the kernel may have dropped the dirty pages: "fsyncgate").
//!
//! # Recovery rules ([`Wal::open`])
//!
//! * Leftover `*.tmp` files (a half-prepared next segment among them) are
//!   removed; the newest snapshot is verified whole (a bad one refuses to
//!   open); older snapshots are removed.
//! * Every segment header and every record is verified, up to the end of
//!   the records (the end of the file, or a record header without the
//!   segment's salt; in version 1 and 2 segments, a zero record header).
//!   A record of the segment's salt that fails its length or checksum (in
//!   version 2, also non-zero bytes after the end of the records), in the
//!   **last** segment, with no valid record of the segment anywhere after
//!   it, is a torn write: the file is cut at the end of the last good
//!   record, with a `tracing::warn!`. Bytes after the end that are no
//!   record of the segment (zeros, an earlier use's records) are left as
//!   they are. Anything else — a damaged record in an earlier segment (in
//!   version 2, non-zero bytes after its end), damage or the end of the
//!   records followed by a valid record of the segment (a torn write
//!   leaves a prefix of itself, possibly ending in zeroed blocks, never a
//!   valid record after a hole; cutting there could drop synced records),
//!   a record whose checksum holds but whose
//!   index is out of sequence (a gap, even at the very end) or whose kind is
//!   not an entry, a missing segment (gap), a truncated
//!   or damaged segment header, a missing hard-state file beside a log —
//!   refuses to open with [`OpenError::Corrupt`] naming the file and the
//!   byte offset.
//! * Segments before the last one starting at or below the snapshot index
//!   hold only covered entries and are removed (a crash may leave any subset
//!   of them). The snapshot is then applied as installing it would: the log
//!   after it is kept if the log holds the snapshot's last entry with the
//!   same term, or starts right after the snapshot (it was written after
//!   the install); otherwise the whole log is dropped. (This is why the
//!   segment holding the snapshot's last entry is kept until a later
//!   snapshot: it is the evidence of which case applies.)
//! * The state returned is therefore what was synced before the crash, or
//!   more (operations that reached the disk without their sync completing).
//!
//! # Memory
//!
//! Per entry the index keeps its record's offset (4 bytes); terms are kept
//! as runs, membership entries whole. Entries appended since open are cached
//! up to [`WalOptions::cache_bytes_max`]; older reads go to the segments.
//! Appending costs the same however long the log is. On disk every
//! segment takes at least `segment_bytes_max` from its creation (it is
//! preallocated), plus one prepared segment ahead and up to
//! [`WalOptions::recycle_segments`] removed ones kept for reuse. Recovery reads each
//! segment whole, verifying it while a helper thread reads the next one.
//! A queued append holds its entries and their encoded records (about twice
//! its size) until written; the [`WalWriter`] keeps up to two encoding
//! buffers, each as large as the largest batch seen, for reuse.

#![forbid(unsafe_code)]

mod encoded;
mod error;
pub mod fs;
mod hard_state;
mod index;
mod prepare;
pub mod record;
mod recovery;
pub mod segment;
pub mod sim;
mod snapshot;
mod storage;
mod wal;
mod writer;

pub use encoded::EncodedEntries;
pub use error::{OpenError, WalError};
pub use hard_state::{HARD_STATE_FILE, HARD_STATE_SLOT_LEN};
pub use prepare::Preallocation;
pub use snapshot::{SNAPSHOT_DIR, SnapshotFile, SnapshotWriter, snapshot_name};
pub use storage::WalStorage;
pub use wal::{Wal, WalOptions};
pub use writer::{Durable, OnDurable, Op, WalWriter, WriterOptions};
