//! A running `agentenv serve --http` and a raw HTTP/1.1 client over one TCP connection, for
//! the tests that need the wire itself: keep-alive timing, slow clients, duplicate headers,
//! absolute-form targets. No HTTP library stands between the test and the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::workspace::Fixture;

/// A running `agentenv serve --http 127.0.0.1:0`; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The endpoint the server printed (`http://127.0.0.1:PORT/mcp`).
    pub url: String,
    /// Everything the server wrote on stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn start(fx: &Fixture, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = fx.command();
        cmd.arg("serve")
            .arg(&fx.spec)
            .arg("--workdir")
            .arg(&fx.workdir)
            .args(["--http", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = String::new();
        let url = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("server exited before listening: {seen}"))
                .unwrap();
            seen.push_str(&line);
            seen.push('\n');
            if let Some(at) = line.find("http://") {
                break line[at..].trim().to_string();
            }
        };
        let addr = url["http://".len()..]
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // Keep draining stderr so the server never blocks on a full pipe.
        let stderr = Arc::new(Mutex::new(seen));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Server {
            child,
            addr,
            url,
            stderr,
        }
    }

    pub fn connect(&self) -> Conn {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        Conn {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
            host: format!("127.0.0.1:{}", self.addr.port()),
            session: None,
        }
    }

    /// The server's peak resident set size so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

/// One HTTP response as read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The JSON-RPC message answering `id`, from a JSON or an SSE body.
    pub fn rpc(&self, id: u64) -> Value {
        let messages: Vec<Value> = if self.body.trim_start().starts_with('{') {
            vec![serde_json::from_str(&self.body).unwrap()]
        } else {
            self.body
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str(d.trim()).ok())
                .collect()
        };
        messages
            .into_iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("no answer to {id} in: {}", self.body))
    }
}

pub struct Conn {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    pub host: String,
    pub session: Option<String>,
}

impl Conn {
    /// Send raw bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// A POST of `body` to /mcp with the headers an MCP client sends, plus `extra` lines.
    pub fn post(&mut self, body: &str, extra: &[&str]) -> Response {
        let mut req = format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if let Some(s) = &self.session {
            req.push_str(&format!(
                "Mcp-Session-Id: {s}\r\nMcp-Protocol-Version: 2025-06-18\r\n"
            ));
        }
        for line in extra {
            req.push_str(line);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.send(req.as_bytes());
        self.read_response().expect("a response")
    }

    /// initialize and initialized; keeps the session id for later calls.
    pub fn handshake(&mut self, extra: &[&str]) {
        let init = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "0"}}
        });
        let resp = self.post(&init.to_string(), extra);
        assert_eq!(resp.status, 200, "{resp:?}");
        self.session = resp.header("mcp-session-id").map(str::to_string);
        let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let resp = self.post(&done.to_string(), extra);
        assert!(resp.status < 300, "{resp:?}");
    }

    /// tools/call of `name` with `args`; the JSON-RPC answer.
    pub fn call(&mut self, id: u64, name: &str, args: Value, extra: &[&str]) -> Value {
        let body = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": name, "arguments": args}
        });
        let resp = self.post(&body.to_string(), extra);
        assert_eq!(resp.status, 200, "{resp:?}");
        resp.rpc(id)
    }

    /// Read one response; `None` when the server closed the connection first.
    pub fn read_response(&mut self) -> Option<Response> {
        let mut status_line = String::new();
        if self.reader.read_line(&mut status_line).ok()? == 0 {
            return None;
        }
        let status = status_line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).ok()?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':')?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).ok()?;
                let size = usize::from_str_radix(size.trim(), 16).ok()?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).ok()?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(len) = find("content-length") {
            let mut buf = vec![0; len.parse().ok()?];
            self.reader.read_exact(&mut buf).ok()?;
            body = buf;
        }
        Some(Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// True when the server has closed the connection (reads end), within `wait`.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                // A response (e.g. 408) before the close is fine; keep reading.
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }
}
