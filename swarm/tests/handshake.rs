//! Handshake and transport behaviour: ims-to-ims AEAD negotiation, v8 fallback, tampering,
//! downgrade attempts, peer pinning, and malformed input.

use swarm::noise::{Handshake, decode_length_prefix};
use swarm::{AeadSuite, HandshakeConfig, HandshakeError, Identity, Role, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};

fn ids() -> (Identity, Identity) {
    (Identity::from_seed(b"alice"), Identity::from_seed(b"bob"))
}

/// Steps two pure state machines against each other; `mitm(index, framed)` may rewrite each
/// framed message (0 = msg1) before the other side reads it.
fn run_pure(
    ic: &HandshakeConfig,
    rc: &HandshakeConfig,
    mut mitm: impl FnMut(usize, Vec<u8>) -> Vec<u8>,
) -> Result<(swarm::HandshakeOutcome, swarm::HandshakeOutcome), HandshakeError> {
    let (a, b) = ids();
    let mut i = Handshake::new(Role::Initiator, &a, ic)?;
    let mut r = Handshake::new(Role::Responder, &b, rc)?;
    for step in 0..3 {
        let (w, rd) = if step % 2 == 0 { (&mut i, &mut r) } else { (&mut r, &mut i) };
        let framed = mitm(step, w.write_message()?);
        let (msg, _) = decode_length_prefix(&framed)?.ok_or(HandshakeError::Eof)?;
        rd.read_message(msg)?;
    }
    Ok((i.finish()?, r.finish()?))
}

#[test]
fn two_ims_nodes_negotiate_aead() {
    let (i, r) =
        run_pure(&HandshakeConfig::default(), &HandshakeConfig::default(), |_, m| m).expect("handshake");
    let suite = if AeadSuite::aes_is_fast() { AeadSuite::Aes256Gcm } else { AeadSuite::ChaCha20Poly1305 };
    assert_eq!((i.transport, r.transport), (Transport::Aead(suite), Transport::Aead(suite)));
    assert_eq!(i.split.tx, r.split.rx);
    assert_eq!(i.split.rx, r.split.tx);
    assert_ne!(i.split.tx, i.split.rx);
}

#[test]
fn aes_gcm_only_when_both_offer_it() {
    let aes = HandshakeConfig::default().offer_aes_gcm(true);
    let chacha = HandshakeConfig::default().offer_aes_gcm(false);
    let suite = |ic: &HandshakeConfig, rc: &HandshakeConfig| {
        let (i, r) = run_pure(ic, rc, |_, m| m).expect("handshake");
        assert_eq!(i.transport, r.transport);
        i.transport
    };
    assert_eq!(suite(&aes, &aes), Transport::Aead(AeadSuite::Aes256Gcm));
    assert_eq!(suite(&aes, &chacha), Transport::Aead(AeadSuite::ChaCha20Poly1305));
    assert_eq!(suite(&chacha, &aes), Transport::Aead(AeadSuite::ChaCha20Poly1305));
    assert_eq!(suite(&chacha, &chacha), Transport::Aead(AeadSuite::ChaCha20Poly1305));
    // The AES bit means nothing without the record transport: a v8-compatible config sends
    // no feature bits at all.
    let v8 = HandshakeConfig::v8_compatible().offer_aes_gcm(true);
    assert_eq!(suite(&aes.clone().allow_xsalsa20(true), &v8), Transport::XSalsa20);
}

#[test]
fn ims_with_a_v8_peer_falls_back_to_xsalsa20_in_both_roles() {
    let v8 = HandshakeConfig::v8_compatible();
    let ims = HandshakeConfig::default().allow_xsalsa20(true);
    let (i, r) = run_pure(&ims, &v8, |step, m| {
        // A v8 peer's messages are exactly JS-sized: 58 / 122 / 90 bytes.
        if step == 1 {
            assert_eq!(m.len(), 123);
        }
        m
    })
    .expect("handshake");
    assert_eq!((i.transport, r.transport), (Transport::XSalsa20, Transport::XSalsa20));
    let (i, r) = run_pure(&v8, &ims, |_, m| m).expect("handshake");
    assert_eq!((i.transport, r.transport), (Transport::XSalsa20, Transport::XSalsa20));
}

/// Without `allow_xsalsa20` (the default) an ims node refuses a peer that offers only v8's
/// unauthenticated transport, in either role (issue 16: XSalsa20 only for JS peers the user
/// allowed).
#[test]
fn xsalsa20_is_refused_unless_allowed() {
    let v8 = HandshakeConfig::v8_compatible();
    let ims = HandshakeConfig::default();
    assert!(matches!(run_pure(&ims, &v8, |_, m| m), Err(HandshakeError::Unauthenticated)));
    assert!(matches!(run_pure(&v8, &ims, |_, m| m), Err(HandshakeError::Unauthenticated)));
    // Two ims nodes, one of them told not to offer the records: refused too.
    let quiet = HandshakeConfig::default().offer_aead(false);
    assert!(matches!(run_pure(&ims, &quiet, |_, m| m), Err(HandshakeError::Unauthenticated)));
}

