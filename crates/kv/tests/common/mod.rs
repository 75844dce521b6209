//! A small harness: commands as text lines, applied as log entries.
#![allow(dead_code, clippy::unwrap_used)]

use bytes::Bytes;
use kv::{Command, NO_SESSION, Request, RequestBody, Response, Store};

/// Splits a command line on spaces (tests use no spaces inside arguments).
pub fn args(line: &str) -> Vec<Bytes> {
    line.split_whitespace().map(|a| Bytes::from(a.to_string())).collect()
}

pub fn parse(line: &str) -> Command {
    Command::parse(&args(line)).unwrap()
}

pub struct Db {
    pub store: Store,
    pub index: u64,
    pub time_ms: u64,
}

pub const T0: u64 = 1_700_000_000_000;

impl Db {
    pub fn new() -> Db {
        Db { store: Store::new(), index: 0, time_ms: T0 }
    }

    /// Parses and applies `line` as one entry without a session; a parse
    /// error is returned as the error reply the server would send.
    pub fn cmd(&mut self, line: &str) -> Response {
        match Command::parse(&args(line)) {
            Ok(c) => self.apply(RequestBody::Command(c)),
            Err(e) => e.into(),
        }
    }

    pub fn apply(&mut self, body: RequestBody) -> Response {
        self.request(NO_SESSION, 0, body)
    }

    pub fn request(&mut self, client_id: u64, seq: u64, body: RequestBody) -> Response {
        self.index += 1;
        let request = Request { client_id, seq, time_ms: self.time_ms, body };
        // Every entry goes through the wire format, as in the real system.
        let decoded = Request::decode(&request.encode()).unwrap();
        assert_eq!(decoded, request);
        self.store.apply(self.index, &decoded)
    }

    pub fn read(&self, line: &str) -> Response {
        self.store.read(&parse(line), self.time_ms)
    }

    pub fn advance(&mut self, ms: u64) {
        self.time_ms += ms;
    }
}

pub fn ok() -> Response {
    Response::ok()
}
pub fn int(i: i64) -> Response {
    Response::Integer(i)
}
pub fn bulk(s: &str) -> Response {
    Response::bulk(s.to_string())
}
pub fn nil() -> Response {
    Response::nil()
}
pub fn err(s: &str) -> Response {
    Response::Error(s.to_string())
}
pub fn simple(s: &str) -> Response {
    Response::Simple(s.to_string())
}
pub fn arr(items: &[&str]) -> Response {
    Response::bulks(items.iter().map(|s| Bytes::from(s.to_string())))
}
pub fn list(items: Vec<Response>) -> Response {
    Response::Array(Some(items))
}

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_INT: &str = "ERR value is not an integer or out of range";
pub const SYNTAX: &str = "ERR syntax error";
