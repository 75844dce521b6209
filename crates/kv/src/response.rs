//! Replies, modelled on RESP; the server encodes them.

use bytes::Bytes;

use crate::error::CommandError;

/// A reply to a command, as RESP models it. The server encodes it as RESP2 or
/// RESP3; this crate never writes protocol bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// A simple string (`+OK`, `+string` for TYPE). Never contains CR or LF.
    Simple(String),
    /// An error (`-ERR ...`, `-WRONGTYPE ...`); the text includes the code word.
    Error(String),
    /// An integer (`:1`).
    Integer(i64),
    /// A bulk string, or the null bulk string for `None` (RESP3: null).
    Bulk(Option<Bytes>),
    /// An array, or the null array for `None` (RESP3: null).
    Array(Option<Vec<Response>>),
    /// A map (HGETALL): in RESP3 a map, in RESP2 a flat array `k1 v1 k2 v2 ...`.
    Map(Vec<(Response, Response)>),
}

impl Response {
    /// `+OK`.
    pub fn ok() -> Response {
        Response::Simple("OK".to_string())
    }

    /// The null bulk string.
    pub fn nil() -> Response {
        Response::Bulk(None)
    }

    /// A bulk string.
    pub fn bulk(value: impl Into<Bytes>) -> Response {
        Response::Bulk(Some(value.into()))
    }

    /// An array of bulk strings.
    pub fn bulks(values: impl IntoIterator<Item = Bytes>) -> Response {
        Response::Array(Some(values.into_iter().map(|v| Response::Bulk(Some(v))).collect()))
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Response::Error(_))
    }
}

impl From<CommandError> for Response {
    fn from(e: CommandError) -> Response {
        Response::Error(e.to_string())
    }
}

impl From<Result<Response, CommandError>> for Response {
    fn from(r: Result<Response, CommandError>) -> Response {
        r.unwrap_or_else(Response::from)
    }
}
