//! The little HTTP rehearse needs, on loopback: GET from Prometheus and the
//! exporters (HTTP/1.0, so no chunked bodies), and a server for its own
//! `/metrics` and the lab's PgBouncer exporter. Not a web framework: one
//! request per connection, GET only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::error::{Error, Result};

/// A response: status code and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// GET `path` (with its query string, already encoded) from `addr`
/// ("127.0.0.1:9090"), within `timeout`.
pub fn get(addr: &str, path: &str, timeout: Duration) -> Result<Response> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::Lab(format!("GET http://{addr}{}: {what}: {e}", short(path)))
    };
    let sock: SocketAddr = addr
        .to_socket_addrs()
        .map_err(|e| fail("bad address", &e))?
        .next()
        .ok_or_else(|| fail("bad address", &"no address"))?;
    let mut s = TcpStream::connect_timeout(&sock, timeout).map_err(|e| fail("connect", &e))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| fail("send", &e))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| fail("read", &e))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail("reply", &"no header end"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| fail("reply", &"no status"))?;
    Ok(Response {
        status,
        body: body.to_string(),
    })
}

/// A path for error messages: long PromQL queries cut.
fn short(path: &str) -> String {
    if path.len() > 80 {
        format!("{}...", path.chars().take(80).collect::<String>())
    } else {
        path.to_string()
    }
}

/// What a query parameter value keeps as it is: RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encode a query parameter value (every byte but the unreserved).
pub fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, UNRESERVED).to_string()
}

/// The content type of the metrics rehearse serves: Prometheus text 0.0.4.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serve GET `/metrics` on `listener` with the text `render` gives, until
/// the task is dropped; other paths get 404. Runs on the current runtime.
pub fn serve_metrics<F, Fut>(
    listener: tokio::net::TcpListener,
    render: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = String> + Send,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let render = std::sync::Arc::new(render);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                // Out of descriptors, say: do not spin on it.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let render = render.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = 0;
                // Read the request head (a GET has no body).
                while got < buf.len() {
                    match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf[got..]))
                        .await
                    {
                        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                        Ok(Ok(n)) => got += n,
                    }
                    if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let head = String::from_utf8_lossy(&buf[..got]);
                let target = head.split_whitespace().nth(1).unwrap_or("");
                let path = target.split('?').next().unwrap_or("");
                let (status, ctype, body) = if head.starts_with("GET ") && path == "/metrics" {
                    ("200 OK", PROMETHEUS_TEXT, render().await)
                } else {
                    (
                        "404 Not Found",
                        "text/plain; charset=utf-8",
                        "rehearse serves /metrics only\n".to_string(),
                    )
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(
            encode("up{job=\"redis\"} == 0"),
            "up%7Bjob%3D%22redis%22%7D%20%3D%3D%200"
        );
        assert_eq!(encode("a-b_c.d~"), "a-b_c.d~");
    }

    #[tokio::test]
    async fn the_server_answers_metrics_and_404_elsewhere() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let _h = serve_metrics(l, || async { "x_total 1\n# EOF\n".to_string() });
        let a = addr.clone();
        let ok = tokio::task::spawn_blocking(move || get(&a, "/metrics", Duration::from_secs(2)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((ok.status, ok.body.as_str()), (200, "x_total 1\n# EOF\n"));
        let nf = tokio::task::spawn_blocking(move || get(&addr, "/", Duration::from_secs(2)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(nf.status, 404);
    }
}
