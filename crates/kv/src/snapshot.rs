//! Streaming snapshot and restore of a [`Store`]. The format is in the crate docs.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufReader, BufWriter, Read, Write};

use bytes::Bytes;

use crate::request::{get_response, put_response};
use crate::store::{Key, Session, Slot, Store, Value};

/// The first 8 bytes of every snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"RKVSNAP\0";
/// The format version written after the magic.
pub const SNAPSHOT_VERSION: u32 = 1;

const KIND_STRING: u8 = 1;
const KIND_HASH: u8 = 2;
const KIND_LIST: u8 = 3;

fn corrupt(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("corrupt kv snapshot: {}", what.into()))
}

/// Forwards writes and keeps the CRC32C of everything written.
struct CrcWriter<W> {
    inner: W,
    crc: u32,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Forwards reads and keeps the CRC32C of everything read.
struct CrcReader<R> {
    inner: R,
    crc: u32,
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }
}

fn put_u64(w: &mut impl Write, v: u64) -> io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

fn put_bytes(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    put_u64(w, b.len() as u64)?;
    w.write_all(b)
}

fn get_u8(r: &mut impl Read) -> io::Result<u8> {
    let mut b = [0; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn get_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Longest step in which [`get_vec`] reads a byte string: a string up to
/// this long gets its exact allocation at once, a longer one grows by this
/// much per step, so a corrupt length costs at most one step of memory more
/// than the input holds before it fails.
const READ_STEP_BYTES: usize = 1 << 20;

/// Reads a length-prefixed byte string into an allocation of exactly its
/// length: the store keeps these for as long as the key lives, and a vector
/// grown by doubling would hold up to twice the bytes (a 256-byte value in a
/// 512-byte block). No cap on the length: whatever the store held must
/// restore; only the input running out stops it.
fn get_bytes(r: &mut impl Read) -> io::Result<Bytes> {
    let len = get_u64(r)?;
    Ok(Bytes::from(get_vec(r, len)?))
}

/// `len` bytes of `r`, in a vector whose capacity is exactly `len`.
fn get_vec(r: &mut impl Read, len: u64) -> io::Result<Vec<u8>> {
    let too_long = || corrupt(format!("a byte string of {len} bytes is longer than the input"));
    let len = usize::try_from(len).map_err(|_| too_long())?;
    let mut buf = Vec::with_capacity(len.min(READ_STEP_BYTES));
    while buf.len() < len {
        let start = buf.len();
        let step = (len - start).min(READ_STEP_BYTES);
        // Exact: with no room left, the vector grows to start + step, never more.
        buf.reserve_exact(step);
        buf.resize(start + step, 0);
        r.read_exact(&mut buf[start..]).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => too_long(),
            _ => e,
        })?;
    }
    Ok(buf)
}

fn get_count(r: &mut impl Read) -> io::Result<u64> {
    let n = get_u64(r)?;
    if n == 0 {
        return Err(corrupt("empty hash or list"));
    }
    Ok(n)
}

impl Store {
    /// Writes the whole store to `out`, record by record (memory use does not
    /// grow with the store), in the format of the crate docs. Deterministic:
    /// two stores that applied the same entries write the same bytes.
    pub fn snapshot(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut w = CrcWriter { inner: BufWriter::with_capacity(64 * 1024, out), crc: 0 };
        w.write_all(&SNAPSHOT_MAGIC)?;
        w.write_all(&SNAPSHOT_VERSION.to_le_bytes())?;
        for v in [self.applied_index, self.clock_ms, self.keys.len() as u64, self.sessions.len() as u64] {
            put_u64(&mut w, v)?;
        }
        for (key, slot) in &self.keys {
            let kind = match slot.value {
                Value::Str(_) => KIND_STRING,
                Value::Hash(_) => KIND_HASH,
                Value::List(_) => KIND_LIST,
            };
            w.write_all(&[kind])?;
            put_bytes(&mut w, &key.bytes)?;
            put_u64(&mut w, slot.expires_at_ms.unwrap_or(0))?;
            match &slot.value {
                Value::Str(s) => put_bytes(&mut w, s)?,
                Value::Hash(h) => {
                    put_u64(&mut w, h.len() as u64)?;
                    for (f, v) in h {
                        put_bytes(&mut w, f)?;
                        put_bytes(&mut w, v)?;
                    }
                }
                Value::List(l) => {
                    put_u64(&mut w, l.len() as u64)?;
                    for item in l {
                        put_bytes(&mut w, item)?;
                    }
                }
            }
        }
        let mut reply = Vec::new();
        for (client, session) in &self.sessions {
            for v in [*client, session.last_seq, session.last_active_ms] {
                put_u64(&mut w, v)?;
            }
            reply.clear();
            put_response(&mut reply, &session.reply);
            put_bytes(&mut w, &reply)?;
        }
        let crc = w.crc;
        let mut inner = w.inner;
        inner.write_all(&crc.to_le_bytes())?;
        inner.flush()
    }

