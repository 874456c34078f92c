//! A deliberately tiny HTTP/1.1 client on `std::net::TcpStream`.
//!
//! Why not `ureq`: the gate needs two request shapes (a JSON POST, a GET) against one host, and
//! every dependency on a gate is code to audit and patch for years. This client is one request
//! per connection (`Connection: close`), `Content-Length` request bodies, responses framed by
//! `Content-Length`, chunked encoding or connection close, and bounds on everything: connect
//! and per-read timeouts, an overall deadline, header and body sizes. Plain HTTP only: TLS
//! (and client certificates) is terminated by a local proxy on the gate for now (stunnel or
//! an envoy sidecar, `http://127.0.0.1:<port>`), so no TLS stack lives in this crate.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why an HTTP exchange failed.
#[derive(Debug, Error)]
pub enum HttpError {
    /// The base URL is not `http://host[:port][/path]`.
    #[error("bad base URL {0:?} (only http://host[:port][/path]; TLS goes through a local proxy)")]
    BadUrl(String),
    /// No address of the host accepted a connection.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The last error.
        source: io::Error,
    },
    /// The connection failed after it was made (including the peer closing it early).
    #[error("HTTP I/O: {0}")]
    Io(#[from] io::Error),
    /// The overall deadline or a read timeout passed.
    #[error("HTTP timeout")]
    Timeout,
    /// The response is not HTTP/1.x as this client understands it.
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
    /// The response headers or body exceed the configured bound.
    #[error("HTTP response above {0} bytes")]
    TooLarge(usize),
}

/// Timeouts and size bounds of one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Per address connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of each read or write.
    pub io_timeout: Duration,
    /// Deadline for the whole exchange, connect included.
    pub total_timeout: Duration,
    /// Largest response header block.
    pub max_header_bytes: usize,
    /// Largest response body.
    pub max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
            max_header_bytes: 16 << 10,
            max_body_bytes: 1 << 20,
        }
    }
}

/// Where the host lives: parsed from `http://host[:port][/base/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
    base: String,
}

impl Endpoint {
    /// Parses a base URL. Paths of requests are appended to its path.
    pub fn parse(url: &str) -> Result<Endpoint, HttpError> {
        let bad = || HttpError::BadUrl(url.chars().take(200).collect());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        // `[v6]` hosts keep their brackets; the port follows the last `:` outside them.
        let split = match authority.rfind(']') {
            Some(b) => authority[b..].find(':').map(|c| b + c),
            None => authority.rfind(':'),
        };
        let (host, port) = match split {
            Some(c) => (
                &authority[..c],
                authority[c + 1..].parse::<u16>().map_err(|_| bad())?,
            ),
            None => (authority, 80),
        };
        let host_ok = !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':')
            });
        let path_ok = path
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#');
        if !host_ok || !path_ok || url.len() > 2048 {
            return Err(bad());
        }
        Ok(Endpoint {
            host: host.to_string(),
            port,
            base: path.to_string(),
        })
    }

    /// `host:port` for the `Host` header and messages.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request and reads the whole response.
///
/// `path` is appended to the endpoint's base path and must already be percent-safe.
pub fn exchange(
    ep: &Endpoint,
    cfg: &HttpConfig,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> Result<HttpResponse, HttpError> {
    let deadline = Instant::now() + cfg.total_timeout;
    let mut stream = connect(ep, cfg, deadline)?;
    let mut req = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: onecard-journal/{}\r\n\
         Accept: application/json\r\nConnection: close\r\n",
        ep.base,
        ep.authority(),
        env!("CARGO_PKG_VERSION"),
    )
    .into_bytes();
    if let Some((ctype, b)) = body {
        req.extend_from_slice(
            format!("Content-Type: {ctype}\r\nContent-Length: {}\r\n", b.len()).as_bytes(),
        );
    }
    req.extend_from_slice(b"\r\n");
    if let Some((_, b)) = body {
        req.extend_from_slice(b);
    }
    set_timeouts(&stream, cfg, deadline)?;
    stream.write_all(&req).map_err(timeout_or_io)?;
    stream.flush().map_err(timeout_or_io)?;
    let mut r = Reader {
        stream,
        buf: Vec::with_capacity(4096),
        pos: 0,
        deadline,
        cfg,
        eof: false,
    };
    r.response(method == "HEAD")
}

fn connect(ep: &Endpoint, cfg: &HttpConfig, deadline: Instant) -> Result<TcpStream, HttpError> {
    let addr = ep.authority();
    let host = ep.host.trim_start_matches('[').trim_end_matches(']');
    let addrs = (host, ep.port)
        .to_socket_addrs()
        .map_err(|source| HttpError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpError::Timeout);
        }
        match TcpStream::connect_timeout(&a, cfg.connect_timeout.min(left)) {
            Ok(s) => {
                // Small requests and answers: do not wait for Nagle.
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(HttpError::Connect { addr, source: last })
}

fn set_timeouts(s: &TcpStream, cfg: &HttpConfig, deadline: Instant) -> Result<(), HttpError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(HttpError::Timeout);
    }
    let t = Some(cfg.io_timeout.min(left));
    s.set_read_timeout(t)?;
    s.set_write_timeout(t)?;
    Ok(())
}

fn timeout_or_io(e: io::Error) -> HttpError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HttpError::Timeout,
        _ => HttpError::Io(e),
    }
}

struct Reader<'a> {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    deadline: Instant,
    cfg: &'a HttpConfig,
    eof: bool,
}

