//! raftkv's server (in progress): so far, the RESP codec.
#![forbid(unsafe_code)]

pub mod resp;
