//! TCP connections to and from peers, secured with the v8 Noise handshake: the direct
//! `--peer HOST:PORT` path (DESIGN.md "Discovery and connections"), before any DHT.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs, lookup_host};

use crate::error::{AcceptError, DialError};
use crate::identity::{Identity, NodeId};
use crate::noise::{HandshakeConfig, Role};
use crate::stream::{SecureStream, handshake};

/// Dials `addr` (every resolved address in turn, first success wins) and runs the handshake
/// as initiator. With `expected` set, the peer must prove it holds that key.
pub async fn dial<A: ToSocketAddrs + std::fmt::Display>(
    addr: A,
    identity: &Identity,
    expected: Option<NodeId>,
    config: &HandshakeConfig,
) -> Result<SecureStream<TcpStream>, DialError> {
    let target = addr.to_string();
    let config = match expected {
        Some(key) => config.clone().expected_remote(key),
        None => config.clone(),
    };
    let addrs: Vec<SocketAddr> = lookup_host(addr)
        .await
        .map_err(|source| DialError::Resolve { target: target.clone(), source })?
        .collect();
    let mut failures = Vec::new();
    for sa in addrs {
        match TcpStream::connect(sa).await {
            Ok(socket) => {
                // Frames are small and latency matters (one round trip per lookup).
                let _ = socket.set_nodelay(true);
                return handshake(socket, Role::Initiator, identity, &config)
                    .await
                    .map_err(|source| DialError::Handshake { addr: sa, source });
            }
            Err(e) => failures.push(format!("{sa}: {e}")),
        }
    }
    Err(DialError::Unreachable { target, tried: failures })
}

/// Accepts one connection on `listener` and runs the handshake as responder.
pub async fn accept(
    listener: &TcpListener,
    identity: &Identity,
    config: &HandshakeConfig,
) -> Result<(SecureStream<TcpStream>, SocketAddr), AcceptError> {
    let (socket, addr) = listener.accept().await.map_err(AcceptError::Accept)?;
    let _ = socket.set_nodelay(true);
    let stream = handshake(socket, Role::Responder, identity, config)
        .await
        .map_err(|source| AcceptError::Handshake { addr, source })?;
    Ok((stream, addr))
}
