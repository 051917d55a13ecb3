//! The metrics listener: `GET /metrics` answers the exposition text; any other path
//! gets 404, any other method 405. One request per connection; a request head larger
//! than 8 KiB, or one that takes over 10 s to arrive, closes the connection.

use super::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_HEAD: usize = 8 << 10;
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves scrapes until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(error) = answer(socket, &metrics).await {
                tracing::debug!(%peer, %error, "metrics connection closed");
            }
        });
    }
}

/// The method and path of a request head, once the head is complete.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let end = head.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&head[..end]).ok()?;
    let mut parts = head.lines().next()?.split_whitespace();
    Some((parts.next()?, parts.next()?))
}

async fn answer(mut socket: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let read = async {
        loop {
            if request_line(&head).is_some() {
                return Ok(());
            }
            if head.len() >= MAX_HEAD {
                return Err(std::io::Error::other("request head too large"));
            }
            let mut chunk = [0u8; 1024];
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            head.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let (status, content_type, body) = match request_line(&head) {
        Some(("GET", path)) if path == "/metrics" || path.starts_with("/metrics?") => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        Some(("GET", _)) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_waits_for_the_whole_head() {
        assert_eq!(request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(
            request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(request_line(b"\r\n\r\n"), None);
    }

    #[tokio::test]
    async fn scrape_over_http() {
        let metrics = Arc::new(Metrics::new(true));
        metrics.produced("t", 5, 1);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(serve(listener, metrics));
        let get = |path: &'static str| async move {
            let mut socket = TcpStream::connect(address).await.expect("connect");
            socket
                .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
                .await
                .expect("request");
            let mut response = String::new();
            socket.read_to_string(&mut response).await.expect("response");
            response
        };
        let ok = get("/metrics").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("ferrolog_topic_bytes_in_total{topic=\"t\"} 5"),
            "{ok}"
        );
        assert!(get("/other").await.starts_with("HTTP/1.1 404"));
    }
}
