//! The wire format of peer messages: a versioned binary codec written for
//! Raft's messages.
//!
//! Written by hand, like the WAL's records: the format is a compatibility
//! contract between nodes of different versions and must be stated byte for
//! byte; it decodes entry payloads as slices of the received buffer (no
//! copy); and it must reject arbitrary bytes from the network with an error,
//! never a panic — all easier to guarantee in ~300 lines than through a
//! serialization framework.
//!
//! # Layout (integers little-endian)
//!
//! A message: `version u8` (= [`VERSION`]), `kind u8`, `from u64`, `to u64`,
//! `term u64`, then the body of its kind:
//!
//! | kind | message | body |
//! |---|---|---|
//! | 1 | RequestVote | `flags u8` (1 = pre-vote, 2 = leadership transfer), `last_log_index u64`, `last_log_term u64` |
//! | 2 | RequestVoteResponse | `flags u8` (1 = pre-vote, 2 = granted) |
//! | 3 | AppendEntries | `prev_log_index u64`, `prev_log_term u64`, `leader_commit u64`, `count u32`, `count` entries |
//! | 4 | AppendEntriesResponse | `success u8`, `index u64`, `hint u8` (0 none, 1 index only, 2 term and index), [`term u64`], [`index u64`] |
//! | 5 | Heartbeat | `commit u64`, `read_round u64` |
//! | 6 | HeartbeatResponse | `read_round u64` |
//! | 7 | TimeoutNow | — |
//! | 8 | InstallSnapshot | snapshot meta, `offset u64`, `done u8`, `len u32`, `len` bytes |
//! | 9 | InstallSnapshotResponse | `snapshot_index u64`, `next_offset u64`, `done u8` |
//!
//! An entry: `term u64`, `index u64`, `kind u8` (0 no-op, 1 command, 2
//! membership), then for a command `len u32` and the bytes, for a membership
//! the membership. A membership: three id sets (voters, outgoing voters,
//! learners), each `count u32` then the ids `u64`. Snapshot meta: `index u64`,
//! `term u64`, membership.
//!
//! The transport frames each message with its length (see `transport`); the
//! codec never sees a partial message.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

use raft::{
    AppendEntries, AppendEntriesResponse, ConflictHint, Entry, EntryPayload, Heartbeat, HeartbeatResponse,
    InstallSnapshot, InstallSnapshotResponse, Membership, Message, MessageBody, NodeId, RequestVote,
    RequestVoteResponse, SnapshotMeta,
};

/// The codec version this build writes and reads.
pub const VERSION: u8 = 1;

/// Why bytes from a peer are not a message.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The message ends before a field it needs.
    #[error("message truncated at byte {at}: {needed} more bytes needed")]
    Truncated {
        /// Where the missing field starts.
        at: usize,
        /// How many bytes it needs.
        needed: usize,
    },
    /// A codec version this build does not speak.
    #[error("unsupported codec version {0}")]
    Version(u8),
    /// An unknown message, entry or hint kind.
    #[error("unknown {what} kind {kind}")]
    Kind {
        /// What was being decoded.
        what: &'static str,
        /// The kind byte.
        kind: u8,
    },
    /// A count larger than the message could possibly hold.
    #[error("count {count} of {what} exceeds what the message holds")]
    Count {
        /// What was being counted.
        what: &'static str,
        /// The count claimed.
        count: u32,
    },
    /// Bytes left over after a complete message.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
}

// ---- encoding ---------------------------------------------------------------------

/// Appends the encoding of `m` to `out`.
pub fn encode(m: &Message, out: &mut BytesMut) {
    out.put_u8(VERSION);
    out.put_u8(kind_of(&m.body));
    out.put_u64_le(m.from);
    out.put_u64_le(m.to);
    out.put_u64_le(m.term);
    match &m.body {
        MessageBody::RequestVote(rv) => {
            out.put_u8(u8::from(rv.pre_vote) | u8::from(rv.leadership_transfer) << 1);
            out.put_u64_le(rv.last_log_index);
            out.put_u64_le(rv.last_log_term);
        }
        MessageBody::RequestVoteResponse(r) => out.put_u8(u8::from(r.pre_vote) | u8::from(r.granted) << 1),
        MessageBody::AppendEntries(ae) => {
            out.put_u64_le(ae.prev_log_index);
            out.put_u64_le(ae.prev_log_term);
            out.put_u64_le(ae.leader_commit);
            out.put_u32_le(ae.entries.len() as u32);
            for e in &ae.entries {
                encode_entry(e, out);
            }
        }
        MessageBody::AppendEntriesResponse(r) => encode_append_response(r, out),
        MessageBody::Heartbeat(hb) => {
            out.put_u64_le(hb.commit);
            out.put_u64_le(hb.read_round);
        }
        MessageBody::HeartbeatResponse(r) => out.put_u64_le(r.read_round),
        MessageBody::TimeoutNow => {}
        MessageBody::InstallSnapshot(s) => {
            encode_meta(&s.meta, out);
            out.put_u64_le(s.offset);
            out.put_u8(u8::from(s.done));
            out.put_u32_le(s.data.len() as u32);
            out.put_slice(&s.data);
        }
        MessageBody::InstallSnapshotResponse(r) => {
            out.put_u64_le(r.snapshot_index);
            out.put_u64_le(r.next_offset);
            out.put_u8(u8::from(r.done));
        }
    }
}

