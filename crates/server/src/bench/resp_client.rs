//! The benchmark's RESP client: pipelined SET/GET on one TCP connection,
//! following `-MOVED` to the leader.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, BytesMut};
use loadgen::workload::key_bytes;
use loadgen::{Backend, BackendError, Connection, Op, OpKind, OpResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::resp::{Frame, parse_reply};

/// How many redirects one batch follows before its operations count as failed.
const REDIRECTS_MAX: usize = 3;

/// Opens benchmark connections to a RESP server, to the last leader seen.
pub struct RespBackend {
    leader: Arc<Mutex<SocketAddr>>,
    password: Option<String>,
    value: Arc<Vec<u8>>,
}

/// One benchmark connection.
pub struct RespConnection {
    stream: TcpStream,
    leader: Arc<Mutex<SocketAddr>>,
    password: Option<String>,
    value: Arc<Vec<u8>>,
    out: BytesMut,
    input: BytesMut,
    key: Vec<u8>,
}

impl RespBackend {
    /// Connections start at `addr`, send `AUTH password` if given, and write
    /// values of `value_size` bytes.
    pub fn new(addr: SocketAddr, password: Option<String>, value_size: usize) -> RespBackend {
        RespBackend { leader: Arc::new(Mutex::new(addr)), password, value: Arc::new(vec![b'x'; value_size]) }
    }

    fn leader(&self) -> SocketAddr {
        *self.leader.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Backend for RespBackend {
    type Conn = RespConnection;

    async fn connect(&self, _index: usize) -> Result<RespConnection, BackendError> {
        let stream = open(self.leader(), self.password.as_deref()).await?;
        Ok(RespConnection {
            stream,
            leader: self.leader.clone(),
            password: self.password.clone(),
            value: self.value.clone(),
            out: BytesMut::with_capacity(64 << 10),
            input: BytesMut::with_capacity(64 << 10),
            key: Vec::with_capacity(16),
        })
    }
}

async fn open(addr: SocketAddr, password: Option<&str>) -> Result<TcpStream, BackendError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    if let Some(password) = password {
        let auth = Frame::Array(Some(vec![Frame::bulk(&b"AUTH"[..]), Frame::bulk(password.as_bytes().to_vec())]));
        let mut out = BytesMut::new();
        auth.encode(2, &mut out);
        stream.write_all(&out).await?;
        let mut input = BytesMut::new();
        if let Frame::Error(e) = read_reply(&mut stream, &mut input).await? {
            return Err(BackendError::Other(format!("AUTH refused: {e}")));
        }
    }
    Ok(stream)
}

async fn read_reply(stream: &mut TcpStream, input: &mut BytesMut) -> Result<Frame, BackendError> {
    loop {
        if let Some(frame) = parse_reply(input).map_err(|e| BackendError::Protocol(e.to_string()))? {
            return Ok(frame);
        }
        if stream.read_buf(input).await? == 0 {
            return Err(BackendError::Protocol("connection closed before a reply".into()));
        }
    }
}

/// Appends the RESP2 request for `op` (`SET key value` or `GET key`).
pub(crate) fn encode(op: Op, key: &[u8], value: &[u8], out: &mut BytesMut) {
    fn bulk(out: &mut BytesMut, b: &[u8]) {
        out.put_slice(format!("${}\r\n", b.len()).as_bytes());
        out.put_slice(b);
        out.put_slice(b"\r\n");
    }
    match op.kind {
        OpKind::Set => {
            out.put_slice(b"*3\r\n$3\r\nSET\r\n");
            bulk(out, key);
            bulk(out, value);
        }
        OpKind::Get => {
            out.put_slice(b"*2\r\n$3\r\nGET\r\n");
            bulk(out, key);
        }
    }
}

/// The leader named by a `MOVED <slot> <addr>` error, if it is one.
pub(crate) fn moved_to(error: &str) -> Option<Option<SocketAddr>> {
    let rest = error.strip_prefix("MOVED ")?;
    Some(rest.split_whitespace().nth(1).and_then(|a| a.parse().ok()))
}

/// The short kind of an error reply: its first word (`ERR`, `CLUSTERDOWN`, `TIMEOUT`).
fn error_kind(error: &str) -> String {
    error.split_whitespace().next().unwrap_or("ERR").to_string()
}

impl RespConnection {
    /// Sends `ops[i]` for each `i` in `pending` and reads their replies; returns
    /// the ones redirected and where to.
    async fn round(
        &mut self,
        ops: &[Op],
        pending: &[usize],
        out: &mut [Option<OpResult>],
    ) -> Result<(Vec<usize>, Option<SocketAddr>), BackendError> {
        self.out.clear();
        for &i in pending {
            key_bytes(ops[i].key, &mut self.key);
            encode(ops[i], &self.key, &self.value, &mut self.out);
        }
        self.stream.write_all(&self.out).await?;
        let mut moved = Vec::new();
        let mut target = None;
        for &i in pending {
            match read_reply(&mut self.stream, &mut self.input).await? {
                Frame::Error(e) => match moved_to(&e) {
                    Some(to) => {
                        moved.push(i);
                        target = target.or(to);
                    }
                    None => out[i] = Some(OpResult::Err(error_kind(&e))),
                },
                _ => out[i] = Some(OpResult::Ok),
            }
        }
        Ok((moved, target))
    }

    async fn redirect(&mut self, to: SocketAddr) -> Result<(), BackendError> {
        self.stream = open(to, self.password.as_deref()).await?;
        self.input.clear();
        *self.leader.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = to;
        Ok(())
    }
}

impl Connection for RespConnection {
    async fn execute(&mut self, ops: &[Op], results: &mut Vec<OpResult>) -> Result<(), BackendError> {
        let mut out: Vec<Option<OpResult>> = vec![None; ops.len()];
        let mut pending: Vec<usize> = (0..ops.len()).collect();
        for _ in 0..=REDIRECTS_MAX {
            let (moved, target) = self.round(ops, &pending, &mut out).await?;
            pending = moved;
            match (pending.is_empty(), target) {
                (true, _) => break,
                (false, Some(to)) => self.redirect(to).await?,
                (false, None) => break,
            }
        }
        results.extend(out.into_iter().map(|r| r.unwrap_or_else(|| OpResult::Err("MOVED".into()))));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::resp::{Limits, parse_request};

    #[test]
    fn requests_are_valid_resp() {
        let mut out = BytesMut::new();
        encode(Op { kind: OpKind::Set, key: 7 }, b"key:0000000007", b"vvv", &mut out);
        encode(Op { kind: OpKind::Get, key: 7 }, b"key:0000000007", b"vvv", &mut out);
        let limits = Limits::default();
        let set = parse_request(&mut out, &limits).unwrap().unwrap();
        assert_eq!(set, vec![&b"SET"[..], b"key:0000000007", b"vvv"]);
        let get = parse_request(&mut out, &limits).unwrap().unwrap();
        assert_eq!(get, vec![&b"GET"[..], b"key:0000000007"]);
        assert!(out.is_empty());
    }

    #[test]
    fn moved_errors_name_the_leader() {
        assert_eq!(moved_to("MOVED 1234 127.0.0.1:6382"), Some(Some("127.0.0.1:6382".parse().unwrap())));
        assert_eq!(moved_to("MOVED 1234 nowhere"), Some(None));
        assert_eq!(moved_to("CLUSTERDOWN no leader"), None);
        assert_eq!(error_kind("CLUSTERDOWN no leader"), "CLUSTERDOWN");
        assert_eq!(error_kind(""), "ERR");
    }
}