#[test]
fn flipping_any_byte_of_msg2_or_msg3_fails_the_handshake() {
    let cfg = HandshakeConfig::default();
    for step in [1usize, 2] {
        let len = std::cell::Cell::new(0);
        run_pure(&cfg, &cfg, |s, m| {
            if s == step {
                len.set(m.len());
            }
            m
        })
        .expect("clean run");
        let len = len.get();
        assert!(len > 90);
        // Flip every byte after the length prefix (ephemeral key, encrypted static, payload).
        for at in 1..len {
            let res = run_pure(&cfg, &cfg, |s, mut m| {
                if s == step && at < m.len() {
                    m[at] ^= 0x01;
                }
                m
            });
            assert!(res.is_err(), "msg{} byte {at} flipped but the handshake succeeded", step + 1);
        }
    }
}

#[test]
fn stripping_the_aead_offer_from_msg1_fails_the_handshake() {
    for cfg in
        [HandshakeConfig::default().offer_aes_gcm(false), HandshakeConfig::default().offer_aes_gcm(true)]
    {
        let res = run_pure(&cfg, &cfg, |step, m| {
            if step != 0 {
                return m;
            }
            // msg1 = prefix ‖ e(32) ‖ payload(0a 18 nonce ‖ 10 bits). Drop field 2, re-prefix.
            assert_eq!(m[m.len() - 2], 0x10);
            let body = &m[1..m.len() - 2];
            let mut out = vec![body.len() as u8];
            out.extend_from_slice(body);
            out
        });
        assert!(matches!(res, Err(HandshakeError::Noise(_))), "downgrade went unnoticed: {res:?}");
    }
}

#[test]
fn downgrading_aes_gcm_to_chacha_in_msg1_fails_the_handshake() {
    let cfg = HandshakeConfig::default().offer_aes_gcm(true);
    let res = run_pure(&cfg, &cfg, |step, mut m| {
        if step == 0 {
            let at = m.len() - 1;
            assert_eq!(&m[at - 1..], &[0x10, 0x03]);
            m[at] = 0x01;
        }
        m
    });
    assert!(matches!(res, Err(HandshakeError::Noise(_))), "downgrade went unnoticed: {res:?}");
}

#[test]
fn adding_an_aead_offer_to_a_v8_msg1_fails_the_handshake() {
    let res = run_pure(&HandshakeConfig::v8_compatible(), &HandshakeConfig::default(), |step, m| {
        if step != 0 {
            return m;
        }
        let mut body = m[1..].to_vec();
        body.extend_from_slice(&[0x10, 0x01]);
        let mut out = vec![body.len() as u8];
        out.extend(body);
        out
    });
    assert!(matches!(res, Err(HandshakeError::Noise(_))), "{res:?}");
}

#[test]
fn pinned_peer_key_is_enforced() {
    let wrong = Identity::from_seed(b"mallory").public_key();
    let pinned = HandshakeConfig::default().expected_remote(wrong);
    let res = run_pure(&pinned, &HandshakeConfig::default(), |_, m| m);
    assert!(matches!(res, Err(HandshakeError::UnexpectedPeer { .. })), "{res:?}");
    let right = HandshakeConfig::default().expected_remote(ids().1.public_key());
    run_pure(&right, &HandshakeConfig::default(), |_, m| m).expect("pinned to the right key");
}

#[test]
fn out_of_order_use_is_an_error_not_a_panic() {
    let (a, _) = ids();
    let mut r = Handshake::new(Role::Responder, &a, &HandshakeConfig::default()).expect("new");
    assert!(matches!(r.write_message(), Err(HandshakeError::OutOfOrder(_))));
    assert!(r.read_message(&[0u8; 10]).is_err());
    assert!(matches!(r.finish(), Err(HandshakeError::OutOfOrder(_))));
    assert!(matches!(decode_length_prefix(&[0xff, 0xff, 0x04]), Err(HandshakeError::BadLength(_))));
    assert!(matches!(decode_length_prefix(&[0x80]), Ok(None)));
}

