//! `agentenv serve --http` on the wire, over raw TCP: a kept-alive connection answers without
//! Nagle's delay (TCP_NODELAY, read off the server's own socket), slow clients are cut off,
//! duplicate `Host` headers and absolute-form targets are refused, the `Bearer` scheme is
//! matched in any case, and malformed JSON gets 400 with a JSON-RPC parse error.

use std::time::{Duration, Instant};

use serde_json::json;

use super::raw::{Conn, Server};
use crate::support::workspace::small_app;

/// Whether the server's end of `conn` has TCP_NODELAY set: its socket is found by the
/// client's port in /proc/PID/net/tcp and duplicated into this process with pidfd_getfd(2).
/// `None` when the kernel or permissions do not allow it.
fn server_nodelay(server: &Server, conn: &Conn) -> Option<bool> {
    let port = conn.stream.local_addr().unwrap().port();
    let pid = server.child.id();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    let inode = table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let remote = u16::from_str_radix(f.get(2)?.split(':').nth(1)?, 16).ok()?;
        (remote == port).then(|| f.get(9).map(|s| s.to_string()))?
    })?;
    let target = format!("socket:[{inode}]");
    let fd: i32 = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == target))?
        .file_name()
        .to_str()?
        .parse()
        .ok()?;
    // SAFETY: plain syscalls on descriptors this function owns and closes.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
        if pidfd < 0 {
            return None;
        }
        let dup = libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) as i32;
        libc::close(pidfd);
        if dup < 0 {
            return None;
        }
        let mut on: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let got = libc::getsockopt(
            dup,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&mut on as *mut libc::c_int).cast(),
            &mut len,
        );
        libc::close(dup);
        (got == 0).then_some(on != 0)
    }
}

#[test]
fn a_kept_alive_connection_answers_without_nagles_delay() {
    let fx = small_app();
    let server = Server::start(&fx, &[], &[]);
    let mut conn = server.connect();
    conn.handshake(&[]);
    // Twenty calls on one connection; the figure for the README, not an assertion.
    let mut times = Vec::new();
    for id in 0..20 {
        let started = Instant::now();
        let answer = conn.call(10 + id, "browse", json!({"repo": "app"}), &[]);
        times.push(started.elapsed());
        assert_eq!(answer["result"]["isError"], false, "{answer}");
    }
    times.sort();
    eprintln!(
        "figure: 20 tools/call on one kept-alive connection: median {:.1} ms, max {:.1} ms, total {:.0} ms",
        times[10].as_secs_f64() * 1e3,
        times[19].as_secs_f64() * 1e3,
        times.iter().sum::<Duration>().as_secs_f64() * 1e3
    );
    match server_nodelay(&server, &conn) {
        Some(on) => assert!(on, "the server's socket has TCP_NODELAY off"),
        None => crate::support::skip_or_fail_in_ci(
            "cannot read the server's socket options (pidfd_getfd needs Linux 5.6 and ptrace permission)",
        ),
    }
}

/// A server whose read timeout is one second, so the slow-client tests take seconds.
fn impatient(fx: &crate::support::workspace::Fixture) -> Server {
    Server::start(fx, &[], &[("AGENTENV_HTTP_READ_TIMEOUT", "1")])
}

/// Well past the one-second timeout: a hang guard, not a measurement.
const GUARD: Duration = Duration::from_secs(10);

#[test]
fn slow_clients_are_cut_off() {
    let fx = small_app();
    let server = impatient(&fx);

    // Connects and says nothing.
    let mut silent = server.connect();
    let started = Instant::now();
    assert!(
        silent.closed_within(GUARD),
        "a silent connection stays open"
    );
    eprintln!(
        "figure: silent connection closed after {:.1} s (read timeout 1 s)",
        started.elapsed().as_secs_f64()
    );

    // Trickles its headers, a byte every 200 ms: the deadline is for the whole head.
    let mut trickle = server.connect();
    let head = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let started = Instant::now();
    let mut closed = false;
    for byte in head {
        if std::io::Write::write_all(&mut trickle.stream, &[*byte]).is_err()
            || trickle.closed_within(Duration::from_millis(200))
        {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a client trickling its headers for {:?} is still connected",
        started.elapsed()
    );

    // Sends its headers, then 10 of the 100 body bytes it announced.
    let mut slow_body = server.connect();
    slow_body.send(
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\"",
            slow_body.host
        )
        .as_bytes(),
    );
    let resp = slow_body
        .read_response()
        .expect("an answer before the close");
    assert_eq!(resp.status, 408, "{resp:?}");
    assert!(resp.body.contains("did not arrive within 1 s"), "{resp:?}");
    assert!(slow_body.closed_within(GUARD));

    // Idle between requests: the connection ends, and a new one is served.
    let mut idle = server.connect();
    idle.handshake(&[]);
    assert!(
        idle.closed_within(GUARD),
        "an idle kept-alive connection stays open"
    );
    let mut fresh = server.connect();
    fresh.handshake(&[]);
    let answer = fresh.call(2, "browse", json!({"repo": "app"}), &[]);
    assert_eq!(answer["result"]["isError"], false, "{answer}");
}

