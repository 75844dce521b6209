//! The Redis protocol: requests in (RESP arrays of bulk strings, or inline
//! commands), replies out in RESP2 or RESP3.
//!
//! Pure: it works on buffers and never touches a socket, so the connection
//! loop is "parse what is buffered, else read more" (as in mini-redis).
//! Written by hand: it is the product's wire codec, its limits and error
//! texts are part of the contract with every Redis client, and it parses
//! arguments as slices of the read buffer without copying.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Limits on what a client may send (Redis's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest bulk string (Redis `proto-max-bulk-len`, 512 MiB).
    pub max_bulk_bytes: usize,
    /// The most arguments in one request (Redis: 1024 × 1024).
    pub max_args: usize,
    /// The longest inline command line (Redis: 64 KiB).
    pub max_inline_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_bytes: 512 << 20, max_args: 1 << 20, max_inline_bytes: 64 << 10 }
    }
}

/// A request the stream cannot be resynchronised after: the server answers
/// with the error and closes the connection, as Redis does.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// A `*` count that is not a number or is out of range.
    #[error("ERR Protocol error: invalid multibulk length")]
    MultibulkLength,
    /// An argument that does not start with `$`.
    #[error("ERR Protocol error: expected '$', got '{0}'")]
    ExpectedBulk(char),
    /// A `$` length that is not a number or is out of range.
    #[error("ERR Protocol error: invalid bulk length")]
    BulkLength,
    /// A bulk string not followed by CRLF.
    #[error("ERR Protocol error: expected CRLF after bulk string")]
    MissingCrlf,
    /// An inline command longer than the limit.
    #[error("ERR Protocol error: too big inline request")]
    InlineTooBig,
    /// Unbalanced quotes in an inline command.
    #[error("ERR Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
}

/// Parses one request from the front of `buf`, consuming it. `Ok(None)`: not
/// all of it has arrived yet (nothing is consumed). An empty inline line is
/// consumed and yields an empty argument list.
pub fn parse_request(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf, limits),
        Some(_) => parse_inline(buf, limits),
    }
}

/// Finds the CRLF-terminated line starting at `from`: the index of its `\r`.
fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|p| from + p)
}

/// A RESP length: what `str::parse::<i64>` accepts, read straight from the
/// bytes (it is on every argument of every request).
fn parse_number(digits: &[u8]) -> Option<i64> {
    let (negative, body) = match digits {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, digits),
    };
    if body.is_empty() {
        return None;
    }
    body.iter().try_fold(0i64, |n, &d| {
        let d = d.is_ascii_digit().then(|| i64::from(d - b'0'))?;
        let n = n.checked_mul(10)?;
        if negative { n.checked_sub(d) } else { n.checked_add(d) }
    })
}

fn parse_multibulk(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(end) = line_end(buf, 1) else {
        return if buf.len() > limits.max_inline_bytes { Err(ProtocolError::MultibulkLength) } else { Ok(None) };
    };
    let count = parse_number(&buf[1..end]).ok_or(ProtocolError::MultibulkLength)?;
    if count > limits.max_args as i64 {
        return Err(ProtocolError::MultibulkLength);
    }
    let count = count.max(0) as usize;
    // First check that the whole request has arrived, then take it: a
    // partial request consumes nothing. The second walk over the same
    // headers cuts the arguments out of the frozen frame without an
    // intermediate list.
    let first = end + 2;
    let mut at = first;
    for _ in 0..count {
        let Some((_, stop)) = next_bulk(buf, at, limits)? else { return Ok(None) };
        at = stop + 2;
    }
    let frame = buf.split_to(at).freeze();
    let mut args = Vec::with_capacity(count);
    let mut at = first;
    while let Some((start, stop)) = next_bulk(&frame, at, limits)? {
        args.push(frame.slice(start..stop));
        at = stop + 2;
    }
    Ok(Some(args))
}

