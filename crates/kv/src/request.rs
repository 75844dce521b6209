//! Log entries: a client's request and its compact binary form.

use bytes::Bytes;

use crate::command::Command;
use crate::error::CommandError;
use crate::response::Response;

/// The version byte every encoded [`Request`] starts with.
pub const REQUEST_VERSION: u8 = 1;

/// Client id meaning "no session": the request is applied every time it is
/// seen and its reply is not remembered.
pub const NO_SESSION: u64 = 0;

/// One log entry of the store: who sent it, when, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The client's session id ([`NO_SESSION`] for none). Sessions are created
    /// on first use; the server picks ids unlikely to collide (random 64-bit).
    pub client_id: u64,
    /// The client's sequence number, increasing by one per request; a retry
    /// reuses the sequence of the request it retries.
    pub seq: u64,
    /// Unix time in milliseconds, stamped by the leader when it proposed the
    /// entry. The only clock the store knows.
    pub time_ms: u64,
    /// The command or transaction.
    pub body: RequestBody,
}

/// What a request does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestBody {
    /// One command; the reply is its reply.
    Command(Command),
    /// MULTI ... EXEC: the commands run one after another within this one
    /// entry, with nothing in between. The reply is an array of their replies.
    /// As in Redis, a command that fails at run time (WRONGTYPE, overflow)
    /// puts its error in the array and does not undo the others; commands
    /// that fail to parse never get here, because the server answers
    /// `EXECABORT` when the client sends EXEC after a queuing error.
    Transaction(Vec<Command>),
}

/// Why bytes could not be decoded as a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended in the middle of a field.
    #[error("request truncated")]
    Truncated,
    /// The version byte is not [`REQUEST_VERSION`].
    #[error("unknown request version {0}")]
    Version(u8),
    /// A body tag other than command (0) or transaction (1).
    #[error("unknown request body tag {0}")]
    BodyTag(u8),
    /// A varint is longer than 10 bytes or overflows 64 bits.
    #[error("malformed varint")]
    Varint,
    /// Bytes are left after the request.
    #[error("{0} trailing bytes after request")]
    Trailing(usize),
    /// A reply nests deeper than the store ever builds.
    #[error("reply nested too deep")]
    TooDeep,
    /// A text field is not UTF-8.
    #[error("text field is not UTF-8")]
    Utf8,
    /// The arguments are not a valid command.
    #[error("invalid command in request: {0}")]
    Command(#[from] CommandError),
}

impl Request {
    /// The request's bytes:
    ///
    /// ```text
    /// version u8 = 1 | client_id varint | seq varint | time_ms varint | tag u8 | body
    /// tag 0: command      = argc varint, then argc times (len varint, bytes)
    /// tag 1: transaction  = count varint, then count commands
    /// ```
    ///
    /// Varints are LEB128. A command travels as its canonical argument list
    /// ([`Command::to_args`]), so there is one parser, and what a replica
    /// applies is exactly what the leader accepted.
    pub fn encode(&self) -> Vec<u8> {
        let commands = match &self.body {
            RequestBody::Command(c) => std::slice::from_ref(c),
            RequestBody::Transaction(cs) => cs.as_slice(),
        };
        let args: Vec<Vec<Bytes>> = commands.iter().map(Command::to_args).collect();
        // Reserved once: a value of a few hundred bytes would otherwise grow
        // the buffer three times on every write the server proposes.
        let mut out = Vec::with_capacity(HEADER_BYTES_MAX + args.iter().map(|a| args_bytes_max(a)).sum::<usize>());
        out.push(REQUEST_VERSION);
        put_varint(&mut out, self.client_id);
        put_varint(&mut out, self.seq);
        put_varint(&mut out, self.time_ms);
        match &self.body {
            RequestBody::Command(_) => out.push(0),
            RequestBody::Transaction(cs) => {
                out.push(1);
                put_varint(&mut out, cs.len() as u64);
            }
        }
        for a in &args {
            put_args(&mut out, a);
        }
        out
    }

    /// Decodes [`Request::encode`]'s bytes. Any input gives a request or an
    /// error, never a panic, and never allocates much more than its own length.
    pub fn decode(mut buf: &[u8]) -> Result<Request, DecodeError> {
        let r = &mut buf;
        let version = get_u8(r)?;
        if version != REQUEST_VERSION {
            return Err(DecodeError::Version(version));
        }
        let (client_id, seq, time_ms) = (get_varint(r)?, get_varint(r)?, get_varint(r)?);
        let body = match get_u8(r)? {
            0 => RequestBody::Command(get_command(r)?),
            1 => {
                let n = get_varint(r)?;
                let mut cs = Vec::with_capacity(bounded(n, r.len()));
                for _ in 0..n {
                    cs.push(get_command(r)?);
                }
                RequestBody::Transaction(cs)
            }
            tag => return Err(DecodeError::BodyTag(tag)),
        };
        if !r.is_empty() {
            return Err(DecodeError::Trailing(r.len()));
        }
        Ok(Request { client_id, seq, time_ms, body })
    }
}

/// A capacity to reserve for `n` items read from `remaining` bytes: each item
/// takes at least one byte, so a lying count cannot make us allocate.
fn bounded(n: u64, remaining: usize) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX).min(remaining)
}

/// The most bytes of an encoded request before its commands: version, three
/// varints, tag and transaction count.
const HEADER_BYTES_MAX: usize = 1 + 3 * VARINT_BYTES_MAX + 1 + VARINT_BYTES_MAX;
const VARINT_BYTES_MAX: usize = 10;

