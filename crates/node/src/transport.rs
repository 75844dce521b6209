//! Peer transport: TCP between processes, or channels inside one process.
//!
//! TCP: one connection per peer direction. The connecting side opens with a
//! handshake — magic `"RKVN"`, version `u8`, cluster id `u64`, node id `u64`,
//! client address and peer address (each `u16` length + UTF-8) — then sends
//! length-prefixed frames
//! (`u32` little-endian length, then one message in the [`codec`](crate::codec)).
//! The accepting side refuses a wrong magic, version or cluster, a node id
//! that is neither a configured peer nor a member of the current
//! configuration (a joining node that has no configuration yet accepts any
//! node of its cluster: the leader adding it), an oversized frame or a
//! message that does not decode or claims another sender, by closing that
//! connection; it keeps serving the others. Each peer has a bounded queue
//! and a writer task that coalesces everything queued into one write; when
//! the queue is full new messages are dropped (Raft retransmits), so a slow
//! peer never blocks the core. Lost connections are retried with capped
//! exponential backoff, cut short when that peer connects to us (it is back,
//! and needs our half to hear our answers). A member that connects to us and
//! that we have no address for (a node added after we started) is reached
//! back at the peer address from its handshake.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use raft::{Message, NodeId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};

use crate::codec;

const MAGIC: &[u8; 4] = b"RKVN";
const HANDSHAKE_VERSION: u8 = 1;
/// Coalesce at most this much into one write.
const WRITE_BATCH_BYTES: usize = 1 << 20;
/// Read buffer of an inbound peer connection.
const READ_BUFFER_BYTES: usize = 64 << 10;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// In-process network: a router from node id to its inbox.
#[derive(Clone, Debug, Default)]
pub struct ChannelNetwork {
    routes: Arc<Mutex<HashMap<NodeId, mpsc::Sender<Message>>>>,
}

impl ChannelNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn register(&self, id: NodeId, inbox: mpsc::Sender<Message>) {
        lock(&self.routes).insert(id, inbox);
    }

    pub(crate) fn unregister(&self, id: NodeId) {
        lock(&self.routes).remove(&id);
    }

    /// Cuts node `id` off (its messages and those to it are dropped) until
    /// [`ChannelNetwork::reconnect`].
    pub fn disconnect(&self, id: NodeId) -> Option<mpsc::Sender<Message>> {
        lock(&self.routes).remove(&id)
    }

    /// Puts back a node removed by [`ChannelNetwork::disconnect`].
    pub fn reconnect(&self, id: NodeId, inbox: mpsc::Sender<Message>) {
        self.register(id, inbox);
    }

    fn send(&self, m: Message) {
        let routes = lock(&self.routes);
        if !routes.contains_key(&m.from) {
            return;
        }
        if let Some(inbox) = routes.get(&m.to) {
            // Full inbox: drop, as a congested network would.
            let _ = inbox.try_send(m);
        }
    }
}

/// Limits and identity of the TCP transport.
#[derive(Clone, Debug)]
pub(crate) struct TcpSettings {
    pub me: NodeId,
    pub cluster_id: u64,
    pub client_addr: String,
    pub peer_addr: SocketAddr,
    pub max_frame_bytes: u32,
    pub queue_messages: usize,
    pub backoff: (Duration, Duration),
    /// A joining node: until it learns a configuration it knows no members,
    /// so any node of its cluster may connect (the leader adding it).
    pub join: bool,
}

struct Peer {
    queue: mpsc::Sender<Message>,
    addr: SocketAddr,
    /// Cuts the writer's reconnect backoff short: the peer just connected
    /// to us, so it is up again.
    redial: Arc<Notify>,
}

/// The TCP transport of one node.
pub(crate) struct TcpTransport {
    settings: TcpSettings,
    peers: Mutex<HashMap<NodeId, Peer>>,
    /// Client addresses peers announced in their handshakes.
    client_addrs: Arc<Mutex<HashMap<NodeId, String>>>,
    /// Node ids allowed to connect to us: configured or added peers...
    known: Arc<Mutex<HashMap<NodeId, SocketAddr>>>,
    /// ...and members of the current configuration.
    members: Mutex<std::collections::BTreeSet<NodeId>>,
    /// Peers from the node's configuration: kept whatever the log says.
    configured: Mutex<std::collections::BTreeSet<NodeId>>,
}

