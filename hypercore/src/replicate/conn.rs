//! One connection's replication state machine (wire spec §8–9; JS `lib/replicate.js`
//! `Peer`): per feed channel what the remote has and wants, our requests in flight, and
//! the prefetch in progress.
//!
//! Two tasks per connection: the read task ([`read_loop`]) decodes the peer's messages in
//! bursts (one read each) while the connection task ([`run`]) handles them: it merges the
//! bursts already queued into the one it takes, hashes their blocks together, then handles
//! each message. This file holds the connection loop and the per-message dispatch; the two
//! directions are in `conn/upload.rs` (serving Wants and Requests: Haves, proofs and Data
//! out, appends announced, peers' prefetches answered) and `conn/download.rs` (receiving
//! Data: verification, storing, the want/request bookkeeping and our prefetch).

mod download;
mod upload;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::extension::{ExtensionPeer, Handlers, OUTGOING_QUEUE, Outgoing};
use super::prefetch::{PREFETCH_EXTENSION, PrefetchMessage};
use super::router::Command;
use super::{ReplicateError, ReplicateOptions, ReplicateStats};
use crate::bitfield::Bitfield;
use crate::crypto::DiscoveryKey;
use crate::feed::{Feed, PendingPut};
use crate::protocol::{
    ChannelMessage, Event, Message, MessageReceiver, MessageSender, Session, SessionKeys, Status,
    StreamError, Want, message_stream,
};
use crate::state::FeedEvent;

/// Want/Have window (wire spec §8.2).
const WINDOW: u64 = 1 << 20;
/// Largest range one Have may mark (longer is clipped): bounds the work per message.
const MAX_HAVE_RANGE: u64 = 1 << 23;

/// Source of [`ExtensionPeer::id`]s, unique in the process.
static NEXT_EXTENSION_PEER: AtomicU64 = AtomicU64::new(1);

/// A prefetch we sent and wait to be answered.
struct Pending {
    done: oneshot::Sender<Result<u64, ReplicateError>>,
    received: u64,
    since: Instant,
}

/// One feed on this connection.
struct Chan {
    feed: Feed,
    dk: DiscoveryKey,
    joined: bool,
    /// The peer sent a Want: it gets Have announcements.
    remote_wants: bool,
    /// Length already announced to the peer.
    announced: u64,
    remote: Bitfield,
    remote_len: u64,
    remote_uploading: bool,
    remote_prefetch: bool,
    inflight: HashMap<u64, Instant>,
    windows: BTreeSet<u64>,
    cursor: u64,
    prefetch: Option<Pending>,
    /// Verified blocks being written (shared syncs); not yet readable, so not re-requested.
    storing: VecDeque<(u64, PendingPut)>,
    /// Valid Data we did not request since the last one we did: messages and value bytes.
    unsolicited: (u64, u64),
    /// Blocks the peer's Haves and Wants made us look at so far (bounded by
    /// [`MAX_ANNOUNCED_BLOCKS`](crate::replicate::MAX_ANNOUNCED_BLOCKS)).
    announced_work: u64,
    /// Handles given to extension handlers, by handler position.
    ext_peers: HashMap<usize, ExtensionPeer>,
}

impl Chan {
    /// Counts `blocks` more looked at for the peer's announcements; `Err` past the bound.
    fn charge_announcements(&mut self, blocks: u64) -> Result<(), ReplicateError> {
        self.announced_work = self.announced_work.saturating_add(blocks);
        if self.announced_work > crate::replicate::MAX_ANNOUNCED_BLOCKS {
            tracing::warn!(feed = %self.dk, blocks = self.announced_work, "a peer announces far more blocks than a feed can have; closing the connection");
            return Err(ReplicateError::Announce { feed: self.dk, reason: "too many Have/Want ranges" });
        }
        Ok(())
    }

    fn new(feed: Feed) -> Self {
        Self {
            dk: feed.discovery_key(),
            feed,
            joined: false,
            remote_wants: false,
            announced: 0,
            remote: Bitfield::new(),
            remote_len: 0,
            remote_uploading: true,
            remote_prefetch: false,
            inflight: HashMap::new(),
            windows: BTreeSet::new(),
            cursor: 0,
            prefetch: None,
            storing: VecDeque::new(),
            unsolicited: (0, 0),
            announced_work: 0,
            ext_peers: HashMap::new(),
        }
    }
}

impl Chan {
    /// Whether block `seq` was verified here and is still being written.
    fn is_storing(&self, seq: u64) -> bool {
        self.storing.iter().any(|(s, _)| *s == seq)
    }
}

/// Aborts the helper tasks when the connection ends (or its future is dropped).
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

struct Conn {
    session: Session,
    out: MessageSender,
    handlers: Handlers,
    ext_tx: mpsc::Sender<Outgoing>,
    chans: HashMap<u64, Chan>,
    opts: ReplicateOptions,
    stats: ReplicateStats,
}

