//! TCP dial/accept with the handshake on 127.0.0.1: pinning the dialled key, unreachable
//! addresses.

use swarm::{DialError, HandshakeConfig, HandshakeError, Identity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn dial_pins_the_peer_key() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Identity::from_seed(b"server");
    let server_key = server.public_key();
    let accepting = tokio::spawn(async move {
        let mut results = Vec::new();
        for _ in 0..2 {
            results.push(swarm::accept(&listener, &server, &HandshakeConfig::default()).await.map(
                |(mut s, _)| {
                    tokio::spawn(async move {
                        let _ = s.write_all(b"hi").await;
                        let _ = s.flush().await;
                        let mut sink = Vec::new();
                        let _ = s.read_to_end(&mut sink).await;
                    });
                },
            ));
        }
        results
    });
    let me = Identity::from_seed(b"client");
    let mut stream =
        swarm::dial(addr, &me, Some(server_key), &HandshakeConfig::default()).await.expect("dial");
    assert_eq!(stream.remote_static_key(), server_key);
    assert!(stream.is_authenticated());
    let mut hi = [0u8; 2];
    stream.read_exact(&mut hi).await.expect("read");
    assert_eq!(&hi, b"hi");
    drop(stream);

    let impostor = Identity::from_seed(b"someone else").public_key();
    let err = swarm::dial(addr, &me, Some(impostor), &HandshakeConfig::default())
        .await
        .expect_err("wrong key accepted");
    assert!(
        matches!(&err, DialError::Handshake { source: HandshakeError::UnexpectedPeer { actual, .. }, .. } if *actual == server_key),
        "{err}"
    );
    // The server side of the refused dial fails too (we hang up before msg3).
    let results = accepting.await.expect("join");
    assert!(results[0].is_ok());
    assert!(results[1].is_err());
}

#[tokio::test]
async fn dialling_a_closed_port_names_the_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = swarm::dial(addr, &Identity::from_seed(b"c"), None, &HandshakeConfig::default())
        .await
        .expect_err("closed");
    assert!(
        matches!(&err, DialError::Unreachable { tried, .. } if tried.len() == 1 && tried[0].starts_with(&addr.to_string())),
        "{err}"
    );
}
