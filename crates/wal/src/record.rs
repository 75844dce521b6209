//! The record codec: `[len u32][crc32c u32][kind u8][payload]`, little-endian,
//! and in segments of format version 3 `[len u32][crc32c u32][salt u32][kind
//! u8][payload]` (see [`Framing`]).
//!
//! `len` counts `kind` and `payload`; the CRC32C covers everything but
//! itself (the `len` bytes, the salt if any, `kind` and `payload`), so a
//! flipped length or salt is caught like any other flip.

use std::collections::BTreeSet;

use bytes::Bytes;
use raft::{Entry, EntryPayload, HardState, Index, Membership, SnapshotMeta, Term};
use thiserror::Error;

/// Bytes before `kind` in a plain record: `len` and `crc`.
pub const RECORD_HEADER_LEN: usize = 8;
/// Bytes before `kind` in a salted record: `len`, `crc` and `salt`.
pub const SALTED_HEADER_LEN: usize = RECORD_HEADER_LEN + 4;
/// The largest `len` accepted (kind + payload): a bound on what one record
/// may make the reader allocate.
pub const RECORD_LEN_MAX: u32 = 64 << 20;

/// The kind byte of each record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A log entry without payload.
    EntryNoop = 1,
    /// A log entry carrying a command.
    EntryCommand = 2,
    /// A log entry carrying a membership.
    EntryMembership = 3,
    /// A hard-state slot.
    HardState = 4,
    /// A snapshot file's metadata.
    SnapshotMeta = 5,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::EntryNoop,
            2 => Kind::EntryCommand,
            3 => Kind::EntryMembership,
            4 => Kind::HardState,
            5 => Kind::SnapshotMeta,
            _ => return None,
        })
    }
}

/// How the records of a file are framed.
///
/// A segment file is reused after compaction (recycled) without being
/// cleared, so past its last record it may hold whole, valid records of an
/// earlier use. Each use of a segment file has its own salt, written in its
/// header and in every record (RocksDB's recyclable log format does the
/// same with its log number): a record of an earlier use carries another
/// salt, so recovery reads it as the end of the log rather than as a record
/// or as damage, and a scan for valid records after damage only checksums
/// the rare positions where the salt matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `[len][crc][kind][payload]`: the hard-state and snapshot files, and
    /// segments of format versions 1 and 2 (never recycled).
    Plain,
    /// `[len][crc][salt][kind][payload]`: segments of format version 3.
    /// Never 0, so a zero-filled header never matches.
    Salted(u32),
}

impl Framing {
    /// Bytes before `kind`.
    pub fn header_len(self) -> usize {
        match self {
            Framing::Plain => RECORD_HEADER_LEN,
            Framing::Salted(_) => SALTED_HEADER_LEN,
        }
    }

    /// The salt of salted records.
    pub fn salt(self) -> Option<u32> {
        match self {
            Framing::Salted(salt) => Some(salt),
            Framing::Plain => None,
        }
    }

    /// Whether `rest` starts with a header of this framing's salt: always
    /// for plain records; for salted ones, whether the salt field holds it
    /// (a record of an earlier use of the file, zeros or the end of the
    /// buffer do not).
    pub fn salt_matches(self, rest: &[u8]) -> bool {
        match self {
            Framing::Plain => true,
            Framing::Salted(salt) => rest.get(RECORD_HEADER_LEN..SALTED_HEADER_LEN) == Some(&salt.to_le_bytes()[..]),
        }
    }
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A log entry (kinds 1–3).
    Entry(Entry),
    /// A hard-state slot with its write sequence number (kind 4).
    HardState {
        /// Higher is newer.
        seq: u64,
        /// The value.
        hard_state: HardState,
    },
    /// Snapshot metadata (kind 5).
    SnapshotMeta(SnapshotMeta),
}

/// Why bytes are not a valid record.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ends before the record does.
    #[error("record is incomplete")]
    Incomplete,
    /// `len` is 0 or above [`RECORD_LEN_MAX`].
    #[error("record length {0} out of range")]
    BadLength(u32),
    /// The checksum does not match.
    #[error("record checksum mismatch")]
    BadChecksum,
    /// A salted record header without this use's salt: a record of an
    /// earlier use of the file, zeros, or damage.
    #[error("no record of this segment's salt")]
    OtherSalt,
    /// The kind byte is unknown.
    #[error("unknown record kind {0}")]
    BadKind(u8),
    /// The payload does not parse as its kind says.
    #[error("malformed record payload")]
    BadPayload,
}