/// The encoded size of `m`, without encoding it.
pub fn encoded_len(m: &Message) -> usize {
    let mut out = BytesMut::new();
    encode(m, &mut out);
    out.len()
}

fn kind_of(body: &MessageBody) -> u8 {
    match body {
        MessageBody::RequestVote(_) => 1,
        MessageBody::RequestVoteResponse(_) => 2,
        MessageBody::AppendEntries(_) => 3,
        MessageBody::AppendEntriesResponse(_) => 4,
        MessageBody::Heartbeat(_) => 5,
        MessageBody::HeartbeatResponse(_) => 6,
        MessageBody::TimeoutNow => 7,
        MessageBody::InstallSnapshot(_) => 8,
        MessageBody::InstallSnapshotResponse(_) => 9,
    }
}

fn encode_append_response(r: &AppendEntriesResponse, out: &mut BytesMut) {
    out.put_u8(u8::from(r.success));
    out.put_u64_le(r.index);
    match r.conflict {
        None => out.put_u8(0),
        Some(ConflictHint { term: None, index }) => {
            out.put_u8(1);
            out.put_u64_le(index);
        }
        Some(ConflictHint { term: Some(term), index }) => {
            out.put_u8(2);
            out.put_u64_le(term);
            out.put_u64_le(index);
        }
    }
}

fn encode_entry(e: &Entry, out: &mut BytesMut) {
    out.put_u64_le(e.term);
    out.put_u64_le(e.index);
    match &e.payload {
        EntryPayload::Noop => out.put_u8(0),
        EntryPayload::Command(data) => {
            out.put_u8(1);
            out.put_u32_le(data.len() as u32);
            out.put_slice(data);
        }
        EntryPayload::Membership(m) => {
            out.put_u8(2);
            encode_membership(m, out);
        }
    }
}

fn encode_membership(m: &Membership, out: &mut BytesMut) {
    for set in [&m.voters, &m.voters_outgoing, &m.learners] {
        out.put_u32_le(set.len() as u32);
        for id in set {
            out.put_u64_le(*id);
        }
    }
}

fn encode_meta(meta: &SnapshotMeta, out: &mut BytesMut) {
    out.put_u64_le(meta.index);
    out.put_u64_le(meta.term);
    encode_membership(&meta.membership, out);
}

// ---- decoding ---------------------------------------------------------------------

/// Decodes one whole message from `buf` (payload slices share its memory).
pub fn decode(buf: Bytes) -> Result<Message, DecodeError> {
    let mut r = Reader { total: buf.len(), buf };
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let kind = r.u8()?;
    let (from, to, term) = (r.u64()?, r.u64()?, r.u64()?);
    let body = match kind {
        1 => {
            let flags = r.u8()?;
            let (last_log_index, last_log_term) = (r.u64()?, r.u64()?);
            let (pre_vote, leadership_transfer) = (flags & 1 != 0, flags & 2 != 0);
            MessageBody::RequestVote(RequestVote { pre_vote, leadership_transfer, last_log_index, last_log_term })
        }
        2 => {
            let flags = r.u8()?;
            MessageBody::RequestVoteResponse(RequestVoteResponse { pre_vote: flags & 1 != 0, granted: flags & 2 != 0 })
        }
        3 => MessageBody::AppendEntries(decode_append(&mut r)?),
        4 => MessageBody::AppendEntriesResponse(decode_append_response(&mut r)?),
        5 => MessageBody::Heartbeat(Heartbeat { commit: r.u64()?, read_round: r.u64()? }),
        6 => MessageBody::HeartbeatResponse(HeartbeatResponse { read_round: r.u64()? }),
        7 => MessageBody::TimeoutNow,
        8 => {
            let meta = decode_meta(&mut r)?;
            let (offset, done) = (r.u64()?, r.u8()? != 0);
            let len = r.u32()? as usize;
            MessageBody::InstallSnapshot(InstallSnapshot { meta, offset, data: r.bytes(len)?, done })
        }
        9 => {
            let (snapshot_index, next_offset, done) = (r.u64()?, r.u64()?, r.u8()? != 0);
            MessageBody::InstallSnapshotResponse(InstallSnapshotResponse { snapshot_index, next_offset, done })
        }
        kind => return Err(DecodeError::Kind { what: "message", kind }),
    };
    if r.buf.has_remaining() {
        return Err(DecodeError::Trailing(r.buf.remaining()));
    }
    Ok(Message { from, to, term, body })
}

