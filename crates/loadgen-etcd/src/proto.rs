//! The messages of etcd's `etcdserverpb.KV` service that the benchmark uses,
//! with the field numbers of etcd's `api/etcdserverpb/rpc.proto` and
//! `api/mvccpb/kv.proto` (v3.4+). Fields the benchmark does not read are left
//! out; protobuf skips unknown fields when decoding.

/// `etcdserverpb.PutRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutRequest {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// The value.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `etcdserverpb.PutResponse` (its header is not read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutResponse {}

/// `etcdserverpb.RangeRequest` for one key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeRequest {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// `false` (the default): a linearizable read through the leader, as raftkv's GET.
    #[prost(bool, tag = "7")]
    pub serializable: bool,
}

/// `mvccpb.KeyValue` (key and value only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// The value.
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
}

/// `etcdserverpb.RangeResponse` (the pairs found).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeResponse {
    /// The pairs in the range.
    #[prost(message, repeated, tag = "2")]
    pub kvs: Vec<KeyValue>,
}

/// gRPC method paths.
pub const PUT: &str = "/etcdserverpb.KV/Put";
/// gRPC method paths.
pub const RANGE: &str = "/etcdserverpb.KV/Range";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use prost::Message;

    #[test]
    fn wire_format_matches_etcds_field_numbers() {
        // key = field 1 (0x0a), value = field 2 (0x12): what etcd's generated code reads.
        let put = PutRequest { key: b"k".to_vec(), value: b"vv".to_vec() };
        assert_eq!(put.encode_to_vec(), vec![0x0a, 1, b'k', 0x12, 2, b'v', b'v']);
        // serializable = field 7 varint (0x38).
        let range = RangeRequest { key: b"k".to_vec(), serializable: true };
        assert_eq!(range.encode_to_vec(), vec![0x0a, 1, b'k', 0x38, 1]);
        // A RangeResponse with a header (field 1) and count (field 4) we skip.
        let kv = KeyValue { key: b"k".to_vec(), value: b"v".to_vec() }.encode_to_vec();
        let mut bytes = vec![0x0a, 2, 0x08, 7]; // header { cluster_id: 7 }
        bytes.push(0x12);
        bytes.push(kv.len() as u8);
        bytes.extend(&kv);
        bytes.extend([0x20, 1]); // count: 1
        let decoded = RangeResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.kvs, vec![KeyValue { key: b"k".to_vec(), value: b"v".to_vec() }]);
    }
}