impl TcpTransport {
    /// Binds `listen` and starts accepting peers; inbound messages go to
    /// `inbox`. Every task it starts ends when `stop` is dropped.
    pub async fn start(
        settings: TcpSettings,
        listen: SocketAddr,
        inbox: mpsc::Sender<Message>,
        stop: watch::Receiver<()>,
    ) -> std::io::Result<Arc<TcpTransport>> {
        let listener = TcpListener::bind(listen).await?;
        let transport = Arc::new(TcpTransport {
            settings,
            peers: Mutex::new(HashMap::new()),
            client_addrs: Arc::default(),
            known: Arc::default(),
            members: Mutex::default(),
            configured: Mutex::default(),
        });
        tokio::spawn(accept_loop(listener, transport.clone(), inbox, stop));
        Ok(transport)
    }

    /// A peer from the node's own configuration (never dropped by
    /// [`TcpTransport::set_members`]).
    pub fn add_configured_peer(&self, id: NodeId, addr: SocketAddr) {
        lock(&self.configured).insert(id);
        self.add_peer(id, addr);
    }

    /// Makes `id` reachable at `addr` (and allowed to connect to us).
    pub fn add_peer(&self, id: NodeId, addr: SocketAddr) {
        if id == self.settings.me {
            return;
        }
        lock(&self.known).insert(id, addr);
        let mut peers = lock(&self.peers);
        if peers.get(&id).is_some_and(|p| p.addr == addr) {
            return;
        }
        let (queue, rx) = mpsc::channel(self.settings.queue_messages);
        let redial = Arc::new(Notify::new());
        tokio::spawn(run_peer(addr, rx, self.hello(), self.settings.backoff, redial.clone()));
        peers.insert(id, Peer { queue, addr, redial });
    }

    /// The configuration changed: members may connect; peers that are neither
    /// members nor configured any more are dropped.
    pub fn set_members(&self, members: std::collections::BTreeSet<NodeId>) {
        let configured = lock(&self.configured).clone();
        let gone: Vec<NodeId> =
            lock(&self.peers).keys().copied().filter(|id| !members.contains(id) && !configured.contains(id)).collect();
        *lock(&self.members) = members;
        for id in gone {
            self.remove_peer(id);
        }
    }

    fn may_connect(&self, id: NodeId) -> bool {
        let members = lock(&self.members);
        members.contains(&id) || lock(&self.known).contains_key(&id) || (self.settings.join && members.is_empty())
    }

    /// Forgets `id`: its writer stops and it may no longer connect.
    pub fn remove_peer(&self, id: NodeId) {
        lock(&self.known).remove(&id);
        lock(&self.peers).remove(&id);
    }

    /// Queues a message; drops it if the peer's queue is full or unknown.
    pub fn send(&self, m: Message) {
        if let Some(peer) = lock(&self.peers).get(&m.to)
            && peer.queue.try_send(m).is_err()
        {
            tracing::trace!("peer queue full or closed: message dropped");
        }
    }

    /// The client address `id` announced, if it has connected.
    pub fn client_addr(&self, id: NodeId) -> Option<String> {
        lock(&self.client_addrs).get(&id).cloned()
    }

    fn hello(&self) -> Bytes {
        let s = &self.settings;
        let mut b = BytesMut::new();
        b.put_slice(MAGIC);
        b.put_u8(HANDSHAKE_VERSION);
        b.put_u64_le(s.cluster_id);
        b.put_u64_le(s.me);
        for text in [s.client_addr.clone(), s.peer_addr.to_string()] {
            let bytes = &text.as_bytes()[..text.len().min(u16::MAX as usize)];
            b.put_u16_le(bytes.len() as u16);
            b.put_slice(bytes);
        }
        b.freeze()
    }
}

