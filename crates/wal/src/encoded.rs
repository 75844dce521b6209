//! [`EncodedEntries`]: entries whose records are encoded ahead of the write.
//!
//! A record does not depend on where it lands (the CRC covers only its own
//! length, kind and payload), so the framing and checksum of a batch can be
//! computed on the thread that submits it, while the writer thread is still
//! waiting for the previous batch's `fdatasync`. The writer then only copies
//! the bytes into its buffer: for large batches that is most of its CPU work
//! moved off the path between two syncs.

use raft::Entry;

use crate::record;

/// Log entries with their records already encoded, in order.
#[derive(Clone, Debug, Default)]
pub struct EncodedEntries {
    entries: Vec<Entry>,
    /// The records of `entries`, back to back.
    bytes: Vec<u8>,
}

impl EncodedEntries {
    /// Encodes the record of every entry (framing and CRC32C).
    pub fn new(entries: Vec<Entry>) -> Self {
        EncodedEntries::with_buffer(entries, Vec::new())
    }

    /// [`EncodedEntries::new`] into a recycled buffer (its contents are
    /// dropped, its capacity reused: a large batch then costs no fresh
    /// pages to fault in and zero).
    pub(crate) fn with_buffer(entries: Vec<Entry>, mut bytes: Vec<u8>) -> Self {
        bytes.clear();
        bytes.reserve(entries.iter().map(record::entry_len).sum());
        for e in &entries {
            record::encode_entry(e, &mut bytes);
        }
        EncodedEntries { entries, bytes }
    }

    /// The entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The encoded size of all the records.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// The entries and their records, back to back.
    pub(crate) fn into_parts(self) -> (Vec<Entry>, Vec<u8>) {
        (self.entries, self.bytes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bytes::Bytes;
    use raft::{EntryPayload, Membership};

    use super::*;

    #[test]
    fn records_are_those_encode_entry_writes() {
        let entries = vec![
            Entry { term: 1, index: 1, payload: EntryPayload::Noop },
            Entry { term: 1, index: 2, payload: EntryPayload::Command(Bytes::from_static(b"set k v")) },
            Entry { term: 2, index: 3, payload: EntryPayload::Membership(Membership::new([1, 2, 3])) },
        ];
        let mut expected = Vec::new();
        entries.iter().for_each(|e| record::encode_entry(e, &mut expected));
        let batch = EncodedEntries::new(entries.clone());
        assert_eq!((batch.entries(), batch.encoded_len()), (&entries[..], expected.len()));
        assert_eq!(batch.into_parts(), (entries.clone(), expected.clone()));
        // A recycled buffer's old contents never leak into the records.
        let recycled = EncodedEntries::with_buffer(entries.clone(), vec![0xAA; 4096]);
        assert_eq!(recycled.into_parts(), (entries, expected));
    }
}