/// Forwards bytes both ways between two duplex ends, XOR-ing `flip` into the byte at
/// offset `at` of the a→b direction.
fn relay(mut a: DuplexStream, mut b: DuplexStream, at: Option<usize>) {
    tokio::spawn(async move {
        let (mut ar, mut aw) = tokio::io::split(&mut a);
        let (mut br, mut bw) = tokio::io::split(&mut b);
        let forward = async {
            let mut seen = 0usize;
            let mut buf = [0u8; 4096];
            loop {
                let n = match ar.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if let Some(at) = at.filter(|&at| at >= seen && at < seen + n) {
                    buf[at - seen] ^= 0x40;
                }
                seen += n;
                if bw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = bw.shutdown().await;
        };
        let back = async {
            let _ = tokio::io::copy(&mut br, &mut aw).await;
            let _ = aw.shutdown().await;
        };
        tokio::join!(forward, back);
    });
}

async fn connect<S>(
    i: S,
    r: S,
    ic: HandshakeConfig,
    rc: HandshakeConfig,
) -> (swarm::SecureStream<S>, swarm::SecureStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (a, b) = ids();
    let responder = tokio::spawn(async move { swarm::handshake(r, Role::Responder, &b, &rc).await });
    let i = swarm::handshake(i, Role::Initiator, &a, &ic).await.expect("initiator");
    let r = responder.await.expect("join").expect("responder");
    (i, r)
}

#[tokio::test]
async fn tcp_loopback_aead_stream_carries_large_writes_both_ways() {
    for aes in [false, true] {
        tcp_loopback_large_writes(HandshakeConfig::default().offer_aes_gcm(aes)).await;
    }
}

async fn tcp_loopback_large_writes(config: HandshakeConfig) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (dial, accept) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
    let (mut i, mut r) =
        connect(dial.expect("dial"), accept.expect("accept").0, config.clone(), config).await;
    assert!(i.is_authenticated() && r.is_authenticated());
    assert_eq!(i.remote_static_key(), ids().1.public_key());
    assert_eq!(r.remote_static_key(), ids().0.public_key());
    assert_eq!(i.split().tx, r.split().rx);
    let big: Vec<u8> = (0..300_000u32).map(|n| (n * 7 % 251) as u8).collect();
    let sent = big.clone();
    let writer = tokio::spawn(async move {
        i.write_all(&sent).await.expect("write");
        i.shutdown().await.expect("shutdown");
        i
    });
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.expect("read");
    assert_eq!(got, big);
    let mut i = writer.await.expect("join");
    r.write_all(b"pong").await.expect("write back");
    r.flush().await.expect("flush");
    let mut pong = [0u8; 4];
    i.read_exact(&mut pong).await.expect("read back");
    assert_eq!(&pong, b"pong");
}

/// A receiver that falls behind a bulk sender grows its receive buffer, so one read returns
/// many records (at least four 64 KiB blocks, which the replication layer hashes together);
/// the first read, before it grows, takes at most four records.
#[tokio::test]
async fn a_backlog_is_read_many_records_at_a_time() {
    let (x, y) = tokio::io::duplex(8 << 20);
    let (mut i, mut r) = connect(x, y, HandshakeConfig::default(), HandshakeConfig::default()).await;
    let big: Vec<u8> = (0..3_000_000u32).map(|n| (n * 13 % 251) as u8).collect();
    i.write_all(&big).await.expect("write");
    i.shutdown().await.expect("shutdown");
    let (mut got, mut reads) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        reads.push(n);
    }
    assert_eq!(got, big);
    let record = u16::MAX as usize;
    assert!(reads[0] <= 4 * record, "first read {}", reads[0]);
    assert!(reads.iter().any(|&n| n > 8 * record), "reads {reads:?}");
    assert!(reads.iter().all(|&n| n <= 16 * record), "reads {reads:?}");
}

/// A vectored write (frame headers around block values, as the replication writer sends
/// them) arrives as the concatenation of its slices, over both record ciphers and XSalsa20.
#[tokio::test]
async fn vectored_writes_arrive_as_their_concatenation() {
    use std::io::IoSlice;
    for (ic, rc) in [
        (HandshakeConfig::default().offer_aes_gcm(true), HandshakeConfig::default().offer_aes_gcm(true)),
        (HandshakeConfig::default().offer_aes_gcm(false), HandshakeConfig::default()),
        (HandshakeConfig::default().allow_xsalsa20(true), HandshakeConfig::v8_compatible()),
    ] {
        let (x, y) = tokio::io::duplex(8 << 20);
        let (mut i, mut r) = connect(x, y, ic, rc).await;
        assert!(i.is_write_vectored());
        let pieces: Vec<Vec<u8>> =
            (0..40u32).map(|k| (0..(k * 7919 % 70_000)).map(|n| (n * 13 + k) as u8).collect()).collect();
        let want: Vec<u8> = pieces.concat();
        let mut slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
        let mut left = &mut slices[..];
        while !left.is_empty() {
            let n = i.write_vectored(left).await.expect("write");
            assert!(n > 0);
            IoSlice::advance_slices(&mut left, n);
        }
        i.shutdown().await.expect("shutdown");
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, want);
    }
}