/// Where the router sends a connection's commands (prefetches).
type CommandTx = mpsc::Sender<(DiscoveryKey, Command)>;

/// Everything the connection task waits on.
struct Inputs {
    /// The peer's messages, in bursts, from [`read_loop`].
    incoming: mpsc::Receiver<Result<Option<Incoming>, StreamError>>,
    /// Appends and downloads of our feeds.
    events: mpsc::Receiver<(DiscoveryKey, FeedEvent)>,
    /// The router has new wanted blocks.
    wake: Arc<Notify>,
    /// Prefetches asked through the router.
    commands: mpsc::Receiver<(DiscoveryKey, Command)>,
    /// Extension handlers' messages to send.
    extensions: mpsc::Receiver<Outgoing>,
}

/// One connection: starts the read task and the event forwarders, opens a channel per feed,
/// then runs the connection loop ([`Conn::serve`]) until the end.
pub(super) async fn run<S>(
    io: S,
    keys: SessionKeys,
    feeds: Vec<Feed>,
    opts: ReplicateOptions,
) -> Result<ReplicateStats, ReplicateError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (out, receiver) = message_stream(io, opts.stream);
    // Bursts of up to a read (1 MiB) each: a few are enough to keep both tasks busy.
    let (in_tx, incoming) = mpsc::channel(4);
    let mut tasks = Tasks(Vec::new());
    tasks.0.push(tokio::spawn(read_loop(receiver, in_tx)));
    let events = forward_events(&feeds, &mut tasks);
    let wake = Arc::new(Notify::new());
    let (cmd_tx, commands) = mpsc::channel(16);
    let conn_id = opts.router.as_ref().map(|r| r.connection_id());
    let (mut conn, extensions) = Conn::new(keys, out, &opts);
    let mut inputs = Inputs { incoming, events, wake: wake.clone(), commands, extensions };
    let result = async {
        for feed in feeds {
            conn.open_feed(feed, conn_id.map(|id| (id, &wake, &cmd_tx))).await?;
        }
        conn.serve(&mut inputs).await
    }
    .await;
    if let (Some(router), Some(id)) = (&opts.router, conn_id) {
        router.detach(id);
    }
    drop(tasks);
    match result {
        Ok(()) => Ok(conn.stats),
        Err(e) => {
            tracing::debug!(error = %e, "replication connection dropped");
            Err(e)
        }
    }
}

/// One task per feed forwards its events to the connection task (a lagging subscriber
/// learns the length instead).
fn forward_events(feeds: &[Feed], tasks: &mut Tasks) -> mpsc::Receiver<(DiscoveryKey, FeedEvent)> {
    let (ev_tx, ev_rx) = mpsc::channel(256);
    for feed in feeds {
        let mut events = feed.subscribe();
        let (dk, tx, f) = (feed.discovery_key(), ev_tx.clone(), feed.clone());
        tasks.0.push(tokio::spawn(async move {
            loop {
                let ev = match events.recv().await {
                    Ok(ev) => ev,
                    Err(broadcast::error::RecvError::Lagged(_)) => FeedEvent::Append { len: f.len() },
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if tx.send((dk, ev)).await.is_err() {
                    return;
                }
            }
        }));
    }
    ev_rx
}

/// Moves bursts already queued behind `burst` into it (more blocks are then hashed four at
/// a time), up to [`MAX_HASHED_TOGETHER`] messages; the end or error of the stream, if it
/// came next.
fn merge_queued(
    burst: &mut Incoming,
    incoming: &mut mpsc::Receiver<Result<Option<Incoming>, StreamError>>,
) -> Option<Result<Option<Incoming>, StreamError>> {
    while burst.len() < MAX_HASHED_TOGETHER {
        match incoming.try_recv() {
            Ok(Ok(Some(more))) => burst.extend(more),
            Ok(last) => return Some(last),
            Err(_) => break,
        }
    }
    None
}

impl Conn {
    /// The connection state before any feed is opened; and where extension handlers' messages
    /// arrive.
    fn new(
        keys: SessionKeys,
        out: MessageSender,
        opts: &ReplicateOptions,
    ) -> (Self, mpsc::Receiver<Outgoing>) {
        let handlers: Handlers =
            opts.extensions.iter().filter(|h| h.name() != PREFETCH_EXTENSION).cloned().collect();
        let mut names = vec![PREFETCH_EXTENSION];
        names.extend(handlers.iter().map(|h| h.name()));
        let (ext_tx, ext_rx) = mpsc::channel(OUTGOING_QUEUE);
        let conn = Conn {
            session: Session::new(keys, &names, &[]),
            out,
            handlers,
            ext_tx,
            chans: HashMap::new(),
            opts: opts.clone(),
            stats: ReplicateStats::default(),
        };
        (conn, ext_rx)
    }

    /// Opens a channel for `feed` (a writer says it uploads) and, given the connection's
    /// router id, attaches it to the feed's router.
    async fn open_feed(
        &mut self,
        feed: Feed,
        router: Option<(u64, &Arc<Notify>, &CommandTx)>,
    ) -> Result<(), ReplicateError> {
        let (local_id, msgs) = self.session.open(&feed.public_key())?;
        for m in &msgs {
            self.out.send(m).await?;
        }
        if feed.writable() {
            self.out.send(&ChannelMessage::new(local_id, Message::Status(Status::new(true, false)))).await?;
        }
        if let (Some(r), Some((id, wake, cmd_tx))) = (&self.opts.router, router) {
            r.attach(feed.discovery_key(), id, wake.clone(), cmd_tx.clone());
        }
        self.chans.insert(local_id, Chan::new(feed));
        Ok(())
    }

    /// The connection loop: handles what arrives until the peer ends the stream, every
    /// channel is closed, or something fails.
    async fn serve(&mut self, inputs: &mut Inputs) -> Result<(), ReplicateError> {
        let period = (self.opts.request_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                next = inputs.incoming.recv() => match next {
                    None | Some(Ok(None)) => return Ok(()),
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(Some(mut burst))) => {
                        let end = merge_queued(&mut burst, &mut inputs.incoming);
                        if self.on_burst(burst).await? {
                            return Ok(());
                        }
                        match end {
                            Some(Ok(None)) => return Ok(()),
                            Some(Err(e)) => return Err(e.into()),
                            _ => {}
                        }
                    }
                },
                Some((dk, ev)) = inputs.events.recv() => self.on_feed_event(dk, ev).await?,
                () = inputs.wake.notified() => {
                    let ids: Vec<u64> = self.chans.keys().copied().collect();
                    for id in ids {
                        self.request_more(id).await?;
                    }
                }
                Some((dk, cmd)) = inputs.commands.recv() => self.on_command(dk, cmd).await?,
                Some(o) = inputs.extensions.recv() => self.send_extension(o).await?,
                _ = tick.tick() => self.check_timeouts()?,
            }
        }
    }
}

