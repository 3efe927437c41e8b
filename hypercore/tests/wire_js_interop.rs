//! Interop with the real JS stack (hypercore@9 + hypercore-protocol@8 from
//! `tests/js/package-lock.json`) over TCP on 127.0.0.1, in both roles: swarm's handshake,
//! hypercore's frames, messages, channels and capabilities against JS's (wire spec §2–8).

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::time::Duration;

use hypercore::protocol::{
    ChannelMessage, Channels, Close, Data, FrameDecoder, Have, Message, RemoteOpen, Request, SessionKeys,
    Status, Want,
};
use hypercore::replicate::prefetch::data_message;
use hypercore::{FeedBuilder, KeyPair, Node, Proof, PublicKey, Signature, Storage};
use swarm::{HandshakeConfig, Identity, NodeId, Role, SecureStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "../../tests/testsuite/support/js.rs"]
mod js;

/// Everything here must finish well within this; it only guards against hangs.
const LIMIT: Duration = Duration::from_secs(40);

/// A node process, killed on drop.
struct JsPeer(Child);

impl Drop for JsPeer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_js(args: &[&str]) -> (JsPeer, BufReader<std::process::ChildStdout>) {
    let mut child = js::spawn_node("hypercore/tests/js/wire_peer.js", args, "hypercore-protocol");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    (JsPeer(child), stdout)
}

async fn read_json_line(mut out: BufReader<std::process::ChildStdout>) -> serde_json::Value {
    tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        out.read_line(&mut line).expect("read from node");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line from node {line:?}: {e}"))
    })
    .await
    .expect("join")
}

/// A v8 connection: the secure stream plus a frame decoder.
struct Conn {
    stream: SecureStream<TcpStream>,
    decoder: FrameDecoder,
}

impl Conn {
    async fn send(&mut self, msg: ChannelMessage) {
        self.stream.write_all(&msg.to_frame().expect("encode")).await.expect("send");
        self.stream.flush().await.expect("flush");
    }

    /// The next message, skipping keepalives; `None` at EOF.
    async fn recv(&mut self) -> Option<ChannelMessage> {
        loop {
            while let Some(frame) = self.decoder.next_frame().expect("valid frame from JS") {
                if let Some(msg) = ChannelMessage::from_frame(frame).expect("valid message from JS") {
                    return Some(msg);
                }
            }
            let mut buf = [0u8; 16 * 1024];
            let n = self.stream.read(&mut buf).await.expect("read");
            if n == 0 {
                return None;
            }
            self.decoder.extend(&buf[..n]);
        }
    }

    async fn recv_some(&mut self) -> ChannelMessage {
        self.recv().await.expect("JS closed the connection")
    }

    fn keys(&self) -> SessionKeys {
        SessionKeys::new(self.stream.split().tx, self.stream.split().rx)
    }
}

fn proof_of(data: &Data) -> Proof {
    Proof {
        index: data.index,
        nodes: data
            .nodes
            .iter()
            .map(|n| Node {
                index: n.index,
                hash: n.hash.as_slice().try_into().expect("32-byte hash"),
                size: n.size,
            })
            .collect(),
        signature: data.signature.as_deref().map(|s| Signature::from_bytes(s).expect("64-byte signature")),
    }
}

/// RLE bitfield (wire spec §8.3) of a feed whose first `len` < 8 blocks are all present.
fn small_rle(len: u64) -> Vec<u8> {
    hypercore::protocol::rle::encode(&[!(0xffu8 >> len)])
}

