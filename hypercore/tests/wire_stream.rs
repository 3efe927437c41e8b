//! The message stream driver (wire spec §9): ordering, keepalives, receive timeout, hostile
//! framing, and the whole ims-to-ims stack (Noise + authenticated records + channels) on TCP.

use std::time::Duration;

use hypercore::KeyPair;
use hypercore::protocol::FrameError as FrameErr;
use hypercore::protocol::{
    ChannelMessage, Channels, Message, RemoteOpen, SessionKeys, Status, StreamError, StreamOptions, Want,
    message_stream,
};
use swarm::{HandshakeConfig, Identity, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn opts(timeout_ms: u64, keepalive_ms: u64) -> StreamOptions {
    StreamOptions {
        timeout: Duration::from_millis(timeout_ms),
        keepalive: Duration::from_millis(keepalive_ms),
        queue: 8,
    }
}

#[tokio::test]
async fn messages_arrive_in_order_and_drop_closes() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (tx, _rx_a) = message_stream(a, StreamOptions::default());
    let (_tx_b, mut rx) = message_stream(b, StreamOptions::default());
    let sent: Vec<ChannelMessage> = (0..50u64)
        .map(|i| ChannelMessage::new(1 + i % 3, Message::Want(Want { start: i * 8192, length: Some(8192) })))
        .collect();
    for m in &sent {
        tx.send(m).await.expect("send");
    }
    drop(tx);
    let mut got = Vec::new();
    while let Some(m) = rx.recv().await.expect("recv") {
        got.push(m);
    }
    assert_eq!(got, sent);
}

#[tokio::test]
async fn a_burst_from_one_read_is_taken_without_reading_again() {
    let (a, mut peer) = tokio::io::duplex(1 << 20);
    let (_tx, mut rx) = message_stream(a, StreamOptions::default());
    let msgs: Vec<ChannelMessage> = (0..3u64)
        .map(|i| ChannelMessage::new(1, Message::Want(Want { start: i, length: Some(1) })))
        .collect();
    // Three frames and a keepalive in one write, then half of a fourth frame.
    let mut bytes = Vec::new();
    for m in &msgs {
        m.encode(&mut bytes).expect("encode");
    }
    bytes.push(0);
    let fourth =
        ChannelMessage::new(2, Message::Status(Status::new(true, false))).to_frame().expect("encode");
    bytes.extend_from_slice(&fourth[..fourth.len() / 2]);
    peer.write_all(&bytes).await.expect("write");
    assert_eq!(rx.recv().await.expect("recv").as_ref(), Some(&msgs[0]));
    assert_eq!(rx.try_recv_buffered().expect("buffered").as_ref(), Some(&msgs[1]));
    assert_eq!(rx.try_recv_buffered().expect("buffered").as_ref(), Some(&msgs[2]));
    // The keepalive is skipped; half a frame is not a message yet, and nothing is read.
    assert_eq!(rx.try_recv_buffered().expect("buffered"), None);
    peer.write_all(&fourth[fourth.len() / 2..]).await.expect("write");
    assert!(rx.recv().await.expect("recv").is_some());
    // A malformed frame in a burst is an error from the buffered path too.
    peer.write_all(&[0x03, 0x19, 0xff, 0xff, 0x03, 0x19, 0xff, 0xff]).await.expect("write");
    assert!(matches!(rx.recv().await, Err(StreamError::Message(_))));
}

#[tokio::test]
async fn an_idle_sender_emits_keepalives() {
    let (a, mut peer) = tokio::io::duplex(1 << 16);
    let (_tx, _rx) = message_stream(a, opts(10_000, 20));
    let mut byte = [0xffu8; 1];
    peer.read_exact(&mut byte).await.expect("a keepalive arrives");
    assert_eq!(byte, [0x00]);
}

