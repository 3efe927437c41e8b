//! The HTTP server: hyper's HTTP/1 connection builder under the router, because a server
//! reachable by any client needs what `axum::serve` does not let one set — a deadline for a
//! request's head (slow or stalled clients), a bound on its size (huge URLs and headers get a
//! `431`/`414`-class refusal from hyper), a cap on connections, and a bound on how long one
//! connection may live.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// The bounds the server keeps.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// The longest a client may take to send a request's head (also the idle time allowed
    /// between requests on a kept-alive connection).
    pub header_timeout: Duration,
    /// The most bytes a request's head may have (hyper's read buffer; at least 8 KiB).
    pub max_head_bytes: usize,
    /// The longest one connection may stay open.
    pub connection_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            max_head_bytes: 64 << 10,
            connection_lifetime: Duration::from_secs(600),
        }
    }
}

/// A running server: its address, and a way to stop it.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serve `app` on `listener` until [`shutdown`](Self::shutdown).
    pub fn start(listener: TcpListener, app: Router, limits: Limits) -> std::io::Result<Server> {
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, app, limits, wait_for(stopped)));
        Ok(Server { local_addr, stop, task })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting, and wait for the accept loop to end (connections in progress are
    /// dropped).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn wait_for(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// Accept and serve connections on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_head_bytes.max(8192))
        .keep_alive(true);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = &mut shutdown => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let (builder, lifetime) = (builder.clone(), limits.connection_lifetime);
        tokio::spawn(async move {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(lifetime, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%peer, %error, "connection ended"),
                Err(_) => tracing::debug!(%peer, "connection closed: open too long"),
            }
            drop(permit);
        });
    }
}