    /// Replaces the store's contents with a snapshot written by
    /// [`Store::snapshot`]. The snapshot is read into a new store first; on any
    /// error (IO, truncation, bad magic or version, checksum mismatch, invalid
    /// records, bytes after the end) `self` is left exactly as it was.
    /// The store's [`Limits`](crate::Limits) are kept.
    pub fn restore(&mut self, input: &mut dyn Read) -> io::Result<()> {
        let mut r = CrcReader { inner: BufReader::with_capacity(64 * 1024, input), crc: 0 };
        let restored = read_body(&mut r, self)?;
        let computed = r.crc;
        let mut inner = r.inner;
        let mut stored = [0; 4];
        inner.read_exact(&mut stored)?;
        if u32::from_le_bytes(stored) != computed {
            return Err(corrupt("checksum mismatch"));
        }
        if inner.read(&mut [0; 1])? != 0 {
            return Err(corrupt("bytes after the end"));
        }
        *self = restored;
        Ok(())
    }
}

fn read_body(r: &mut impl Read, current: &Store) -> io::Result<Store> {
    let mut magic = [0; 8];
    r.read_exact(&mut magic)?;
    if magic != SNAPSHOT_MAGIC {
        return Err(corrupt("bad magic"));
    }
    let mut version = [0; 4];
    r.read_exact(&mut version)?;
    let version = u32::from_le_bytes(version);
    if version != SNAPSHOT_VERSION {
        return Err(corrupt(format!("unknown version {version}")));
    }
    let mut store = Store::with_limits(current.limits);
    store.applied_index = get_u64(r)?;
    store.clock_ms = get_u64(r)?;
    let (key_count, session_count) = (get_u64(r)?, get_u64(r)?);
    for _ in 0..key_count {
        let kind = get_u8(r)?;
        let key = get_bytes(r)?;
        let expires_at_ms = Some(get_u64(r)?).filter(|&t| t != 0);
        let value = match kind {
            KIND_STRING => Value::Str(get_bytes(r)?),
            KIND_HASH => {
                let mut h = BTreeMap::new();
                for _ in 0..get_count(r)? {
                    let field = get_bytes(r)?;
                    if h.insert(field, get_bytes(r)?).is_some() {
                        return Err(corrupt("duplicate hash field"));
                    }
                }
                Value::Hash(h)
            }
            KIND_LIST => {
                let mut l = VecDeque::new();
                for _ in 0..get_count(r)? {
                    l.push_back(get_bytes(r)?);
                }
                Value::List(l)
            }
            other => return Err(corrupt(format!("unknown record kind {other}"))),
        };
        let k = Key::new(&key);
        if let Some(t) = expires_at_ms {
            store.expiries.insert((t, k.clone()));
        }
        if store.keys.insert(k, Slot { value, expires_at_ms }).is_some() {
            return Err(corrupt("duplicate key"));
        }
    }
    for _ in 0..session_count {
        let (client, last_seq, last_active_ms) = (get_u64(r)?, get_u64(r)?, get_u64(r)?);
        let raw = get_bytes(r)?;
        let mut slice = &raw[..];
        let reply = get_response(&mut slice, 0).map_err(|e| corrupt(format!("session reply: {e}")))?;
        if !slice.is_empty() {
            return Err(corrupt("bytes after a session reply"));
        }
        store.session_lru.insert((last_active_ms, client));
        if store.sessions.insert(client, Session { last_seq, reply, last_active_ms }).is_some() {
            return Err(corrupt("duplicate session"));
        }
    }
    Ok(store)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_string_gets_exactly_its_length_of_memory() {
        for len in [0, 1, 256, READ_STEP_BYTES - 1, READ_STEP_BYTES, 3 * READ_STEP_BYTES + 17] {
            let input = vec![7u8; len];
            let buf = get_vec(&mut input.as_slice(), len as u64).unwrap();
            assert_eq!((buf.len(), buf.capacity()), (len, len), "length {len}");
        }
    }

    #[test]
    fn a_length_beyond_the_input_is_a_clean_error() {
        for len in [10, READ_STEP_BYTES as u64 + 1, 1 << 40, u64::MAX] {
            let e = get_vec(&mut &[1u8; 9][..], len).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "length {len}");
            assert!(e.to_string().contains("longer than the input"), "{e}");
        }
    }

    #[test]
    fn a_restored_value_holds_no_spare_capacity() {
        let mut store = Store::new();
        store.put(&Bytes::from_static(b"k"), Value::Str(Bytes::from(vec![b'v'; 256])), None);
        let mut snapshot = Vec::new();
        store.snapshot(&mut snapshot).unwrap();
        let mut restored = Store::new();
        restored.restore(&mut snapshot.as_slice()).unwrap();
        let Some(Slot { value: Value::Str(value), .. }) = restored.remove(&Bytes::from_static(b"k")) else {
            panic!("the key was not restored as a string");
        };
        let value = value.try_into_mut().unwrap();
        assert_eq!((value.len(), value.capacity()), (256, 256));
    }

    #[test]
    fn a_huge_length_in_a_snapshot_is_a_clean_error() {
        let mut store = Store::new();
        store.put(&Bytes::from_static(b"k"), Value::Str(Bytes::from_static(b"value")), None);
        let mut snapshot = Vec::new();
        store.snapshot(&mut snapshot).unwrap();
        // The header is 8 + 4 + 4 * 8 bytes; then kind (1), the key's length.
        let at = 8 + 4 + 4 * 8 + 1;
        snapshot[at..at + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
        let e = restored_error(&snapshot);
        assert!(e.to_string().contains("longer than the input"), "{e}");
    }

    fn restored_error(snapshot: &[u8]) -> io::Error {
        Store::new().restore(&mut &snapshot[..]).unwrap_err()
    }
}
