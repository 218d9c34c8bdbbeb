//! Finding the port to serve on: the configured one, or the next free one after it (as
//! Spark's UI does), so that several runs on one machine each get their own.

use std::net::{IpAddr, SocketAddr};
use tokio::net::TcpListener;

/// Ports tried after the configured one before giving up.
pub const PORTS_TRIED: u16 = 100;

/// Listens on `address` at `port`, or the first free port of the next [`PORTS_TRIED`]; port
/// 0 lets the system choose.
pub async fn listen(address: &str, port: u16) -> Result<TcpListener, String> {
    let ip: IpAddr = address.parse().map_err(|_| {
        format!(
            "`http.address` must be an IP address such as 127.0.0.1 or 0.0.0.0, not {address:?}"
        )
    })?;
    let last = if port == 0 {
        0
    } else {
        port.saturating_add(PORTS_TRIED - 1)
    };
    let mut tried = port;
    loop {
        match TcpListener::bind(SocketAddr::new(ip, tried)).await {
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
        let first = listen("127.0.0.1", 0).await.expect("a free port");
        let taken = first.local_addr().expect("bound").port();
        let next = listen("127.0.0.1", taken).await.expect("the next port");
        assert!(next.local_addr().expect("bound").port() > taken);
    }

    #[tokio::test]
    async fn an_address_that_is_not_one_is_refused_with_the_option_named() {
        let e = listen("localhost:80", 0)
            .await
            .expect_err("not an IP address");
        assert!(e.contains("`http.address`"), "{e}");
    }
}