/// The most bytes [`put_args`] writes for `args`.
fn args_bytes_max(args: &[Bytes]) -> usize {
    VARINT_BYTES_MAX + args.iter().map(|a| VARINT_BYTES_MAX + a.len()).sum::<usize>()
}

fn put_args(out: &mut Vec<u8>, args: &[Bytes]) {
    put_varint(out, args.len() as u64);
    for a in args {
        put_varint(out, a.len() as u64);
        out.extend_from_slice(a);
    }
}

fn get_command(r: &mut &[u8]) -> Result<Command, DecodeError> {
    let argc = get_varint(r)?;
    let mut args = Vec::with_capacity(bounded(argc, r.len()));
    for _ in 0..argc {
        args.push(Bytes::copy_from_slice(get_bytes(r)?));
    }
    Ok(Command::parse(&args)?)
}

/// Appends `v` as an LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn get_u8(r: &mut &[u8]) -> Result<u8, DecodeError> {
    let (&b, rest) = r.split_first().ok_or(DecodeError::Truncated)?;
    *r = rest;
    Ok(b)
}

pub(crate) fn get_varint(r: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = get_u8(r)?;
        let low = u64::from(b & 0x7f);
        if shift == 63 && low > 1 {
            return Err(DecodeError::Varint);
        }
        v |= low << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DecodeError::Varint)
}

pub(crate) fn get_bytes<'a>(r: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let len = usize::try_from(get_varint(r)?).map_err(|_| DecodeError::Truncated)?;
    if len > r.len() {
        return Err(DecodeError::Truncated);
    }
    let (head, rest) = r.split_at(len);
    *r = rest;
    Ok(head)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Nesting limit when decoding a reply; the store's replies nest at most
/// three deep (SCAN inside a transaction).
const RESPONSE_DEPTH_MAX: usize = 16;

/// Appends a reply's bytes (for the session table in snapshots).
pub(crate) fn put_response(out: &mut Vec<u8>, r: &Response) {
    match r {
        Response::Simple(s) => {
            out.push(0);
            put_bytes(out, s.as_bytes());
        }
        Response::Error(s) => {
            out.push(1);
            put_bytes(out, s.as_bytes());
        }
        Response::Integer(i) => {
            out.push(2);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Response::Bulk(None) => out.push(3),
        Response::Bulk(Some(b)) => {
            out.push(4);
            put_bytes(out, b);
        }
        Response::Array(None) => out.push(5),
        Response::Array(Some(items)) => {
            out.push(6);
            put_varint(out, items.len() as u64);
            for item in items {
                put_response(out, item);
            }
        }
        Response::Map(pairs) => {
            out.push(7);
            put_varint(out, pairs.len() as u64);
            for (k, v) in pairs {
                put_response(out, k);
                put_response(out, v);
            }
        }
    }
}

/// Reads a reply written by [`put_response`].
pub(crate) fn get_response(r: &mut &[u8], depth: usize) -> Result<Response, DecodeError> {
    if depth > RESPONSE_DEPTH_MAX {
        return Err(DecodeError::TooDeep);
    }
    let text = |r: &mut &[u8]| -> Result<String, DecodeError> {
        String::from_utf8(get_bytes(r)?.to_vec()).map_err(|_| DecodeError::Utf8)
    };
    Ok(match get_u8(r)? {
        0 => Response::Simple(text(r)?),
        1 => Response::Error(text(r)?),
        2 => {
            let (head, rest) = r.split_first_chunk::<8>().ok_or(DecodeError::Truncated)?;
            let i = i64::from_le_bytes(*head);
            *r = rest;
            Response::Integer(i)
        }
        3 => Response::Bulk(None),
        4 => Response::Bulk(Some(Bytes::copy_from_slice(get_bytes(r)?))),
        5 => Response::Array(None),
        6 => {
            let n = get_varint(r)?;
            let mut items = Vec::with_capacity(bounded(n, r.len()));
            for _ in 0..n {
                items.push(get_response(r, depth + 1)?);
            }
            Response::Array(Some(items))
        }
        7 => {
            let n = get_varint(r)?;
            let mut pairs = Vec::with_capacity(bounded(n, r.len()));
            for _ in 0..n {
                pairs.push((get_response(r, depth + 1)?, get_response(r, depth + 1)?));
            }
            Response::Map(pairs)
        }
        tag => return Err(DecodeError::BodyTag(tag)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_edges() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = out.as_slice();
            assert_eq!(get_varint(&mut r), Ok(v));
            assert!(r.is_empty());
        }
        // 2^64 does not fit.
        let mut r: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(get_varint(&mut r), Err(DecodeError::Varint));
        let mut r: &[u8] = &[0x80; 11];
        assert_eq!(get_varint(&mut r), Err(DecodeError::Varint));
    }

    #[test]
    fn response_round_trip_and_depth_limit() {
        let r = Response::Array(Some(vec![
            Response::ok(),
            Response::Error("ERR x".into()),
            Response::Integer(-5),
            Response::nil(),
            Response::bulk("v"),
            Response::Array(None),
            Response::Map(vec![(Response::bulk("f"), Response::bulk("v"))]),
        ]));
        let mut out = Vec::new();
        put_response(&mut out, &r);
        let mut slice = out.as_slice();
        assert_eq!(get_response(&mut slice, 0), Ok(r));
        let deep = [6u8, 1].repeat(1000);
        assert!(get_response(&mut deep.as_slice(), 0).is_err());
    }
}