/// Appends the salted record of `entry` (the only form a segment is written
/// in) to `out`.
pub fn encode_entry(entry: &Entry, salt: u32, out: &mut Vec<u8>) {
    let start = begin(out);
    out.extend_from_slice(&salt.to_le_bytes());
    put_entry(entry, out);
    finish(out, start, SALTED_HEADER_LEN);
}

/// Rewrites the records [`encode_entry`] wrote back to back into
/// `records`, of the lengths `lens`, for a segment of another salt: each
/// gets `salt` and its checksum again, and so becomes byte for byte what
/// `encode_entry` writes with that salt — at the cost of one CRC pass, not
/// a new encoding.
pub(crate) fn resalt(records: &mut [u8], lens: &[usize], salt: u32) {
    debug_assert_eq!(lens.iter().sum::<usize>(), records.len(), "lengths that do not cover the records");
    let mut at = 0;
    for &len in lens {
        let Some(rec) = records.get_mut(at..at + len) else {
            return;
        };
        rec[RECORD_HEADER_LEN..SALTED_HEADER_LEN].copy_from_slice(&salt.to_le_bytes());
        let crc = checksum(&rec[..4], &rec[RECORD_HEADER_LEN..]);
        rec[4..RECORD_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        at += len;
    }
}

/// Appends the kind and payload of an entry's record.
fn put_entry(entry: &Entry, out: &mut Vec<u8>) {
    let kind = match &entry.payload {
        EntryPayload::Noop => Kind::EntryNoop,
        EntryPayload::Command(_) => Kind::EntryCommand,
        EntryPayload::Membership(_) => Kind::EntryMembership,
    };
    out.push(kind as u8);
    put_u64(out, entry.term);
    put_u64(out, entry.index);
    match &entry.payload {
        EntryPayload::Noop => {}
        EntryPayload::Command(data) => out.extend_from_slice(data),
        EntryPayload::Membership(m) => put_membership(out, m),
    }
}

/// Appends the plain encoding of any record to `out`.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    encode_with(record, Framing::Plain, out);
}

/// Appends the encoding of any record to `out` as `framing` frames it.
pub fn encode_with(record: &Record, framing: Framing, out: &mut Vec<u8>) {
    let start = begin(out);
    if let Some(salt) = framing.salt() {
        out.extend_from_slice(&salt.to_le_bytes());
    }
    match record {
        Record::Entry(e) => put_entry(e, out),
        Record::HardState { seq, hard_state } => {
            out.push(Kind::HardState as u8);
            for v in [*seq, hard_state.term, hard_state.vote, hard_state.commit] {
                put_u64(out, v);
            }
        }
        Record::SnapshotMeta(meta) => {
            out.push(Kind::SnapshotMeta as u8);
            put_u64(out, meta.index);
            put_u64(out, meta.term);
            put_membership(out, &meta.membership);
        }
    }
    finish(out, start, framing.header_len());
}

/// The encoded size of `entry` as [`encode_entry`] writes it (salted).
pub fn entry_len(entry: &Entry) -> usize {
    let body = match &entry.payload {
        EntryPayload::Noop => 0,
        EntryPayload::Command(d) => d.len(),
        EntryPayload::Membership(m) => 12 + 8 * (m.voters.len() + m.voters_outgoing.len() + m.learners.len()),
    };
    SALTED_HEADER_LEN + 1 + 16 + body
}

fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER_LEN]);
    start
}

/// Fills in `len` and `crc` once the body is written (`header_len` bytes
/// after `start`; a salt, if any, is already in place).
fn finish(out: &mut [u8], start: usize, header_len: usize) {
    let len = (out.len() - start - header_len) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let crc = checksum(&len.to_le_bytes(), &out[start + RECORD_HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The CRC32C of a record: its `len` bytes, then everything after the
/// checksum field (salt, kind, payload).
fn checksum(len: &[u8], rest: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len), rest)
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_membership(out: &mut Vec<u8>, m: &Membership) {
    for set in [&m.voters, &m.voters_outgoing, &m.learners] {
        out.extend_from_slice(&(set.len() as u32).to_le_bytes());
        set.iter().for_each(|id| put_u64(out, *id));
    }
}

/// A checked record in a buffer, not yet decoded: its kind and body.
#[derive(Clone, Copy, Debug)]
pub struct Framed<'a> {
    /// The record's kind.
    pub kind: Kind,
    /// The payload after the kind byte.
    pub payload: &'a [u8],
    /// Total bytes the record occupies, header included.
    pub len: usize,
}

/// Checks the plain record at the start of `buf` (length, checksum, kind)
/// without decoding the payload.
pub fn frame(buf: &[u8]) -> Result<Framed<'_>, DecodeError> {
    frame_with(buf, Framing::Plain)
}

