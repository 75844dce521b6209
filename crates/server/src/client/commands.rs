//! Typed helpers for the common commands.

use bytes::Bytes;

use super::{Client, ClientError};
use crate::resp::Frame;

fn bytes(b: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(b.as_ref())
}

fn integer(frame: Frame) -> Result<i64, ClientError> {
    match frame {
        Frame::Integer(n) => Ok(n),
        other => Err(ClientError::UnexpectedReply(other)),
    }
}

impl Client {
    /// `GET key`: the value, `None` when the key does not exist.
    pub async fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, ClientError> {
        match self.command([bytes("GET"), bytes(key)]).await? {
            Frame::Bulk(value) => Ok(value),
            Frame::Null => Ok(None),
            other => Err(ClientError::UnexpectedReply(other)),
        }
    }

    /// `SET key value`.
    pub async fn set(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), ClientError> {
        match self.command([bytes("SET"), bytes(key), bytes(value)]).await? {
            Frame::Simple(ok) if ok == "OK" => Ok(()),
            other => Err(ClientError::UnexpectedReply(other)),
        }
    }

    /// `SETNX key value`: whether the key was absent and is now set.
    pub async fn set_nx(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<bool, ClientError> {
        Ok(integer(self.command([bytes("SETNX"), bytes(key), bytes(value)]).await?)? == 1)
    }

    /// `DEL key`: whether the key existed.
    pub async fn del(&mut self, key: impl AsRef<[u8]>) -> Result<bool, ClientError> {
        Ok(integer(self.command([bytes("DEL"), bytes(key)]).await?)? == 1)
    }

    /// `INCR key`: the new value.
    pub async fn incr(&mut self, key: impl AsRef<[u8]>) -> Result<i64, ClientError> {
        integer(self.command([bytes("INCR"), bytes(key)]).await?)
    }

    /// `INCRBY key by`: the new value.
    pub async fn incr_by(&mut self, key: impl AsRef<[u8]>, by: i64) -> Result<i64, ClientError> {
        integer(self.command([bytes("INCRBY"), bytes(key), bytes(by.to_string())]).await?)
    }

    /// `APPEND key value`: the length of the new value.
    pub async fn append(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<i64, ClientError> {
        integer(self.command([bytes("APPEND"), bytes(key), bytes(value)]).await?)
    }
}