/// Messages taken from the stream together at most.
const READ_BURST: usize = 16;
/// Messages whose blocks the connection task hashes together at most (queued bursts join).
const MAX_HASHED_TOGETHER: usize = 4 * READ_BURST;

/// Messages that arrived together (one read). The connection task hashes the values of their
/// Data messages together ([`leaf_hashes`]: four at a time with AVX2).
type Incoming = Vec<ChannelMessage>;

/// Decodes the peer's messages for the connection task, in bursts: the messages that arrived
/// in one read. Reading, opening records and decoding take about as much CPU as hashing the
/// blocks, so the connection task hashes (and verifies and stores) while this task reads the
/// next burst.
async fn read_loop<S: AsyncRead>(
    mut receiver: MessageReceiver<S>,
    tx: mpsc::Sender<Result<Option<Incoming>, StreamError>>,
) {
    loop {
        let first = match receiver.recv().await {
            Ok(Some(msg)) => msg,
            Ok(None) => {
                let _ = tx.send(Ok(None)).await;
                return;
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let mut burst = vec![first];
        let mut failed = None;
        while burst.len() < READ_BURST {
            match receiver.try_recv_buffered() {
                Ok(Some(msg)) => burst.push(msg),
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if tx.send(Ok(Some(burst))).await.is_err() {
            return;
        }
        if let Some(e) = failed {
            let _ = tx.send(Err(e)).await;
            return;
        }
    }
}

impl Drop for Conn {
    /// However the connection ends (an error, or its future dropped), the extension handlers
    /// learn that their peers are gone.
    fn drop(&mut self) {
        for chan in self.chans.values() {
            for (&i, peer) in &chan.ext_peers {
                self.handlers[i].on_close(peer);
            }
        }
    }
}

impl Conn {
    async fn send(&self, local_id: u64, message: Message) -> Result<(), StreamError> {
        self.out.send_owned(ChannelMessage::new(local_id, message)).await
    }

    /// The handle of handler `i` for the peer on channel `local_id`, made (and announced with
    /// [`ExtensionHandler::on_peer`](super::ExtensionHandler::on_peer)) on first use.
    fn extension_peer(&mut self, local_id: u64, i: usize) -> Option<ExtensionPeer> {
        let chan = self.chans.get_mut(&local_id)?;
        if let Some(peer) = chan.ext_peers.get(&i) {
            return Some(peer.clone());
        }
        let id = NEXT_EXTENSION_PEER.fetch_add(1, Ordering::Relaxed);
        let peer = ExtensionPeer::new(id, chan.dk, local_id, i, self.ext_tx.clone());
        chan.ext_peers.insert(i, peer.clone());
        self.handlers[i].on_peer(peer.clone());
        Some(peer)
    }

    /// Sends a handler's message, if its channel is still open.
    async fn send_extension(&mut self, o: Outgoing) -> Result<(), StreamError> {
        let Some(handler) = self.handlers.get(o.extension) else { return Ok(()) };
        match self.session.extension(Some(o.channel), handler.name(), o.payload) {
            Some(msg) => self.out.send(&msg).await,
            None => Ok(()),
        }
    }

    /// Handles messages that arrived together, their blocks hashed together ([`leaf_hashes`]:
    /// four at a time with AVX2); `Ok(true)` when the connection is done.
    async fn on_burst(&mut self, burst: Incoming) -> Result<bool, ReplicateError> {
        let mut hashes = download::burst_leaves(&burst);
        for msg in burst {
            let leaf = if download::data_value(&msg).is_some() { hashes.next() } else { None };
            if self.on_message(msg, leaf).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Handles one message; `Ok(true)` when the connection is done (every channel closed).
    async fn on_message(
        &mut self,
        msg: ChannelMessage,
        leaf: Option<[u8; 32]>,
    ) -> Result<bool, ReplicateError> {
        let Some(event) = self.session.on_message(msg)? else { return Ok(false) };
        match event {
            Event::DiscoveryKey(dk) => tracing::debug!(%dk, "peer opened a feed we do not replicate here"),
            Event::Joined { local_id, .. } => {
                let Some(chan) = self.chans.get_mut(&local_id) else { return Ok(false) };
                chan.joined = true;
                if !chan.feed.writable() {
                    chan.windows.insert(0);
                    self.send(local_id, Message::Want(Want { start: 0, length: Some(WINDOW) })).await?;
                }
            }
            Event::Closed { reply, discovery_key } => {
                if let Some(reply) = reply {
                    self.out.send(&reply).await?;
                }
                for chan in self.chans.values().filter(|c| c.dk == discovery_key) {
                    for (&i, peer) in &chan.ext_peers {
                        self.handlers[i].on_close(peer);
                    }
                }
                self.chans.retain(|_, c| c.dk != discovery_key);
                return Ok(self.chans.is_empty());
            }
            Event::Extension { local_id: Some(local_id), name, payload } if name == PREFETCH_EXTENSION => {
                self.on_prefetch(local_id, &payload).await?;
            }
            Event::Extension { local_id: Some(local_id), name, payload } => {
                let Some(i) = self.handlers.iter().position(|h| h.name() == name) else { return Ok(false) };
                if let Some(peer) = self.extension_peer(local_id, i) {
                    self.handlers[i].on_message(&peer, payload);
                }
            }
            Event::Extension { .. } => {}
            Event::Message { local_id, message } => self.on_channel_message(local_id, message, leaf).await?,
        }
        Ok(false)
    }

    async fn on_channel_message(
        &mut self,
        local_id: u64,
        message: Message,
        leaf: Option<[u8; 32]>,
    ) -> Result<(), ReplicateError> {
        let Some(chan) = self.chans.get_mut(&local_id) else { return Ok(()) };
        match message {
            Message::Options(options) => {
                chan.remote_prefetch = options.extensions.iter().any(|e| e == PREFETCH_EXTENSION);
                let spoken: Vec<usize> = (0..self.handlers.len())
                    .filter(|&i| options.extensions.iter().any(|e| e == self.handlers[i].name()))
                    .collect();
                for i in spoken {
                    self.extension_peer(local_id, i);
                }
            }
            Message::Status(status) => {
                chan.remote_uploading = status.uploading.unwrap_or(false);
                if !chan.remote_uploading {
                    chan.inflight.clear();
                }
            }
            Message::Have(have) => {
                download::on_have(chan, &have)?;
                self.request_more(local_id).await?;
            }
            Message::Want(want) => self.on_want(local_id, want).await?,
            Message::Request(request) => self.on_request(local_id, request).await?,
            Message::Data(data) => self.on_data(local_id, data, leaf).await?,
            // Unhave, Unwant, Cancel: JS does not act on them either.
            _ => {}
        }
        Ok(())
    }

    /// An `ims/prefetch` message: the end of the answer to ours, or a peer's prefetch to
    /// answer.
    async fn on_prefetch(&mut self, local_id: u64, payload: &[u8]) -> Result<(), ReplicateError> {
        let Some(chan) = self.chans.get_mut(&local_id) else { return Ok(()) };
        let dk = chan.dk;
        let msg = PrefetchMessage::from_bytes(payload)
            .map_err(|reason| ReplicateError::Prefetch { feed: dk, reason })?;
        match msg.sent {
            Some(sent) => self.on_prefetch_answered(local_id, sent).await,
            None => self.answer_prefetch(local_id, msg).await,
        }
    }
}
