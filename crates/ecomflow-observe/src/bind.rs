//! Finding the port to serve on: the configured one, or the next free one after it (as
//! Spark's UI does), so that several runs on one machine each get their own.

use std::net::{IpAddr, SocketAddr};
use tokio::net::TcpListener;

/// Ports tried after the configured one before giving up.
pub const PORTS_TRIED: u16 = 100;

/// Listens on `address` at `port`, or the first free port of the next [`PORTS_TRIED`]; port
/// 0 lets the system choose.
pub async fn listen(address: IpAddr, port: u16) -> Result<TcpListener, String> {
    let last = if port == 0 {
        0
    } else {
        port.saturating_add(PORTS_TRIED - 1)
    };
    let mut tried = port;
    loop {
        match TcpListener::bind(SocketAddr::new(address, tried)).await {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tried < last => tried += 1,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(format!(
                    "ports {port} to {last} on {address} are all taken (set `http.port`, or \
                     `http.enabled = false`)"
                ));
            }
            Err(e) => return Err(format!("cannot listen on {address}:{tried}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_port_moves_on_to_the_next_free_one() {
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let first = listen(loopback, 0).await.expect("a free port");
        let taken = first.local_addr().expect("bound").port();
        let next = listen(loopback, taken).await.expect("the next port");
        assert!(next.local_addr().expect("bound").port() > taken);
    }
}