/// The bulk string whose `$` header starts at `at`: its data's span, or
/// `None` if it has not all arrived.
fn next_bulk(buf: &[u8], at: usize, limits: &Limits) -> Result<Option<(usize, usize)>, ProtocolError> {
    let Some(&first) = buf.get(at) else { return Ok(None) };
    if first != b'$' {
        return Err(ProtocolError::ExpectedBulk(first as char));
    }
    let Some(end) = line_end(buf, at + 1) else {
        return if buf.len() - at > 32 { Err(ProtocolError::BulkLength) } else { Ok(None) };
    };
    let len = parse_number(&buf[at + 1..end]).ok_or(ProtocolError::BulkLength)?;
    if len < 0 || len as usize > limits.max_bulk_bytes {
        return Err(ProtocolError::BulkLength);
    }
    let start = end + 2;
    let stop = start + len as usize;
    if buf.len() < stop + 2 {
        return Ok(None);
    }
    if &buf[stop..stop + 2] != b"\r\n" {
        return Err(ProtocolError::MissingCrlf);
    }
    Ok(Some((start, stop)))
}

fn parse_inline(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > limits.max_inline_bytes { Err(ProtocolError::InlineTooBig) } else { Ok(None) };
    };
    if newline > limits.max_inline_bytes {
        return Err(ProtocolError::InlineTooBig);
    }
    let line = buf.split_to(newline + 1);
    let text = line.strip_suffix(b"\n").unwrap_or(&line);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    split_inline(text).map(Some)
}

/// Splits an inline command like Redis's `sdssplitargs`: spaces separate,
/// double quotes allow escapes (`\n`, `\xHH`, ...), single quotes are literal.
fn split_inline(text: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    while i < text.len() {
        while i < text.len() && text[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == text.len() {
            break;
        }
        let mut arg = Vec::new();
        match text[i] {
            b'"' => {
                i += 1;
                loop {
                    let Some(&c) = text.get(i) else { return Err(ProtocolError::UnbalancedQuotes) };
                    i += 1;
                    match c {
                        b'"' => break,
                        b'\\' => {
                            let Some(&e) = text.get(i) else { return Err(ProtocolError::UnbalancedQuotes) };
                            i += 1;
                            arg.push(match e {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 8,
                                b'a' => 7,
                                b'x' => match text.get(i..i + 2).and_then(|h| std::str::from_utf8(h).ok()) {
                                    Some(hex) if u8::from_str_radix(hex, 16).is_ok() => {
                                        i += 2;
                                        u8::from_str_radix(hex, 16).unwrap_or(b'x')
                                    }
                                    _ => b'x',
                                },
                                other => other,
                            });
                        }
                        c => arg.push(c),
                    }
                }
                if text.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    let Some(&c) = text.get(i) else { return Err(ProtocolError::UnbalancedQuotes) };
                    i += 1;
                    if c == b'\'' {
                        break;
                    }
                    arg.push(c);
                }
            }
            _ => {
                while i < text.len() && !text[i].is_ascii_whitespace() {
                    arg.push(text[i]);
                    i += 1;
                }
            }
        }
        args.push(Bytes::from(arg));
    }
    Ok(args)
}

/// A reply, in the union of RESP2 and RESP3 types; encoded for the
/// connection's protocol version (RESP3 types degrade to RESP2 ones).
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`
    Simple(String),
    /// `-ERR ...` (the text includes its code, e.g. `ERR` or `WRONGTYPE`).
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$5\r\nhello` (`None`: the RESP2 nil bulk / RESP3 null).
    Bulk(Option<Bytes>),
    /// `*2 ...` (`None`: the RESP2 nil array / RESP3 null).
    Array(Option<Vec<Frame>>),
    /// RESP3 map; a flat array in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 set; an array in RESP2.
    Set(Vec<Frame>),
    /// RESP3 double; a bulk string in RESP2.
    Double(f64),
    /// RESP3 boolean; the integer 1 or 0 in RESP2.
    Boolean(bool),
    /// RESP3 null; a nil bulk in RESP2.
    Null,
}

impl Frame {
    /// `+OK`.
    pub fn ok() -> Frame {
        Frame::Simple("OK".into())
    }

    /// A bulk string.
    pub fn bulk(b: impl Into<Bytes>) -> Frame {
        Frame::Bulk(Some(b.into()))
    }

