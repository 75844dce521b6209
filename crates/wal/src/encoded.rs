//! [`EncodedEntries`]: entries whose records are encoded ahead of the write.
//!
//! A record depends on where it lands only through the salt of its segment
//! (the CRC covers its length, salt, kind and payload), so the framing and
//! checksum of a batch can be computed on the thread that submits it, with
//! the salt of the segment being written, while the writer thread is still
//! waiting for the previous batch's `fdatasync`. The writer then only copies
//! the bytes into its buffer, or adopts the buffer as its own: for large
//! batches that is most of its CPU work moved off the path between two
//! syncs. Records that land in another segment (a rotation came first) get
//! that segment's salt and their checksums again from the writer: one CRC
//! pass over the bytes, not a new encoding.

use raft::Entry;

use crate::record;

/// Log entries with their records already encoded, in order.
#[derive(Clone, Debug, Default)]
pub struct EncodedEntries {
    entries: Vec<Entry>,
    /// The records of `entries`, back to back.
    bytes: Vec<u8>,
    /// The salt they were encoded with.
    salt: u32,
}

impl EncodedEntries {
    /// Encodes the record of every entry (framing and CRC32C) with `salt`
    /// into a recycled buffer (its contents are dropped, its capacity
    /// reused: a large batch then costs no fresh pages to fault in and
    /// zero). [`crate::Wal::encode`] picks the salt.
    pub(crate) fn with_buffer(entries: Vec<Entry>, mut bytes: Vec<u8>, salt: u32) -> Self {
        bytes.clear();
        bytes.reserve(entries.iter().map(record::entry_len).sum());
        for e in &entries {
            record::encode_entry(e, salt, &mut bytes);
        }
        EncodedEntries { entries, bytes, salt }
    }

    /// The entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The encoded size of all the records.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// The entries, their records back to back, and the salt of those.
    pub(crate) fn into_parts(self) -> (Vec<Entry>, Vec<u8>, u32) {
        (self.entries, self.bytes, self.salt)
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
            Entry { term: 2, index: 3, payload: EntryPayload::Membership(Box::new(Membership::new([1, 2, 3]))) },
        ];
        let mut expected = Vec::new();
        entries.iter().for_each(|e| record::encode_entry(e, 7, &mut expected));
        let batch = EncodedEntries::with_buffer(entries.clone(), Vec::new(), 7);
        assert_eq!((batch.entries(), batch.encoded_len()), (&entries[..], expected.len()));
        assert_eq!(batch.into_parts(), (entries.clone(), expected.clone(), 7));
        // A recycled buffer's old contents never leak into the records.
        let recycled = EncodedEntries::with_buffer(entries.clone(), vec![0xAA; 4096], 7);
        assert_eq!(recycled.into_parts(), (entries, expected, 7));
    }
}