async fn accept_loop(
    listener: TcpListener,
    transport: Arc<TcpTransport>,
    inbox: mpsc::Sender<Message>,
    mut stop: watch::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, from)) => {
                let (transport, inbox, mut stop) = (transport.clone(), inbox.clone(), stop.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        result = serve_inbound(stream, &transport, inbox) => {
                            if let Err(why) = result {
                                tracing::warn!(%from, %why, "peer connection closed");
                            }
                        }
                        _ = stop.changed() => {}
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads one peer's connection: handshake, then frames, until it closes or misbehaves.
async fn serve_inbound(mut stream: TcpStream, t: &TcpTransport, inbox: mpsc::Sender<Message>) -> Result<(), String> {
    let peer = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_hello(&mut stream, t))
        .await
        .map_err(|_| "handshake timed out".to_string())??;
    tracing::info!(me = t.settings.me, peer, "peer connected");
    // Frames arrive coalesced: read them through a buffer, one syscall for
    // many small messages (heartbeat answers, acknowledgements).
    let mut stream = tokio::io::BufReader::with_capacity(READ_BUFFER_BYTES, stream);
    let mut len = [0u8; 4];
    loop {
        if stream.read_exact(&mut len).await.is_err() {
            return Ok(());
        }
        let n = u32::from_le_bytes(len);
        if n > t.settings.max_frame_bytes {
            return Err(format!("frame of {n} bytes from node {peer} exceeds the limit"));
        }
        let mut frame = BytesMut::zeroed(n as usize);
        stream.read_exact(&mut frame).await.map_err(|e| e.to_string())?;
        let m = codec::decode(frame.freeze()).map_err(|e| format!("bad message from node {peer}: {e}"))?;
        if m.from != peer || m.to != t.settings.me {
            return Err(format!("node {peer} sent a message from {} to {}", m.from, m.to));
        }
        if inbox.try_send(m).is_err() && inbox.is_closed() {
            return Ok(());
        }
    }
}

async fn read_hello(stream: &mut TcpStream, t: &TcpTransport) -> Result<NodeId, String> {
    let mut head = [0u8; 4 + 1 + 8 + 8 + 2];
    stream.read_exact(&mut head).await.map_err(|e| e.to_string())?;
    let mut b = &head[..];
    let mut magic = [0u8; 4];
    b.copy_to_slice(&mut magic);
    if &magic != MAGIC || b.get_u8() != HANDSHAKE_VERSION {
        return Err("not a raftkv peer (bad magic or version)".into());
    }
    let (cluster, id, addr_len) = (b.get_u64_le(), b.get_u64_le(), b.get_u16_le());
    if cluster != t.settings.cluster_id {
        return Err(format!("peer of cluster {cluster}, we are {}", t.settings.cluster_id));
    }
    if !t.may_connect(id) {
        return Err(format!("node {id} is not a member"));
    }
    let client_addr = read_text(stream, addr_len).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(|e| e.to_string())?;
    let peer_addr = read_text(stream, u16::from_le_bytes(len)).await?;
    lock(&t.client_addrs).insert(id, client_addr);
    let known = lock(&t.peers).get(&id).map(|p| p.redial.clone());
    match known {
        // A peer that restarted dials us first: answer at once instead of
        // when our backoff (grown while it was down) runs out, or its votes
        // and acknowledgements would have no way back.
        Some(redial) => redial.notify_one(),
        None => {
            if let Ok(addr) = peer_addr.parse() {
                t.add_peer(id, addr);
            }
        }
    }
    Ok(id)
}

async fn read_text(stream: &mut TcpStream, len: u16) -> Result<String, String> {
    let mut text = vec![0u8; len as usize];
    stream.read_exact(&mut text).await.map_err(|e| e.to_string())?;
    String::from_utf8(text).map_err(|_| "address is not UTF-8".to_string())
}

/// Keeps one outbound connection alive and writes what is queued for it.
async fn run_peer(
    addr: SocketAddr,
    mut queue: mpsc::Receiver<Message>,
    hello: Bytes,
    backoff: (Duration, Duration),
    redial: Arc<Notify>,
) {
    let mut delay = backoff.0;
    loop {
        if let Ok(Ok(stream)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            delay = backoff.0;
            let _ = stream.set_nodelay(true);
            if let Err(e) = pump(stream, &mut queue, &hello).await {
                tracing::debug!(%addr, error = %e, "peer connection lost");
            }
        }
        // What queued while we were down is stale: Raft will resend what matters.
        while queue.try_recv().is_ok() {}
        if queue.is_closed() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => delay = (delay * 2).min(backoff.1),
            _ = redial.notified() => delay = backoff.0,
        }
    }
}

