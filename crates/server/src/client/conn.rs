//! One RESP connection to one node: send a command, read its reply, with a
//! timeout on each.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::resp::{Frame, parse_reply};

/// How an exchange with a node failed.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// Nothing reached the node: it cannot have run the command.
    NotSent(String),
    /// The command was (or may have been) sent, and no reply came.
    Lost(String),
}

/// A connection to one node.
pub(crate) struct Conn {
    /// The node's client address.
    pub(crate) addr: SocketAddr,
    stream: TcpStream,
    input: BytesMut,
}

impl Conn {
    /// Connects within `timeout`.
    pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, ConnError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(ConnError::NotSent(format!("connecting to {addr}: {e}"))),
            Err(_) => return Err(ConnError::NotSent(format!("connecting to {addr}: timed out after {timeout:?}"))),
        };
        let _ = stream.set_nodelay(true);
        Ok(Conn { addr, stream, input: BytesMut::with_capacity(4096) })
    }

    /// Sends `args` as one RESP array and waits up to `timeout` for the reply.
    pub(crate) async fn call(&mut self, args: &[Bytes], timeout: Duration) -> Result<Frame, ConnError> {
        let request = Frame::Array(Some(args.iter().cloned().map(Frame::bulk).collect()));
        let mut out = BytesMut::new();
        request.encode(2, &mut out);
        let addr = self.addr;
        match tokio::time::timeout(timeout, self.stream.write_all(&out)).await {
            Ok(Ok(())) => {}
            // A partial write may have delivered the whole request.
            Ok(Err(e)) => return Err(ConnError::Lost(format!("sending to {addr}: {e}"))),
            Err(_) => return Err(ConnError::Lost(format!("sending to {addr}: timed out after {timeout:?}"))),
        }
        match tokio::time::timeout(timeout, self.read_reply()).await {
            Ok(result) => result.map_err(|e| ConnError::Lost(format!("reading from {addr}: {e}"))),
            Err(_) => Err(ConnError::Lost(format!("no reply from {addr} within {timeout:?}"))),
        }
    }

    async fn read_reply(&mut self) -> std::io::Result<Frame> {
        loop {
            if let Some(frame) = parse_reply(&mut self.input).map_err(std::io::Error::other)? {
                return Ok(frame);
            }
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
            }
        }
    }
}