#[test]
fn ambiguous_hosts_are_refused() {
    let fx = small_app();
    let server = Server::start(&fx, &[], &[]);
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "0"}}
    })
    .to_string();
    // The first Host is the allowed one; which would a proxy in front have used?
    let mut conn = server.connect();
    let resp = conn.post(&init, &["Host: attacker.example"]);
    assert_eq!(resp.status, 400, "{resp:?}");
    assert!(resp.body.contains("more than one Host header"), "{resp:?}");

    // An absolute-form target names another host than the (allowed) Host header.
    for target in [
        "http://attacker.example/mcp",
        &format!("http://{}/mcp", conn.host),
    ] {
        let mut conn = server.connect();
        conn.send(
            format!(
                "POST {target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{init}",
                conn.host,
                init.len()
            )
            .as_bytes(),
        );
        let resp = conn.read_response().unwrap();
        assert_eq!(resp.status, 400, "{target}: {resp:?}");
        assert!(resp.body.contains("absolute-form"), "{resp:?}");
    }

    // The same request in origin form is served.
    let mut conn = server.connect();
    assert_eq!(conn.post(&init, &[]).status, 200);
}

#[test]
fn the_bearer_scheme_is_matched_in_any_case() {
    const TOKEN: &str = "canary-wire-token-3c9e1f";
    let fx = small_app();
    let server = Server::start(
        &fx,
        &["--http-token-secret", "MCP_WIRE_TOKEN"],
        &[("MCP_WIRE_TOKEN", TOKEN)],
    );
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "0"}}
    })
    .to_string();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let auth = format!("Authorization: {scheme} {TOKEN}");
        let mut conn = server.connect();
        let resp = conn.post(&init, &[&auth]);
        assert_eq!(resp.status, 200, "{scheme}: {resp:?}");
        conn.handshake(&[&auth]);
        let answer = conn.call(2, "browse", json!({"repo": "app"}), &[&auth]);
        assert_eq!(answer["result"]["isError"], false, "{answer}");
        assert!(!format!("{resp:?}{answer}").contains(TOKEN));
    }
    for auth in [
        "Authorization: Bearer wrong-token".to_string(),
        format!("Authorization: Basic {TOKEN}"),
        format!("Authorization: Bearer{TOKEN}"),
        format!("Authorization: {TOKEN}"),
    ] {
        let resp = server.connect().post(&init, &[&auth]);
        assert_eq!(resp.status, 401, "{auth}: {resp:?}");
        assert!(!format!("{resp:?}").contains(TOKEN));
    }
}

#[test]
fn malformed_json_is_a_jsonrpc_parse_error() {
    let fx = small_app();
    let server = Server::start(&fx, &[], &[]);
    let mut conn = server.connect();
    for body in [
        "{\"jsonrpc\": \"2.0\", broken",
        "",
        "\u{1F600} not json",
        "[1, 2",
    ] {
        let resp = conn.post(body, &[]);
        assert_eq!(resp.status, 400, "{body:?}: {resp:?}");
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let err: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
        assert_eq!(err["jsonrpc"], "2.0");
        assert_eq!(err["id"], serde_json::Value::Null);
        assert_eq!(err["error"]["code"], -32700, "{err}");
    }
    // The connection is still good for a well-formed session.
    conn.handshake(&[]);
    let answer = conn.call(2, "browse", json!({"repo": "app"}), &[]);
    assert_eq!(answer["result"]["isError"], false, "{answer}");

    // A body larger than any call is refused before it is read: announced, or sent chunked.
    let mut big = server.connect();
    big.send(
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            big.host,
            5 * 1024 * 1024
        )
        .as_bytes(),
    );
    assert_eq!(big.read_response().unwrap().status, 413);
    let mut chunked = server.connect();
    chunked.send(
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            chunked.host
        )
        .as_bytes(),
    );
    let chunk = format!("100000\r\n{}\r\n", "x".repeat(0x100000));
    let mut status = None;
    for _ in 0..5 {
        if std::io::Write::write_all(&mut chunked.stream, chunk.as_bytes()).is_err() {
            break;
        }
    }
    if let Some(resp) = chunked.read_response() {
        status = Some(resp.status);
    }
    // The answer may be lost to the reset of a socket closed with unread data; never a 200.
    assert!(matches!(status, None | Some(413)), "{status:?}");
}