fn decode_append(r: &mut Reader) -> Result<AppendEntries, DecodeError> {
    let (prev_log_index, prev_log_term, leader_commit) = (r.u64()?, r.u64()?, r.u64()?);
    /// The smallest encoded entry: term, index, kind.
    const MIN_ENTRY_BYTES: usize = 17;
    let count = r.count("entry", MIN_ENTRY_BYTES)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push(decode_entry(r)?);
    }
    Ok(AppendEntries { prev_log_index, prev_log_term, entries, leader_commit })
}

fn decode_append_response(r: &mut Reader) -> Result<AppendEntriesResponse, DecodeError> {
    let (success, index) = (r.u8()? != 0, r.u64()?);
    let conflict = match r.u8()? {
        0 => None,
        1 => Some(ConflictHint { term: None, index: r.u64()? }),
        2 => Some(ConflictHint { term: Some(r.u64()?), index: r.u64()? }),
        kind => return Err(DecodeError::Kind { what: "conflict hint", kind }),
    };
    Ok(AppendEntriesResponse { success, index, conflict })
}

fn decode_entry(r: &mut Reader) -> Result<Entry, DecodeError> {
    let (term, index) = (r.u64()?, r.u64()?);
    let payload = match r.u8()? {
        0 => EntryPayload::Noop,
        1 => {
            let len = r.u32()? as usize;
            EntryPayload::Command(r.bytes(len)?)
        }
        2 => EntryPayload::Membership(Box::new(decode_membership(r)?)),
        kind => return Err(DecodeError::Kind { what: "entry", kind }),
    };
    Ok(Entry { term, index, payload })
}

fn decode_membership(r: &mut Reader) -> Result<Membership, DecodeError> {
    let mut sets: [BTreeSet<NodeId>; 3] = Default::default();
    for set in &mut sets {
        let count = r.count("node id", 8)?;
        for _ in 0..count {
            set.insert(r.u64()?);
        }
    }
    let [voters, voters_outgoing, learners] = sets;
    Ok(Membership { voters, voters_outgoing, learners })
}

fn decode_meta(r: &mut Reader) -> Result<SnapshotMeta, DecodeError> {
    Ok(SnapshotMeta { index: r.u64()?, term: r.u64()?, membership: decode_membership(r)? })
}

/// A bounds-checked cursor over a received message.
struct Reader {
    buf: Bytes,
    total: usize,
}

