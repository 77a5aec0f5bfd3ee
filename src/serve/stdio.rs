//! The stdio framing in front of rmcp: newline-delimited JSON-RPC from stdin to the session,
//! and the session's messages to stdout, with a line that is not JSON answered by JSON-RPC's
//! parse error (`-32700`, `id: null`).
//!
//! rmcp drops unparsable lines silently (to avoid error storms with a peer that echoes
//! responses back as garbage). A client that sent a broken request then waits for an answer
//! that never comes; JSON-RPC 2.0 says to answer it, and a client that echoes error responses
//! as invalid JSON is not one an agent runs. Lines are bounded as rmcp bounds them.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The longest line read: rmcp's own limit.
const MAX_LINE: usize = 16 << 20;

/// The in-memory pipes between the framing and the session.
const PIPE_BYTES: usize = 1 << 16;

/// Parse errors waiting to be written: past it, reading stdin waits for stdout (a client
/// that sends garbage and never reads cannot grow the queue).
const PENDING_ERRORS: usize = 64;

/// The session's side of the framing: what rmcp reads requests from and writes answers to.
pub(super) type Pipes = (tokio::io::DuplexStream, tokio::io::DuplexStream);

/// Start the framing over `input`/`output`; returns the session's pipes and the task that
/// writes to `output`, which ends once the session has dropped its pipes and every answer
/// is written.
pub(super) fn frame<R, W>(input: R, output: W) -> (Pipes, tokio::task::JoinHandle<()>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (mut feed, session_in) = tokio::io::duplex(PIPE_BYTES);
    let (session_out, drain) = tokio::io::duplex(PIPE_BYTES);
    let (errors, mut pending) = mpsc::channel::<String>(PENDING_ERRORS);

    tokio::spawn(async move {
        let mut input = BufReader::new(input);
        let mut line = Vec::new();
        loop {
            match read_line(&mut input, &mut line).await {
                Ok(Line::Eof) | Err(_) => break,
                Ok(Line::TooLong) => {
                    let error = parse_error(&format!(
                        "the message is longer than {} MiB",
                        MAX_LINE >> 20
                    ));
                    if errors.send(error).await.is_err() {
                        break;
                    }
                }
                Ok(Line::Read) => {
                    let text = line.trim_ascii();
                    if text.is_empty() {
                        continue;
                    }
                    match serde_json::from_slice::<serde::de::IgnoredAny>(text) {
                        Ok(_) => {
                            if !line.ends_with(b"\n") {
                                line.push(b'\n');
                            }
                            if feed.write_all(&line).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let error = parse_error(&format!("not JSON ({e})"));
                            if errors.send(error).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        }
        // Dropping `feed` ends the session's input: the session ends as on a closed stdin.
    });

    let writer = tokio::spawn(async move {
        let mut output = output;
        let mut answers = BufReader::new(drain);
        let mut line = Vec::new();
        loop {
            tokio::select! {
                // `read_until` keeps what it read in `line` when the other branch wins.
                read = answers.read_until(b'\n', &mut line) => {
                    match read {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            if write_line(&mut output, &line).await.is_err() {
                                break;
                            }
                            line.clear();
                        }
                    }
                }
                Some(error) = pending.recv() => {
                    if write_line(&mut output, error.as_bytes()).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    ((session_in, session_out), writer)
}

async fn write_line<W: AsyncWrite + Unpin>(out: &mut W, line: &[u8]) -> std::io::Result<()> {
    out.write_all(line).await?;
    if !line.ends_with(b"\n") {
        out.write_all(b"\n").await?;
    }
    out.flush().await
}

fn parse_error(detail: &str) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32700, "message": format!("Parse error: {detail}")},
    })
    .to_string()
}

enum Line {
    Read,
    TooLong,
    Eof,
}

/// One line into `buf` (with its `\n`, if any), or [`Line::TooLong`] after skipping a line
/// over [`MAX_LINE`] bytes without keeping it.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::Eof,
                (false, false) => Line::Read,
            });
        }
        let (n, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            if buf.len() + n > MAX_LINE {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..n]);
            }
        }
        r.consume(n);
        if done {
            return Ok(if too_long { Line::TooLong } else { Line::Read });
        }
    }
}
