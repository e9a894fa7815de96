//! Raw TCP for the connection-limit tests and the slow-header flood benchmark (tokio here
//! has no io-util: readiness + try_write/try_read).

use std::time::Instant;

use tokio::net::TcpStream;

/// Writes all of `bytes`.
pub async fn write_all(s: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        s.writable().await?;
        match s.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads until the peer closes the connection (EOF or reset): what it sent, and when.
pub async fn read_until_closed(s: &TcpStream) -> (Vec<u8>, Instant) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if s.readable().await.is_err() {
            return (got, Instant::now());
        }
        match s.try_read(&mut buf) {
            Ok(0) => return (got, Instant::now()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return (got, Instant::now()),
        }
    }
}