/// Checks the record at the start of `buf` as `framing` frames it: salt
/// (reported as [`DecodeError::OtherSalt`] before anything else), length,
/// checksum, kind.
pub fn frame_with(buf: &[u8], framing: Framing) -> Result<Framed<'_>, DecodeError> {
    let header_len = framing.header_len();
    let header = buf.get(..header_len).ok_or(DecodeError::Incomplete)?;
    if !framing.salt_matches(header) {
        return Err(DecodeError::OtherSalt);
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > RECORD_LEN_MAX {
        return Err(DecodeError::BadLength(len));
    }
    let total = header_len + len as usize;
    let rest = buf.get(RECORD_HEADER_LEN..total).ok_or(DecodeError::Incomplete)?;
    if checksum(&header[..4], rest) != crc {
        return Err(DecodeError::BadChecksum);
    }
    let body = &buf[header_len..total];
    let kind = Kind::from_u8(body[0]).ok_or(DecodeError::BadKind(body[0]))?;
    Ok(Framed { kind, payload: &body[1..], len: total })
}

impl Framed<'_> {
    /// Whether this is a log entry.
    pub fn is_entry(&self) -> bool {
        matches!(self.kind, Kind::EntryNoop | Kind::EntryCommand | Kind::EntryMembership)
    }

    /// `(term, index)` of an entry record, without decoding its payload.
    pub fn entry_id(&self) -> Result<(Term, Index), DecodeError> {
        let mut r = Reader(self.payload);
        Ok((r.u64()?, r.u64()?))
    }

    /// Decodes the payload (a command's bytes are copied out of the buffer).
    pub fn decode(&self) -> Result<Record, DecodeError> {
        let mut r = Reader(self.payload);
        let record = match self.kind {
            Kind::EntryNoop | Kind::EntryCommand | Kind::EntryMembership => {
                let (term, index) = (r.u64()?, r.u64()?);
                let payload = match self.kind {
                    Kind::EntryNoop => EntryPayload::Noop,
                    Kind::EntryCommand => EntryPayload::Command(Bytes::copy_from_slice(r.rest())),
                    _ => EntryPayload::Membership(Box::new(r.membership()?)),
                };
                Record::Entry(Entry { term, index, payload })
            }
            Kind::HardState => {
                let seq = r.u64()?;
                let hard_state = HardState { term: r.u64()?, vote: r.u64()?, commit: r.u64()? };
                Record::HardState { seq, hard_state }
            }
            Kind::SnapshotMeta => {
                Record::SnapshotMeta(SnapshotMeta { index: r.u64()?, term: r.u64()?, membership: r.membership()? })
            }
        };
        r.end()?;
        Ok(record)
    }
}

/// Decodes the plain record at the start of `buf`; returns it and its length.
pub fn decode(buf: &[u8]) -> Result<(Record, usize), DecodeError> {
    decode_with(buf, Framing::Plain)
}