#[tokio::test]
async fn a_silent_peer_times_out_and_keepalives_refresh_the_timer() {
    let (a, mut peer) = tokio::io::duplex(1 << 16);
    let (_tx, mut rx) = message_stream(a, opts(300, 10_000));
    // Keepalives (0x00) count as traffic; then a real message still gets through.
    for _ in 0..3 {
        peer.write_all(&[0]).await.expect("keepalive");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = ChannelMessage::new(1, Message::Status(Status::new(true, true)));
    peer.write_all(&status.to_frame().expect("encode")).await.expect("write");
    assert_eq!(rx.recv().await.expect("recv"), Some(status));
    // Then silence: the receiver gives up.
    assert!(matches!(rx.recv().await, Err(StreamError::Timeout(_))));
}

#[tokio::test]
async fn hostile_framing_is_rejected() {
    // A 1 GB frame: rejected from its 5-byte prefix.
    let (a, mut peer) = tokio::io::duplex(1 << 16);
    let (_tx, mut rx) = message_stream(a, StreamOptions::default());
    peer.write_all(&[0x80, 0x80, 0x80, 0x80, 0x04]).await.expect("write");
    assert!(matches!(rx.recv().await, Err(StreamError::Frame(FrameErr::TooLarge { len: 1073741824 }))));

    // Garbage in a known message type.
    let (a, mut peer) = tokio::io::duplex(1 << 16);
    let (_tx, mut rx) = message_stream(a, StreamOptions::default());
    peer.write_all(&[0x03, 0x19, 0xff, 0xff]).await.expect("write");
    assert!(matches!(rx.recv().await, Err(StreamError::Message(_))));

    // EOF inside a frame.
    let (a, mut peer) = tokio::io::duplex(1 << 16);
    let (_tx, mut rx) = message_stream(a, StreamOptions::default());
    peer.write_all(&[0x05, 0x12, 0x08]).await.expect("write");
    drop(peer);
    assert!(matches!(rx.recv().await, Err(StreamError::TruncatedFrame)));
}

#[tokio::test]
async fn two_ims_nodes_open_a_feed_over_authenticated_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let feed = KeyPair::from_seed(&[3; 32]).public;
    let server_id = Identity::from_seed(b"server");
    let server_key = server_id.public_key();
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.expect("accept");
        let secure = swarm::handshake(socket, Role::Responder, &server_id, &HandshakeConfig::default())
            .await
            .expect("hs");
        assert!(secure.is_authenticated());
        let mut channels = Channels::new(SessionKeys::new(secure.split().tx, secure.split().rx));
        let (tx, mut rx) = message_stream(secure, StreamOptions::default());
        let msg = rx.recv().await.expect("recv").expect("open");
        let Message::Open(open) = &msg.message else { panic!("{msg:?}") };
        let RemoteOpen::Unknown { discovery_key } = channels.on_open(msg.channel, open).expect("on_open")
        else {
            panic!()
        };
        assert_eq!(discovery_key, feed.discovery_key());
        let (id, open) = channels.open(&feed).expect("capability verifies");
        tx.send(&open).await.expect("send open");
        tx.send(&ChannelMessage::new(id, Message::Status(Status::new(true, false))))
            .await
            .expect("send status");
        // Wait for the client's Close, then answer it.
        let msg = rx.recv().await.expect("recv").expect("close");
        let Message::Close(close) = &msg.message else { panic!("{msg:?}") };
        let rc = channels.on_close(msg.channel, close).expect("known");
        tx.send(&channels.close(rc.local_id.expect("ours open")).expect("close")).await.expect("send close");
    });

    let socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let me = Identity::from_seed(b"client");
    let secure = swarm::handshake(
        socket,
        Role::Initiator,
        &me,
        &HandshakeConfig::default().expected_remote(server_key),
    )
    .await
    .expect("handshake");
    assert!(secure.is_authenticated());
    let mut channels = Channels::new(SessionKeys::new(secure.split().tx, secure.split().rx));
    let (tx, mut rx) = message_stream(secure, StreamOptions::default());
    let (ours, open) = channels.open(&feed).expect("open");
    tx.send(&open).await.expect("send");
    let msg = rx.recv().await.expect("recv").expect("open back");
    let Message::Open(open) = &msg.message else { panic!("{msg:?}") };
    assert_eq!(
        channels.on_open(msg.channel, open),
        Ok(RemoteOpen::Joined { local_id: ours, remote_id: msg.channel })
    );
    let msg = rx.recv().await.expect("recv").expect("status");
    assert_eq!(msg.message, Message::Status(Status::new(true, false)));
    tx.send(&channels.close(ours).expect("close")).await.expect("send close");
    let msg = rx.recv().await.expect("recv").expect("close back");
    assert!(matches!(msg.message, Message::Close(_)));
    server.await.expect("server");
}

/// A bad peer that completes a real handshake (as initiator) and then writes `garbage`
/// raw, bypassing the transport cipher.
async fn garbage_peer(mut io: tokio::io::DuplexStream, config: HandshakeConfig, garbage: Vec<u8>) {
    let me = Identity::from_seed(b"bad peer");
    let mut hs = swarm::noise::Handshake::new(Role::Initiator, &me, &config).expect("hs");
    io.write_all(&hs.write_message().expect("msg1")).await.expect("w1");
    let mut buf = Vec::new();
    let msg2 = loop {
        if let Some((msg, _)) = swarm::noise::decode_length_prefix(&buf).expect("prefix") {
            break msg.to_vec();
        }
        let mut chunk = [0u8; 512];
        let n = io.read(&mut chunk).await.expect("r2");
        assert!(n > 0, "responder hung up");
        buf.extend_from_slice(&chunk[..n]);
    };
    hs.read_message(&msg2).expect("msg2");
    io.write_all(&hs.write_message().expect("msg3")).await.expect("w3");
    io.write_all(&garbage).await.expect("garbage");
    // Keep the pipe open until the victim hangs up.
    let mut sink = Vec::new();
    let _ = io.read_to_end(&mut sink).await;
}

#[tokio::test]
async fn garbage_after_the_handshake_drops_the_peer() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    // More than one maximal record, so an AEAD receiver always gets a whole record to reject.
    let garbage: Vec<u8> = (0..70_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    for (name, config) in [("aead", HandshakeConfig::default()), ("v8", HandshakeConfig::v8_compatible())] {
        let (x, y) = tokio::io::duplex(1 << 16);
        let bad = tokio::spawn(garbage_peer(y, config.clone(), garbage.clone()));
        let me = Identity::from_seed(b"victim");
        let secure = swarm::handshake(x, Role::Responder, &me, &config).await.expect("handshake");
        let authenticated = secure.is_authenticated();
        let (_tx, mut rx) = message_stream(secure, opts(1000, 10_000));
        let mut outcome = Ok(None);
        // Whatever garbage decodes to, the stream must end in an error, never a panic/hang.
        for _ in 0..4096 {
            outcome = rx.recv().await;
            if !matches!(outcome, Ok(Some(_))) {
                break;
            }
        }
        assert!(outcome.is_err(), "{name}: garbage ended in {outcome:?}");
        if authenticated {
            // Records are authenticated: the first record fails its tag.
            assert!(
                matches!(outcome, Err(StreamError::Io(ref e)) if e.kind() == std::io::ErrorKind::InvalidData),
                "{name}: {outcome:?}"
            );
        }
        drop(rx);
        drop(_tx);
        bad.abort();
    }
}