#[tokio::test]
async fn v8_peer_gets_xsalsa20_and_bytes_flow() {
    let (x, y) = tokio::io::duplex(1 << 16);
    let ims = HandshakeConfig::default().allow_xsalsa20(true);
    let (mut i, mut r) = connect(x, y, ims, HandshakeConfig::v8_compatible()).await;
    assert!(!i.is_authenticated() && !r.is_authenticated());
    i.write_all(b"hello v8").await.expect("write");
    i.flush().await.expect("flush");
    let mut buf = [0u8; 8];
    r.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"hello v8");
}

#[tokio::test]
async fn tampered_aead_record_is_rejected() {
    for aes in [false, true] {
        tampered_record(HandshakeConfig::default().offer_aes_gcm(aes)).await;
    }
}

async fn tampered_record(config: HandshakeConfig) {
    // Handshake bytes from the initiator: 59 + 93 (msg1 + msg3 with the 2-byte feature field
    // is 61 + 93). Flip a byte well past them, inside the first transport record.
    let (i_end, relay_a) = tokio::io::duplex(1 << 16);
    let (relay_b, r_end) = tokio::io::duplex(1 << 16);
    relay(relay_a, relay_b, Some(61 + 93 + 10));
    let (mut i, mut r) = connect(i_end, r_end, config.clone(), config).await;
    assert!(r.is_authenticated());
    i.write_all(&[7u8; 100]).await.expect("write");
    i.flush().await.expect("flush");
    let mut buf = [0u8; 100];
    let err = r.read_exact(&mut buf).await.expect_err("tampered record accepted");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    // The stream stays failed.
    assert!(r.read(&mut buf).await.is_err());
}

#[tokio::test]
async fn xsalsa20_is_malleable_as_v8_documents() {
    let (i_end, relay_a) = tokio::io::duplex(1 << 16);
    let (relay_b, r_end) = tokio::io::duplex(1 << 16);
    relay(relay_a, relay_b, Some(59 + 91 + 3));
    let v8 = HandshakeConfig::v8_compatible();
    let (mut i, mut r) = connect(i_end, r_end, v8.clone(), v8).await;
    i.write_all(&[0u8; 8]).await.expect("write");
    i.flush().await.expect("flush");
    let mut buf = [0u8; 8];
    r.read_exact(&mut buf).await.expect("read");
    assert_eq!(buf, [0, 0, 0, 0x40, 0, 0, 0, 0], "wire spec §4: bit flips pass through undetected");
}

#[tokio::test]
async fn peer_closing_mid_handshake_is_eof_and_silence_times_out() {
    let (a, _) = ids();
    let (x, mut y) = tokio::io::duplex(1024);
    let peer = tokio::spawn(async move {
        let mut buf = [0u8; 59];
        let _ = y.read_exact(&mut buf).await;
        drop(y);
    });
    let res = swarm::handshake(x, Role::Initiator, &a, &HandshakeConfig::default()).await;
    assert!(matches!(res, Err(HandshakeError::Eof)), "{res:?}");
    peer.await.expect("join");

    let (x, _y) = tokio::io::duplex(1024);
    let cfg = HandshakeConfig::default().timeout(Some(std::time::Duration::from_millis(50)));
    let res = swarm::handshake(x, Role::Responder, &a, &cfg).await;
    assert!(matches!(res, Err(HandshakeError::Timeout)), "{res:?}");
}

#[tokio::test]
async fn oversized_handshake_length_is_rejected_without_waiting() {
    let (a, _) = ids();
    let (x, mut y) = tokio::io::duplex(1024);
    y.write_all(&[0x80, 0x80, 0x80, 0x04]).await.expect("write"); // 2^23, far above 65535
    let res = swarm::handshake(x, Role::Responder, &a, &HandshakeConfig::default()).await;
    assert!(matches!(res, Err(HandshakeError::BadLength(8388608))), "{res:?}");
}

/// A peer that stops reading: the writer's buffer fills and, past the write timeout, the write
/// fails with `TimedOut` instead of waiting forever (issue 16).
#[tokio::test]
async fn a_write_to_a_peer_that_reads_nothing_times_out() {
    let (x, y) = tokio::io::duplex(64 * 1024);
    let (mut i, _r) = connect(x, y, HandshakeConfig::default(), HandshakeConfig::default()).await;
    i.set_write_timeout(Some(std::time::Duration::from_millis(200)));
    let started = std::time::Instant::now();
    let chunk = vec![7u8; 256 * 1024];
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            i.write_all(&chunk).await?;
            i.flush().await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    })
    .await
    .expect("the write must time out, not hang");
    let err = result.expect_err("nobody reads");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