/// Decodes the record at the start of `buf` as `framing` frames it; returns
/// it and its length.
pub fn decode_with(buf: &[u8], framing: Framing) -> Result<(Record, usize), DecodeError> {
    let framed = frame_with(buf, framing)?;
    Ok((framed.decode()?, framed.len))
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::BadPayload);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn set(&mut self) -> Result<BTreeSet<u64>, DecodeError> {
        let n = self.u32()? as usize;
        if n > self.0.len() / 8 {
            return Err(DecodeError::BadPayload);
        }
        (0..n).map(|_| self.u64()).collect()
    }

    fn membership(&mut self) -> Result<Membership, DecodeError> {
        Ok(Membership { voters: self.set()?, voters_outgoing: self.set()?, learners: self.set()? })
    }

    fn rest(&mut self) -> &[u8] {
        std::mem::take(&mut self.0)
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() { Ok(()) } else { Err(DecodeError::BadPayload) }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn ids() -> impl Strategy<Value = BTreeSet<u64>> {
        proptest::collection::btree_set(any::<u64>(), 0..6)
    }

    fn membership() -> impl Strategy<Value = Membership> {
        (ids(), ids(), ids()).prop_map(|(voters, voters_outgoing, learners)| Membership {
            voters,
            voters_outgoing,
            learners,
        })
    }

    fn record() -> impl Strategy<Value = Record> {
        let payload = prop_oneof![
            Just(EntryPayload::Noop),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(|v| EntryPayload::Command(Bytes::from(v))),
            membership().prop_map(|m| EntryPayload::Membership(Box::new(m))),
        ];
        prop_oneof![
            (any::<u64>(), any::<u64>(), payload).prop_map(|(term, index, payload)| Record::Entry(Entry {
                term,
                index,
                payload
            })),
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(seq, term, vote, commit)| {
                Record::HardState { seq, hard_state: HardState { term, vote, commit } }
            }),
            (any::<u64>(), any::<u64>(), membership()).prop_map(|(index, term, membership)| {
                Record::SnapshotMeta(SnapshotMeta { index, term, membership })
            }),
        ]
    }

    proptest! {
        #[test]
        fn every_record_kind_round_trips(rec in record(), tail in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut buf = Vec::new();
            encode(&rec, &mut buf);
            if let Record::Entry(e) = &rec {
                prop_assert_eq!(buf.len() + SALTED_HEADER_LEN - RECORD_HEADER_LEN, entry_len(e));
            }
            let len = buf.len();
            buf.extend_from_slice(&tail);
            prop_assert_eq!(decode(&buf), Ok((rec, len)));
        }

        #[test]
        fn resalted_records_are_those_encoded_with_the_new_salt(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..8),
            old in any::<u32>(),
            new in any::<u32>(),
        ) {
            let entries: Vec<Entry> = payloads.into_iter().enumerate().map(|(i, p)| {
                Entry { term: 3, index: i as u64 + 1, payload: EntryPayload::Command(Bytes::from(p)) }
            }).collect();
            let (mut records, mut expected) = (Vec::new(), Vec::new());
            entries.iter().for_each(|e| encode_entry(e, old, &mut records));
            entries.iter().for_each(|e| encode_entry(e, new, &mut expected));
            let lens: Vec<usize> = entries.iter().map(entry_len).collect();
            resalt(&mut records, &lens, new);
            prop_assert_eq!(records, expected);
        }

        #[test]
        fn any_flipped_bit_is_caught(rec in record(), bit in any::<usize>()) {
            let mut buf = Vec::new();
            encode(&rec, &mut buf);
            let bit = bit % (buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(&buf).is_err());
        }

        #[test]
        fn every_prefix_is_incomplete_or_invalid(rec in record(), cut in any::<usize>()) {
            let mut buf = Vec::new();
            encode(&rec, &mut buf);
            let cut = cut % buf.len();
            prop_assert!(decode(&buf[..cut]).is_err());
        }
    }

    fn entry() -> impl Strategy<Value = Entry> {
        record().prop_filter_map("an entry", |r| match r {
            Record::Entry(e) => Some(e),
            _ => None,
        })
    }

    proptest! {
        #[test]
        fn salted_entries_round_trip_and_other_salts_do_not_read(e in entry(), salt in 1..u32::MAX, tail in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut buf = Vec::new();
            encode_entry(&e, salt, &mut buf);
            prop_assert_eq!(buf.len(), entry_len(&e));
            buf.extend_from_slice(&tail);
            prop_assert_eq!(decode_with(&buf, Framing::Salted(salt)), Ok((Record::Entry(e), entry_len_of(&buf))));
            prop_assert_eq!(decode_with(&buf, Framing::Salted(salt + 1)).map(|r| r.1), Err(DecodeError::OtherSalt));
            prop_assert!(decode(&buf).is_err(), "a salted record is no plain one");
        }

        #[test]
        fn any_flipped_bit_of_a_salted_record_is_caught(e in entry(), salt in 1..u32::MAX, bit in any::<usize>()) {
            let mut buf = Vec::new();
            encode_entry(&e, salt, &mut buf);
            let bit = bit % (buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode_with(&buf, Framing::Salted(salt)).is_err());
        }
    }

    /// The length a salted record's header gives it.
    fn entry_len_of(buf: &[u8]) -> usize {
        SALTED_HEADER_LEN + u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize
    }

    #[test]
    fn the_salt_is_checksummed_too() {
        // A record of an earlier use whose salt field was rewritten to the
        // current salt (by damage) still does not read as a record.
        let e = Entry { term: 1, index: 7, payload: EntryPayload::Noop };
        let mut buf = Vec::new();
        encode_entry(&e, 5, &mut buf);
        buf[8..12].copy_from_slice(&6u32.to_le_bytes());
        assert_eq!(decode_with(&buf, Framing::Salted(6)).map(|r| r.1), Err(DecodeError::BadChecksum));
    }

    #[test]
    fn zeroes_are_not_a_record() {
        assert_eq!(decode_with(&[0; 64], Framing::Salted(1)).map(|r| r.1), Err(DecodeError::OtherSalt));
        assert_eq!(decode(&[0; 64]).map(|r| r.1), Err(DecodeError::BadLength(0)));
    }
}
