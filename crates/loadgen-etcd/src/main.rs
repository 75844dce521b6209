//! `etcd-load`: the workloads of `raftkv bench` against etcd's v3 KV API
//! (Put, and Range reads which are linearizable by default), so one workload
//! runs against both systems with the same schedule, histograms and report.
//!
//! Each connection is one gRPC channel (one HTTP/2 connection); a pipeline of
//! P operations is P concurrent calls on it. Connections are spread over the
//! endpoints round-robin.

mod proto;

use std::sync::Arc;

use clap::Parser;
use futures::future::join_all;
use loadgen::cli::LoadArgs;
use loadgen::workload::key_bytes;
use loadgen::{Backend, BackendError, Connection, Op, OpKind, OpResult};
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

use proto::{PUT, PutRequest, PutResponse, RANGE, RangeRequest, RangeResponse};

#[derive(Parser)]
#[command(name = "etcd-load", about = "The raftkv bench workloads against etcd's v3 API")]
struct Cli {
    /// etcd client endpoints, comma-separated (`127.0.0.1:2379,...`).
    #[arg(long, default_value = "127.0.0.1:2379", value_delimiter = ',')]
    endpoints: Vec<String>,
    #[command(flatten)]
    load: LoadArgs,
}

struct Etcd {
    endpoints: Vec<String>,
    value: Vec<u8>,
}

struct EtcdConn {
    grpc: Grpc<Channel>,
    value: Vec<u8>,
}

impl Backend for Etcd {
    type Conn = EtcdConn;
    async fn connect(&self, index: usize) -> Result<EtcdConn, BackendError> {
        let endpoint = &self.endpoints[index % self.endpoints.len()];
        let channel = Endpoint::from_shared(format!("http://{endpoint}"))
            .map_err(|e| BackendError::Other(format!("{endpoint}: {e}")))?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| BackendError::Other(format!("connecting to {endpoint}: {e}")))?;
        Ok(EtcdConn { grpc: Grpc::new(channel), value: self.value.clone() })
    }
}

impl EtcdConn {
    async fn call(mut grpc: Grpc<Channel>, op: Op, value: Vec<u8>) -> Result<OpResult, BackendError> {
        grpc.ready().await.map_err(|e| BackendError::Other(format!("channel: {e}")))?;
        let mut key = Vec::with_capacity(16);
        key_bytes(op.key, &mut key);
        let outcome = match op.kind {
            OpKind::Set => {
                let codec = ProstCodec::<PutRequest, PutResponse>::default();
                let request = tonic::Request::new(PutRequest { key, value });
                grpc.unary(request, PathAndQuery::from_static(PUT), codec).await.map(|_| ())
            }
            OpKind::Get => {
                let codec = ProstCodec::<RangeRequest, RangeResponse>::default();
                let request = tonic::Request::new(RangeRequest { key, serializable: false });
                grpc.unary(request, PathAndQuery::from_static(RANGE), codec).await.map(|_| ())
            }
        };
        Ok(match outcome {
            Ok(()) => OpResult::Ok,
            Err(status) => OpResult::Err(format!("{:?}", status.code())),
        })
    }
}

impl Connection for EtcdConn {
    async fn execute(&mut self, ops: &[Op], results: &mut Vec<OpResult>) -> Result<(), BackendError> {
        let calls = ops.iter().map(|op| EtcdConn::call(self.grpc.clone(), *op, self.value.clone()));
        for outcome in join_all(calls).await {
            results.push(outcome?);
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.endpoints.is_empty() {
        anyhow::bail!("--endpoints must name at least one etcd endpoint");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let target = format!("etcd {}", cli.endpoints.join(","));
    let backend = Arc::new(Etcd { endpoints: cli.endpoints, value: vec![b'x'; cli.load.value_size] });
    let report = runtime.block_on(cli.load.execute(backend, target))?;
    if report.ops == 0 {
        anyhow::bail!("no operation succeeded");
    }
    Ok(())
}
