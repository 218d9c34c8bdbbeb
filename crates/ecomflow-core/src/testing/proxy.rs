//! A TCP proxy in front of a real server that a test cuts off, for a while or for good, as a
//! restarting server or a broken network would: open connections are dropped and new ones
//! refused (nothing listens on the port) until the outage ends.

use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A proxy on a free local port to one `host:port`. Dropping it closes the port and every
/// connection through it.
pub struct Proxy {
    port: u16,
    cuts: mpsc::UnboundedSender<Option<Duration>>,
}

impl Proxy {
    /// A proxy to `target` (`host:port`) that passes connections through.
    pub async fn start(target: &str) -> Proxy {
        Proxy::spawn(target, false).await
    }

    /// A proxy to `target` that refuses connections for `outage` from now, then passes them
    /// through (a server that is not up yet when the pipeline starts).
    pub async fn start_cut(target: &str, outage: Duration) -> Proxy {
        let proxy = Proxy::spawn(target, true).await;
        proxy.cut_for(outage);
        proxy
    }

    async fn spawn(target: &str, closed: bool) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds a free port");
        let port = listener.local_addr().expect("the proxy's address").port();
        let (cuts, rx) = mpsc::unbounded_channel();
        let listener = if closed { None } else { Some(listener) };
        tokio::spawn(serve(listener, port, target.to_string(), rx));
        Proxy { port, cuts }
    }

    /// The local port to connect to instead of the server's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, to put in a URL instead of the server's `host:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Drops every open connection and refuses new ones for `outage` from now.
    pub fn cut_for(&self, outage: Duration) {
        self.cuts.send(Some(outage)).expect("the proxy runs");
    }

    /// Drops every open connection and refuses new ones from now on (a server that never
    /// comes back).
    pub fn cut_forever(&self) {
        self.cuts.send(None).expect("the proxy runs");
    }
}

/// Accepts and pipes connections; on a cut, drops them and closes the port until `reopen`.
async fn serve(
    mut listener: Option<TcpListener>,
    port: u16,
    target: String,
    mut cuts: mpsc::UnboundedReceiver<Option<Duration>>,
) {
    let mut live = CancellationToken::new();
    let mut reopen: Option<Instant> = None;
    loop {
        tokio::select! {
            cut = cuts.recv() => {
                live.cancel();
                live = CancellationToken::new();
                listener = None;
                match cut {
                    // The proxy was dropped.
                    None => return,
                    Some(outage) => reopen = outage.map(|d| Instant::now() + d),
                }
            }
            () = sleep_until(reopen), if listener.is_none() && reopen.is_some() => {
                match TcpListener::bind(("127.0.0.1", port)).await {
                    Ok(l) => {
                        listener = Some(l);
                        reopen = None;
                    }
                    // The port is not free again yet: try a little later.
                    Err(_) => reopen = Some(Instant::now() + Duration::from_millis(50)),
                }
            }
            accepted = accept(listener.as_ref()), if listener.is_some() => {
                let Ok((inbound, _)) = accepted else { continue };
                tokio::spawn(pipe(inbound, target.clone(), live.clone()));
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Copies both ways between `inbound` and a new connection to `target` until either side
/// closes or `live` is cancelled.
async fn pipe(mut inbound: TcpStream, target: String, live: CancellationToken) {
    let Ok(mut outbound) = TcpStream::connect(&target).await else {
        return;
    };
    tokio::select! {
        () = live.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that echoes what it reads.
    async fn echo() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        address
    }

    async fn round_trip(port: u16) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"ping").await?;
        let mut got = [0; 4];
        s.read_exact(&mut got).await?;
        Ok(got.to_vec())
    }

    #[tokio::test]
    async fn passes_through_refuses_while_cut_and_comes_back() {
        let proxy = Proxy::start(&echo().await).await;
        assert_eq!(round_trip(proxy.port()).await.expect("through"), b"ping");
        let mut open = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .expect("connects");
        tokio::time::sleep(Duration::from_millis(50)).await;
        proxy.cut_for(Duration::from_millis(500));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut buf = [0; 1];
        assert_eq!(open.read(&mut buf).await.unwrap_or(0), 0, "dropped");
        assert!(round_trip(proxy.port()).await.is_err(), "refused while cut");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(round_trip(proxy.port()).await.expect("back"), b"ping");
        proxy.cut_forever();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(round_trip(proxy.port()).await.is_err(), "never back");
    }

    #[tokio::test]
    async fn can_start_cut() {
        let proxy = Proxy::start_cut(&echo().await, Duration::from_millis(300)).await;
        assert!(round_trip(proxy.port()).await.is_err(), "refused at first");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(round_trip(proxy.port()).await.expect("then up"), b"ping");
    }
}