impl Reader<'_> {
    /// Reads more bytes; false at end of stream.
    fn fill(&mut self, cap: usize) -> Result<bool, HttpError> {
        if self.eof {
            return Ok(false);
        }
        if self.buf.len() >= cap {
            return Err(HttpError::TooLarge(cap));
        }
        set_timeouts(&self.stream, self.cfg, self.deadline)?;
        let mut chunk = [0u8; 8192];
        let want = chunk.len().min(cap - self.buf.len());
        let n = self
            .stream
            .read(&mut chunk[..want])
            .map_err(timeout_or_io)?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(true)
    }

    /// The next CRLF-terminated line from `pos`, without the CRLF.
    fn line(&mut self, cap: usize) -> Result<String, HttpError> {
        loop {
            if let Some(i) = self.buf[self.pos..].windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[self.pos..self.pos + i]).into_owned();
                self.pos += i + 2;
                return Ok(line);
            }
            if !self.fill(cap)? {
                return Err(HttpError::Malformed("connection closed inside a line"));
            }
        }
    }

    fn need(&mut self, n: usize, cap: usize) -> Result<(), HttpError> {
        while self.buf.len() - self.pos < n {
            if !self.fill(cap)? {
                return Err(HttpError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside the body",
                )));
            }
        }
        Ok(())
    }

    fn response(&mut self, head: bool) -> Result<HttpResponse, HttpError> {
        let hcap = self.cfg.max_header_bytes;
        let status_line = self.line(hcap)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(HttpError::Malformed("status line"));
        }
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (100..1000).contains(s))
            .ok_or(HttpError::Malformed("status code"))?;
        let mut headers = Vec::new();
        loop {
            let line = self.line(hcap)?;
            if line.is_empty() {
                break;
            }
            let (n, v) = line
                .split_once(':')
                .ok_or(HttpError::Malformed("header line"))?;
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            if headers.len() > 100 {
                return Err(HttpError::Malformed("too many headers"));
            }
        }
        if (100..200).contains(&status) {
            // This client never asks for 100-continue or upgrades.
            return Err(HttpError::Malformed("unexpected 1xx response"));
        }
        // Body bytes are counted from the end of the headers.
        let start = self.pos;
        let cap = start + self.cfg.max_body_bytes;
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let body = if head || status == 204 || status == 304 {
            Vec::new()
        } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            self.chunked(cap)?
        } else if let Some(cl) = find("content-length") {
            let n: usize = cl
                .parse()
                .map_err(|_| HttpError::Malformed("content-length"))?;
            if n > self.cfg.max_body_bytes {
                return Err(HttpError::TooLarge(self.cfg.max_body_bytes));
            }
            self.need(n, cap)?;
            self.buf[self.pos..self.pos + n].to_vec()
        } else {
            while self.fill(cap)? {}
            self.buf[self.pos..].to_vec()
        };
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    fn chunked(&mut self, cap: usize) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        loop {
            let line = self.line(cap)?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| HttpError::Malformed("chunk size"))?;
            if size == 0 {
                // Trailers, then the blank line.
                while !self.line(cap)?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > self.cfg.max_body_bytes {
                return Err(HttpError::TooLarge(self.cfg.max_body_bytes));
            }
            self.need(size + 2, cap)?;
            body.extend_from_slice(&self.buf[self.pos..self.pos + size]);
            if &self.buf[self.pos + size..self.pos + size + 2] != b"\r\n" {
                return Err(HttpError::Malformed("chunk terminator"));
            }
            self.pos += size + 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn urls() {
        let e = Endpoint::parse("http://127.0.0.1:8080/host/").unwrap();
        assert_eq!(e.authority(), "127.0.0.1:8080");
        assert_eq!(e.base, "/host");
        assert_eq!(Endpoint::parse("http://clearing.local").unwrap().port, 80);
        assert_eq!(Endpoint::parse("http://[::1]:81").unwrap().host, "[::1]");
        for bad in [
            "https://x",
            "http://",
            "http://a b",
            "http://x:99999",
            "http://x/?q",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    fn serve_once(answer: &'static [u8]) -> Endpoint {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 4096];
            let _ = s.read(&mut b);
            let _ = s.write_all(answer);
        });
        Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap()
    }

    #[test]
    fn framings() {
        let cfg = HttpConfig::default();
        let ep = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA");
        let r = exchange(&ep, &cfg, "GET", "/", None).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let ep = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        let r = exchange(&ep, &cfg, "POST", "/", Some(("application/json", b"{}"))).unwrap();
        assert_eq!(r.body, b"abcde");
        let ep = serve_once(b"HTTP/1.0 503 Busy\r\nX-A: b\r\n\r\nuntil close");
        let r = exchange(&ep, &cfg, "GET", "/", None).unwrap();
        assert_eq!((r.status, r.header("x-a")), (503, Some("b")));
        assert_eq!(r.body, b"until close");
        let small = HttpConfig {
            max_body_bytes: 4,
            ..HttpConfig::default()
        };
        let ep = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        assert!(matches!(
            exchange(&ep, &small, "GET", "/", None),
            Err(HttpError::TooLarge(4))
        ));
        let ep = serve_once(b"SSH-2.0-nope\r\n\r\n");
        assert!(matches!(
            exchange(&ep, &cfg, "GET", "/", None),
            Err(HttpError::Malformed(_))
        ));
        let ep = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort");
        assert!(matches!(
            exchange(&ep, &cfg, "GET", "/", None),
            Err(HttpError::Io(_))
        ));
    }

    #[test]
    fn read_timeout() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            thread::sleep(Duration::from_millis(2000));
            drop(s);
        });
        let cfg = HttpConfig {
            io_timeout: Duration::from_millis(100),
            ..HttpConfig::default()
        };
        let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let started = Instant::now();
        assert!(matches!(
            exchange(&ep, &cfg, "GET", "/", None),
            Err(HttpError::Timeout)
        ));
        assert!(started.elapsed() < Duration::from_millis(1500));
        t.join().unwrap();
    }
}