    /// Appends the encoding of `self` for protocol `version` (2 or 3).
    pub fn encode(&self, version: u8, out: &mut BytesMut) {
        let resp3 = version >= 3;
        match self {
            Frame::Simple(s) => line(out, b'+', s.as_bytes()),
            Frame::Error(e) => line(out, b'-', e.replace(['\r', '\n'], " ").as_bytes()),
            Frame::Integer(n) => line(out, b':', n.to_string().as_bytes()),
            Frame::Bulk(Some(b)) => {
                line(out, b'$', b.len().to_string().as_bytes());
                out.put_slice(b);
                out.put_slice(b"\r\n");
            }
            Frame::Bulk(None) | Frame::Array(None) | Frame::Null if resp3 => out.put_slice(b"_\r\n"),
            Frame::Bulk(None) | Frame::Null => out.put_slice(b"$-1\r\n"),
            Frame::Array(None) => out.put_slice(b"*-1\r\n"),
            Frame::Array(Some(items)) | Frame::Set(items) => {
                let tag = if resp3 && matches!(self, Frame::Set(_)) { b'~' } else { b'*' };
                line(out, tag, items.len().to_string().as_bytes());
                for item in items {
                    item.encode(version, out);
                }
            }
            Frame::Map(pairs) => {
                if resp3 {
                    line(out, b'%', pairs.len().to_string().as_bytes());
                } else {
                    line(out, b'*', (pairs.len() * 2).to_string().as_bytes());
                }
                for (k, v) in pairs {
                    k.encode(version, out);
                    v.encode(version, out);
                }
            }
            Frame::Double(d) if resp3 => line(out, b',', format_double(*d).as_bytes()),
            Frame::Double(d) => Frame::bulk(format_double(*d)).encode(version, out),
            Frame::Boolean(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::Boolean(b) => Frame::Integer(i64::from(*b)).encode(version, out),
        }
    }
}

fn line(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.put_u8(tag);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

fn format_double(d: f64) -> String {
    if d.is_infinite() { if d > 0.0 { "inf".into() } else { "-inf".into() } } else { format!("{d}") }
}

/// Parses one reply (used by the Rust client and tests): `Ok(None)` if not
/// all of it has arrived.
pub fn parse_reply(buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
    let mut cursor = &buf[..];
    match reply_at(&mut cursor)? {
        None => Ok(None),
        Some(frame) => {
            let used = buf.len() - cursor.len();
            buf.advance(used);
            Ok(Some(frame))
        }
    }
}

fn reply_at(cur: &mut &[u8]) -> Result<Option<Frame>, ProtocolError> {
    let Some(end) = line_end(cur, 1) else { return Ok(None) };
    let (tag, body) = (cur[0], String::from_utf8_lossy(&cur[1..end]).into_owned());
    *cur = &cur[end + 2..];
    let number = || body.parse::<i64>().map_err(|_| ProtocolError::BulkLength);
    let frame = match tag {
        b'+' => Frame::Simple(body),
        b'-' => Frame::Error(body),
        b':' => Frame::Integer(number()?),
        b'_' => Frame::Null,
        b'#' => Frame::Boolean(body == "t"),
        b',' => Frame::Double(body.parse().unwrap_or(f64::NAN)),
        b'$' => {
            let len = number()?;
            if len < 0 {
                Frame::Bulk(None)
            } else {
                let len = len as usize;
                if cur.len() < len + 2 {
                    return Ok(None);
                }
                let data = Bytes::copy_from_slice(&cur[..len]);
                *cur = &cur[len + 2..];
                Frame::Bulk(Some(data))
            }
        }
        b'*' | b'~' | b'%' => {
            let n = number()?;
            if n < 0 {
                return Ok(Some(Frame::Array(None)));
            }
            let n = if tag == b'%' { n * 2 } else { n };
            let mut items = Vec::new();
            for _ in 0..n {
                match reply_at(cur)? {
                    Some(item) => items.push(item),
                    None => return Ok(None),
                }
            }
            match tag {
                b'~' => Frame::Set(items),
                b'%' => {
                    let mut it = items.into_iter();
                    let mut pairs = Vec::new();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Frame::Map(pairs)
                }
                _ => Frame::Array(Some(items)),
            }
        }
        other => return Err(ProtocolError::ExpectedBulk(other as char)),
    };
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The hand-written length parser agrees with `str::parse`, overflow,
    /// signs and stray bytes included.
    #[test]
    fn parse_number_is_str_parse() {
        let cases: &[&[u8]] = &[
            b"0",
            b"7",
            b"-1",
            b"+5",
            b"",
            b"-",
            b"+",
            b"12a",
            b" 1",
            b"1 ",
            b"--1",
            b"-0",
            b"9223372036854775807",
            b"9223372036854775808",
            b"-9223372036854775808",
            b"-9223372036854775809",
            b"00012",
            b"\xff",
        ];
        for &case in cases {
            let expected = std::str::from_utf8(case).ok().and_then(|t| t.parse::<i64>().ok());
            assert_eq!(parse_number(case), expected, "{:?}", String::from_utf8_lossy(case));
        }
    }

    proptest! {
        #[test]
        fn parse_number_agrees_with_str_parse(n in any::<i64>(), junk in proptest::collection::vec(any::<u8>(), 0..24)) {
            prop_assert_eq!(parse_number(n.to_string().as_bytes()), Some(n));
            let expected = std::str::from_utf8(&junk).ok().and_then(|t| t.parse::<i64>().ok());
            prop_assert_eq!(parse_number(&junk), expected);
        }
    }

    fn parse(input: &[u8]) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        parse_request(&mut BytesMut::from(input), &Limits::default())
    }

    #[test]
    fn multibulk_and_inline() {
        let args = parse(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap_or_default().unwrap_or_default();
        assert_eq!(args, vec![Bytes::from("GET"), Bytes::from("k")]);
        let inline = parse(b"SET k \"a b\\x41\" 'c d'\r\n").unwrap_or_default().unwrap_or_default();
        assert_eq!(inline, vec![Bytes::from("SET"), Bytes::from("k"), Bytes::from("a bA"), Bytes::from("c d")]);
    }

    #[test]
    fn partial_requests_consume_nothing() {
        let full = b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n";
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert_eq!(parse_request(&mut buf, &Limits::default()), Ok(None), "cut at {cut}");
            assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn protocol_errors_are_named_like_redis() {
        assert_eq!(parse(b"*x\r\n"), Err(ProtocolError::MultibulkLength));
        assert_eq!(parse(b"*1\r\n:3\r\n"), Err(ProtocolError::ExpectedBulk(':')));
        assert_eq!(parse(b"*1\r\n$-2\r\n"), Err(ProtocolError::BulkLength));
        assert_eq!(parse(b"*1\r\n$999999999999\r\n"), Err(ProtocolError::BulkLength));
        assert_eq!(parse(b"*1\r\n$1\r\nab\r\n"), Err(ProtocolError::MissingCrlf));
        assert_eq!(parse(b"SET \"unterminated\r\n"), Err(ProtocolError::UnbalancedQuotes));
        let limits = Limits { max_args: 2, ..Limits::default() };
        assert_eq!(parse_request(&mut BytesMut::from(&b"*3\r\n"[..]), &limits), Err(ProtocolError::MultibulkLength));
    }

    #[test]
    fn replies_in_both_protocols() {
        let frame = Frame::Map(vec![(Frame::bulk("a"), Frame::Integer(1))]);
        let mut two = BytesMut::new();
        frame.encode(2, &mut two);
        assert_eq!(&two[..], b"*2\r\n$1\r\na\r\n:1\r\n");
        let mut three = BytesMut::new();
        frame.encode(3, &mut three);
        assert_eq!(&three[..], b"%1\r\n$1\r\na\r\n:1\r\n");
        let mut nil = BytesMut::new();
        Frame::Bulk(None).encode(2, &mut nil);
        Frame::Bulk(None).encode(3, &mut nil);
        assert_eq!(&nil[..], b"$-1\r\n_\r\n");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..512)) {
            let mut buf = BytesMut::from(&input[..]);
            let _ = parse_request(&mut buf, &Limits::default());
            let mut buf = BytesMut::from(&input[..]);
            let _ = parse_reply(&mut buf);
        }

        #[test]
        fn encoded_requests_parse_back(args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..8)) {
            let frame = Frame::Array(Some(args.iter().map(|a| Frame::bulk(a.clone())).collect()));
            let mut buf = BytesMut::new();
            frame.encode(2, &mut buf);
            let parsed = parse_request(&mut buf, &Limits::default()).ok().flatten();
            prop_assert_eq!(parsed, Some(args.into_iter().map(Bytes::from).collect::<Vec<_>>()));
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn replies_round_trip(ints in prop::collection::vec(any::<i64>(), 0..6), text in "[a-z ]{0,20}") {
            let frame = Frame::Array(Some(vec![
                Frame::Simple(text.clone()),
                Frame::Array(Some(ints.iter().map(|&i| Frame::Integer(i)).collect())),
                Frame::bulk(text.clone().into_bytes()),
                Frame::Bulk(None),
            ]));
            let mut buf = BytesMut::new();
            frame.encode(2, &mut buf);
            prop_assert_eq!(parse_reply(&mut buf), Ok(Some(frame)));
        }
    }
}