/// Writes what is queued until the queue closes, a write fails or the peer
/// closes its end (it never sends on our connection, so any read means it
/// is gone: a restarted peer is noticed at once, not one lost write later).
async fn pump(stream: TcpStream, queue: &mut mpsc::Receiver<Message>, hello: &[u8]) -> std::io::Result<()> {
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(hello).await?;
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut probe = [0u8; 1];
    loop {
        let m = tokio::select! {
            m = queue.recv() => m,
            _ = reader.read(&mut probe) => {
                return Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "peer closed the connection"));
            }
        };
        let Some(m) = m else { return Ok(()) };
        buf.clear();
        put_frame(&m, &mut buf);
        while buf.len() < WRITE_BATCH_BYTES {
            match queue.try_recv() {
                Ok(m) => put_frame(&m, &mut buf),
                Err(_) => break,
            }
        }
        writer.write_all(&buf).await?;
    }
}

fn put_frame(m: &Message, buf: &mut BytesMut) {
    let at = buf.len();
    buf.put_u32_le(0);
    codec::encode(m, buf);
    let len = (buf.len() - at - 4) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// The TCP transport, owned by the core.
pub(crate) struct TcpHandle {
    pub transport: Arc<TcpTransport>,
    /// Dropped with the core: every task of the transport then ends.
    pub _stop: watch::Sender<()>,
}

/// Where a node's messages go.
pub(crate) enum Transport {
    /// TCP.
    Tcp(TcpHandle),
    Channel(ChannelNetwork),
}

impl Transport {
    pub fn send(&self, m: Message) {
        match self {
            Transport::Tcp(TcpHandle { transport: t, .. }) => t.send(m),
            Transport::Channel(c) => c.send(m),
        }
    }

    pub fn add_peer(&self, id: NodeId, addr: SocketAddr) {
        if let Transport::Tcp(TcpHandle { transport: t, .. }) = self {
            t.add_peer(id, addr);
        }
    }

    pub fn set_members(&self, members: std::collections::BTreeSet<NodeId>) {
        if let Transport::Tcp(TcpHandle { transport: t, .. }) = self {
            t.set_members(members);
        }
    }

    pub fn client_addr(&self, id: NodeId) -> Option<String> {
        match self {
            Transport::Tcp(TcpHandle { transport: t, .. }) => t.client_addr(id),
            Transport::Channel(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Instant;

    use raft::{Heartbeat, MessageBody};

    use super::*;

    fn settings(me: NodeId, peer_addr: SocketAddr) -> TcpSettings {
        TcpSettings {
            me,
            cluster_id: 7,
            client_addr: String::new(),
            peer_addr,
            max_frame_bytes: 1 << 20,
            queue_messages: 64,
            join: false,
            // A first delay long enough that, while the peer is down, the
            // backoff grows well past what the test allows.
            backoff: (Duration::from_millis(400), Duration::from_secs(60)),
        }
    }

    fn free_addr() -> SocketAddr {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
    }

    fn heartbeat(from: NodeId, to: NodeId) -> Message {
        Message { from, to, term: 1, body: MessageBody::Heartbeat(Heartbeat { commit: 0, read_round: 0 }) }
    }

    /// A peer that comes back after a while dials us; our writer to it must
    /// reconnect then, not when its grown backoff runs out — or the peer's
    /// votes would reach us while ours never reach it.
    #[tokio::test]
    async fn a_peer_that_connects_to_us_is_redialed_at_once() {
        let (addr_a, addr_b) = (free_addr(), free_addr());
        let (_stop, stopped) = watch::channel(());
        let (inbox_a, _rx_a) = mpsc::channel(64);
        let a = TcpTransport::start(settings(1, addr_a), addr_a, inbox_a, stopped.clone()).await.unwrap();
        a.add_configured_peer(2, addr_b);
        // Refused at 0, 0.4 s and 1.2 s; without a redial the next try is at 2.8 s.
        tokio::time::sleep(Duration::from_millis(1400)).await;

        let (inbox_b, mut rx_b) = mpsc::channel(64);
        let b = TcpTransport::start(settings(2, addr_b), addr_b, inbox_b, stopped).await.unwrap();
        let back = Instant::now();
        b.add_configured_peer(1, addr_a);
        let delivered = async {
            loop {
                a.send(heartbeat(1, 2));
                if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(20), rx_b.recv()).await {
                    return m;
                }
            }
        };
        let m = tokio::time::timeout(Duration::from_secs(5), delivered).await.unwrap();
        assert_eq!(m.from, 1);
        let waited = back.elapsed();
        assert!(waited < Duration::from_millis(700), "node 1 reached node 2 only after {waited:?}");
    }
}