impl Reader {
    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.remaining() < n {
            return Err(DecodeError::Truncated { at: self.total - self.buf.remaining(), needed: n });
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_u32_le())
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.need(8)?;
        Ok(self.buf.get_u64_le())
    }

    fn bytes(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        self.need(len)?;
        Ok(self.buf.split_to(len))
    }

    /// A count of items of at least `min_bytes` each, checked against what is
    /// left so a hostile count cannot make us allocate.
    fn count(&mut self, what: &'static str, min_bytes: usize) -> Result<usize, DecodeError> {
        let count = self.u32()?;
        if (count as usize).saturating_mul(min_bytes) > self.buf.remaining() {
            return Err(DecodeError::Count { what, count });
        }
        Ok(count as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn membership() -> impl Strategy<Value = Membership> {
        let set = || prop::collection::btree_set(1u64..10, 0..4);
        (set(), set(), set()).prop_map(|(voters, voters_outgoing, learners)| Membership {
            voters,
            voters_outgoing,
            learners,
        })
    }

    fn entry() -> impl Strategy<Value = Entry> {
        let payload = prop_oneof![
            Just(EntryPayload::Noop),
            prop::collection::vec(any::<u8>(), 0..64).prop_map(|v| EntryPayload::Command(Bytes::from(v))),
            membership().prop_map(|m| EntryPayload::Membership(Box::new(m))),
        ];
        (any::<u64>(), any::<u64>(), payload).prop_map(|(term, index, payload)| Entry { term, index, payload })
    }

    fn body() -> impl Strategy<Value = MessageBody> {
        let meta = (any::<u64>(), any::<u64>(), membership()).prop_map(|(index, term, membership)| SnapshotMeta {
            index,
            term,
            membership,
        });
        let hint = prop::option::of((prop::option::of(any::<u64>()), any::<u64>()))
            .prop_map(|h| h.map(|(term, index)| ConflictHint { term, index }));
        prop_oneof![
            (any::<bool>(), any::<bool>(), any::<u64>(), any::<u64>()).prop_map(|(p, t, i, lt)| {
                MessageBody::RequestVote(RequestVote {
                    pre_vote: p,
                    leadership_transfer: t,
                    last_log_index: i,
                    last_log_term: lt,
                })
            }),
            (any::<bool>(), any::<bool>()).prop_map(|(pre_vote, granted)| {
                MessageBody::RequestVoteResponse(RequestVoteResponse { pre_vote, granted })
            }),
            (any::<u64>(), any::<u64>(), any::<u64>(), prop::collection::vec(entry(), 0..5)).prop_map(
                |(prev_log_index, prev_log_term, leader_commit, entries)| {
                    MessageBody::AppendEntries(AppendEntries { prev_log_index, prev_log_term, entries, leader_commit })
                }
            ),
            (any::<bool>(), any::<u64>(), hint).prop_map(|(success, index, conflict)| {
                MessageBody::AppendEntriesResponse(AppendEntriesResponse { success, index, conflict })
            }),
            (any::<u64>(), any::<u64>())
                .prop_map(|(commit, read_round)| MessageBody::Heartbeat(Heartbeat { commit, read_round })),
            any::<u64>().prop_map(|read_round| MessageBody::HeartbeatResponse(HeartbeatResponse { read_round })),
            Just(MessageBody::TimeoutNow),
            (meta, any::<u64>(), prop::collection::vec(any::<u8>(), 0..64), any::<bool>()).prop_map(
                |(meta, offset, data, done)| {
                    MessageBody::InstallSnapshot(InstallSnapshot { meta, offset, data: Bytes::from(data), done })
                }
            ),
            (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(snapshot_index, next_offset, done)| {
                MessageBody::InstallSnapshotResponse(InstallSnapshotResponse { snapshot_index, next_offset, done })
            }),
        ]
    }

    fn message() -> impl Strategy<Value = Message> {
        (any::<u64>(), any::<u64>(), any::<u64>(), body()).prop_map(|(from, to, term, body)| Message {
            from,
            to,
            term,
            body,
        })
    }

    proptest! {
        #[test]
        fn round_trips(m in message()) {
            let mut buf = BytesMut::new();
            encode(&m, &mut buf);
            prop_assert_eq!(buf.len(), encoded_len(&m));
            prop_assert_eq!(decode(buf.freeze()), Ok(m));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(Bytes::from(bytes));
        }

        #[test]
        fn every_truncation_is_an_error(m in message()) {
            let mut buf = BytesMut::new();
            encode(&m, &mut buf);
            let full = buf.freeze();
            for cut in 0..full.len() {
                prop_assert!(decode(full.slice(..cut)).is_err());
            }
        }
    }

    #[test]
    fn hostile_count_is_refused_without_allocating() {
        let m = Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::AppendEntries(AppendEntries {
                prev_log_index: 0,
                prev_log_term: 0,
                entries: vec![],
                leader_commit: 0,
            }),
        };
        let mut buf = BytesMut::new();
        encode(&m, &mut buf);
        let len = buf.len();
        buf[len - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(buf.freeze()), Err(DecodeError::Count { what: "entry", count: u32::MAX }));
    }

    #[test]
    fn wrong_version_and_kind_are_named() {
        assert_eq!(decode(Bytes::from_static(&[9])), Err(DecodeError::Version(9)));
        let mut buf = BytesMut::new();
        buf.put_u8(VERSION);
        buf.put_u8(42);
        buf.put_slice(&[0; 24]);
        assert_eq!(decode(buf.freeze()), Err(DecodeError::Kind { what: "message", kind: 42 }));
    }
}