#[tokio::test]
async fn ims_initiator_downloads_and_verifies_blocks_from_a_js_writer() {
    tokio::time::timeout(LIMIT, async {
        let (_js, out) = spawn_js(&["serve"]);
        let info = read_json_line(out).await;
        let feed_key = PublicKey::from_bytes(&hex::decode(info["key"].as_str().expect("key")).expect("hex"))
            .expect("key");
        let js_node: NodeId = info["noiseKey"].as_str().expect("noiseKey").parse().expect("node id");
        let socket = TcpStream::connect(("127.0.0.1", info["port"].as_u64().expect("port") as u16))
            .await
            .expect("connect");

        // Our offer of authenticated records is ignored by JS: v8 XSalsa20, and the pinned key holds.
        let me = Identity::generate();
        let stream = swarm::handshake(
            socket,
            Role::Initiator,
            &me,
            &HandshakeConfig::default().allow_xsalsa20(true).expected_remote(js_node),
        )
        .await
        .expect("handshake with JS");
        assert!(!stream.is_authenticated());
        assert_eq!(stream.remote_static_key(), js_node);
        let mut conn = Conn { stream, decoder: FrameDecoder::new() };
        let mut channels = Channels::new(conn.keys());
        let (ours, open) = channels.open(&feed_key).expect("open");
        conn.send(open).await;

        // JS answers with its Open (its capability must verify) and the writer's Status.
        let msg = conn.recv_some().await;
        let Message::Open(open) = &msg.message else { panic!("expected Open, got {msg:?}") };
        assert_eq!(
            channels.on_open(msg.channel, open),
            Ok(RemoteOpen::Joined { local_id: ours, remote_id: msg.channel })
        );
        let msg = conn.recv_some().await;
        assert_eq!(msg.message, Message::Status(Status::new(true, false)));

        // Want window 0: the length hint, then the RLE bitfield of 3 blocks.
        conn.send(ChannelMessage::new(ours, Message::Want(Want { start: 0, length: Some(1 << 20) }))).await;
        let hint = conn.recv_some().await;
        assert_eq!(hint.message, Message::Have(Have { start: 2, ..Default::default() }));
        let have = conn.recv_some().await;
        assert_eq!(
            have.message,
            Message::Have(Have { start: 0, length: Some(1 << 20), bitfield: Some(small_rle(3)), ack: None })
        );
        let Message::Have(Have { bitfield: Some(bits), .. }) = &have.message else { unreachable!() };
        assert_eq!(hypercore::protocol::rle::decode(bits, 1 << 17).expect("rle"), [0xe0, 0, 0, 0]);

        // Download blocks 1 then 0 into a Rust replica, which verifies every proof.
        let replica = FeedBuilder::new(Storage::memory()).public_key(feed_key).open().await.expect("replica");
        for seq in [1u64, 0] {
            conn.send(ChannelMessage::new(
                ours,
                Message::Request(Request::new(seq, false, replica.digest(seq))),
            ))
            .await;
            let msg = conn.recv_some().await;
            let Message::Data(data) = &msg.message else { panic!("expected Data, got {msg:?}") };
            assert_eq!(data.index, seq);
            let value = data.value.clone().expect("value");
            replica.put(seq, &value, &proof_of(data)).await.expect("JS proof verifies in Rust");
            assert_eq!(value, format!("block {seq}").into_bytes());
        }
        assert!(replica.has(0) && replica.has(1) && !replica.has(2));

        // Close: JS answers with its own Close.
        conn.send(channels.close(ours).expect("close")).await;
        let msg = conn.recv_some().await;
        assert_eq!(msg.message, Message::Close(Close::default()));
    })
    .await
    .expect("the JS interop session hung");
}

#[tokio::test]
async fn js_initiator_downloads_and_verifies_blocks_from_an_ims_writer() {
    tokio::time::timeout(LIMIT, async {
        let writer =
            FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.expect("writer");
        writer.append_batch(&[b"ims 0".as_slice(), b"ims 1", b"ims 2"]).await.expect("append");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port().to_string();
        let (_js, out) = spawn_js(&["dial", &port, &writer.public_key().to_hex(), "3"]);
        let result = tokio::spawn(read_json_line(out));

        let (socket, _) = listener.accept().await.expect("accept");
        let me = Identity::generate();
        let stream =
            swarm::handshake(socket, Role::Responder, &me, &HandshakeConfig::default().allow_xsalsa20(true))
                .await
                .expect("handshake");
        assert!(!stream.is_authenticated());
        let js_node = stream.remote_static_key();
        let mut conn = Conn { stream, decoder: FrameDecoder::new() };
        let mut channels = Channels::new(conn.keys());
        let mut ours = None;
        let mut served = Vec::new();
        // A minimal uploader: answer Open, Want and Request until JS hangs up.
        while let Some(msg) = conn.recv().await {
            match &msg.message {
                Message::Open(open) => {
                    let RemoteOpen::Unknown { discovery_key } =
                        channels.on_open(msg.channel, open).expect("open")
                    else {
                        panic!("we had not opened the feed")
                    };
                    assert_eq!(discovery_key, writer.discovery_key());
                    // Opening now checks the capability JS sent.
                    let (id, open) = channels.open(&writer.public_key()).expect("JS capability verifies");
                    conn.send(open).await;
                    conn.send(ChannelMessage::new(id, Message::Status(Status::new(true, false)))).await;
                    ours = Some(id);
                }
                Message::Want(want) => {
                    assert_eq!((want.start, want.length()), (0, 1 << 20));
                    let id = ours.expect("open before want");
                    conn.send(ChannelMessage::new(
                        id,
                        Message::Have(Have { start: 2, ..Default::default() }),
                    ))
                    .await;
                    let have =
                        Have { start: 0, length: Some(1 << 20), bitfield: Some(small_rle(3)), ack: None };
                    conn.send(ChannelMessage::new(id, Message::Have(have))).await;
                }
                Message::Request(req) => {
                    assert_eq!(channels.route(msg.channel), ours);
                    let proof = writer.proof(req.index, req.nodes()).await.expect("proof");
                    let data = data_message(Some(writer.get(req.index).await.expect("block").into()), &proof);
                    conn.send(ChannelMessage::new(ours.expect("open"), Message::Data(data))).await;
                    served.push(req.index);
                }
                _ => {}
            }
        }
        let result = result.await.expect("join");
        assert_eq!(
            result["blocks"],
            serde_json::json!(["ims 0", "ims 1", "ims 2"]),
            "JS verified and read every block"
        );
        assert_eq!(result["noiseKey"].as_str(), Some(js_node.to_hex().as_str()));
        served.sort_unstable();
        assert_eq!(served, [0, 1, 2]);
    })
    .await
    .expect("the JS interop session hung");
}
