//! git's smart HTTP protocol (stateless RPC) for libgit2, over reqwest's blocking client:
//! `GET {repo}/info/refs?service=git-upload-pack`, then one `POST {repo}/git-upload-pack` per
//! negotiation round. Fetch only: agentenv never pushes.
//!
//! Redirects are followed by hand, within the origin (scheme, host, port) of the request;
//! one to another origin is refused before anything is sent there. The credential goes, from
//! the first request on, only to its own origin. Each wait (for an answer, for the next bytes)
//! is bounded by the low-speed time, and a response must average the low-speed limit over it.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream, Transport};
use reqwest::blocking::{Client, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Method, Url};

use super::fail;
use super::failure::{Failure, Waiting};
use super::session::{self, Session, Settings, same_origin};

/// Redirect hops followed before giving up.
const MAX_REDIRECTS: usize = 5;
const USER_AGENT: &str = concat!("git/2.0 (agentenv/", env!("CARGO_PKG_VERSION"), ")");
const ADVERTISEMENT: &str = "application/x-git-upload-pack-advertisement";
const REQUEST: &str = "application/x-git-upload-pack-request";
const RESULT: &str = "application/x-git-upload-pack-result";

/// The factory registered with libgit2: one subtransport per connection, with the session of
/// the thread that opens it.
pub(super) fn factory(remote: &git2::Remote<'_>) -> Result<Transport, git2::Error> {
    let http = Http {
        session: session::current(),
        base: Mutex::new(None),
    };
    Transport::smart(remote, true, http)
}

struct Http {
    session: Arc<Session>,
    /// The repository URL after a same-origin redirect of the ref advertisement, which the
    /// negotiation then uses (as git does).
    base: Mutex<Option<Url>>,
}

impl SmartSubtransport for Http {
    fn action(
        &self,
        url: &str,
        action: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        match action {
            Service::UploadPackLs => {
                let repo = repo_url(url).map_err(fail)?;
                let refs = join(&repo, "/info/refs?service=git-upload-pack").map_err(fail)?;
                let (resp, at) = send(&self.session, Method::GET, refs, None).map_err(fail)?;
                expect_type(&resp, &at, ADVERTISEMENT).map_err(fail)?;
                let moved = at
                    .path()
                    .strip_suffix("/info/refs")
                    .map(|p| {
                        let mut u = at.clone();
                        u.set_path(p);
                        u.set_query(None);
                        u
                    })
                    .ok_or_else(|| Failure::Protocol {
                        origin: origin(&at),
                        what: format!(
                            "a redirect led to {}, which is not a repository",
                            shown(&at)
                        ),
                    })
                    .map_err(fail)?;
                *self.base.lock().unwrap_or_else(|e| e.into_inner()) = Some(moved);
                Ok(Box::new(Stream::reading(&self.session, resp, &at)))
            }
            Service::UploadPack => {
                let repo = match self.base.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                    Some(u) => u,
                    None => repo_url(url).map_err(fail)?,
                };
                let post = join(&repo, "/git-upload-pack").map_err(fail)?;
                Ok(Box::new(Stream {
                    session: self.session.clone(),
                    state: State::Request {
                        url: post,
                        body: Vec::new(),
                    },
                }))
            }
            Service::ReceivePackLs | Service::ReceivePack => Err(fail(Failure::Push)),
        }
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// The repository URL libgit2 gives, without userinfo (a credential never rides in a URL).
fn repo_url(url: &str) -> Result<Url, Failure> {
    let mut u = Url::parse(url).map_err(|e| Failure::Protocol {
        origin: url.split('/').take(3).collect::<Vec<_>>().join("/"),
        what: format!("the URL does not parse: {e}"),
    })?;
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Ok(u)
}

fn join(repo: &Url, tail: &str) -> Result<Url, Failure> {
    Url::parse(&format!("{}{tail}", repo.as_str().trim_end_matches('/'))).map_err(|e| {
        Failure::Protocol {
            origin: origin(repo),
            what: format!("cannot build a request URL: {e}"),
        }
    })
}

/// `scheme://host[:port]` of a URL, for messages.
fn origin(u: &Url) -> String {
    u.origin().ascii_serialization()
}

/// A URL as shown in messages: no userinfo, no query (a presigned target may carry a secret).
fn shown(u: &Url) -> String {
    let mut u = u.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

fn expect_type(resp: &Response, at: &Url, want: &str) -> Result<(), Failure> {
    let got = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    if got.split(';').next().map(str::trim) == Some(want) {
        return Ok(());
    }
    Err(Failure::Protocol {
        origin: origin(at),
        what: format!("{} came back as {got}, not {want}", shown(at)),
    })
}

/// Send one request, following same-origin redirects; the credential rides only to its origin.
/// Returns the response (status 2xx) and the URL that gave it.
fn send(
    session: &Session,
    method: Method,
    mut url: Url,
    body: Option<Vec<u8>>,
) -> Result<(Response, Url), Failure> {
    let settings = session.settings;
    for _ in 0..=MAX_REDIRECTS {
        let client = client(&settings, is_loopback(&url))?;
        let accept = if body.is_some() {
            RESULT
        } else {
            ADVERTISEMENT
        };
        let mut req = client
            .request(method.clone(), url.clone())
            .header(ACCEPT, accept);
        let authorization = session.authorization_for(&url);
        if let Some(a) = authorization {
            let mut v = HeaderValue::from_str(a).map_err(|_| Failure::Protocol {
                origin: origin(&url),
                what: "the credential holds characters an HTTP header cannot carry".into(),
            })?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        if let Some(b) = &body {
            req = req.header(CONTENT_TYPE, REQUEST).body(b.clone());
        }
        let resp = req
            .send()
            .map_err(|e| transport_failure(&e, &url, &settings, Waiting::Answer))?;
        let status = resp.status().as_u16();
        if (300..400).contains(&status) && status != 304 {
            let next = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| Failure::Protocol {
                    origin: origin(&url),
                    what: format!("HTTP {status} without a usable Location"),
                })?;
            if !same_origin(&next, &url) {
                return Err(Failure::Redirect {
                    status,
                    from: origin(&url),
                    to: shown(&next),
                });
            }
            // 301/302/303 turn a POST into a GET, which cannot carry the negotiation.
            if body.is_some() && !matches!(status, 307 | 308) {
                return Err(Failure::Protocol {
                    origin: origin(&url),
                    what: format!("HTTP {status} redirected the negotiation (a POST)"),
                });
            }
            url = next;
            continue;
        }
        if !(200..300).contains(&status) {
            return Err(Failure::Status {
                status,
                origin: origin(&url),
                credential_sent: authorization.is_some(),
                retry_after: resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after),
            });
        }
        return Ok((resp, url));
    }
    Err(Failure::Protocol {
        origin: origin(&url),
        what: format!("more than {MAX_REDIRECTS} redirects"),
    })
}

/// `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

fn is_loopback(u: &Url) -> bool {
    let host = u.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or_else(|_| host.eq_ignore_ascii_case("localhost"))
}

/// One client per set of timeouts (and proxy rule), kept for the process: its connections
/// are reused from the ref advertisement to the pack and from one repository to the next.
fn client(settings: &Settings, loopback: bool) -> Result<Client, Failure> {
    type Clients = Mutex<Vec<((Settings, bool), Client)>>;
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((_, c)) = clients.iter().find(|(k, _)| *k == (*settings, loopback)) {
        return Ok(c.clone());
    }
    let mut builder = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.connect_timeout)
        // reqwest's blocking timeout bounds each wait (for the answer, for each read), not the
        // whole transfer: a large clone may take as long as it keeps moving.
        .timeout(settings.low_speed_time)
        .user_agent(USER_AGENT);
    if loopback {
        // A loopback server (emulator, local proxy) must never go through a system proxy.
        builder = builder.no_proxy();
    }
    let c = builder.build().map_err(|e| Failure::Setup(e.to_string()))?;
    clients.push(((*settings, loopback), c.clone()));
    Ok(c)
}

fn transport_failure(e: &reqwest::Error, url: &Url, s: &Settings, waiting: Waiting) -> Failure {
    let host = url
        .host_str()
        .map(|h| match url.port_or_known_default() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        })
        .unwrap_or_default();
    if e.is_connect() && e.is_timeout() {
        return Failure::ConnectTimeout {
            host,
            after: s.connect_timeout,
        };
    }
    if e.is_timeout() {
        return Failure::Stalled {
            origin: origin(url),
            after: s.low_speed_time.unwrap_or_default(),
            waiting,
        };
    }
    let detail = innermost(e);
    if e.is_connect() {
        Failure::Connect { host, detail }
    } else {
        Failure::Dropped {
            origin: origin(url),
            detail,
        }
    }
}

/// The root cause's text ("Connection refused (os error 111)"): reqwest's own wrappers only
/// repeat the URL.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A response body that must keep moving: each read waits at most the low-speed time (the
/// client's timeout), and over every window of that length at least the low-speed limit must
/// arrive on average (at least one byte when the limit is 0).
struct Body {
    resp: Response,
    origin: String,
    settings: Settings,
    window_start: Instant,
    window_bytes: u64,
}

impl Body {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Failure> {
        let n = self.resp.read(buf).map_err(|e| {
            let timed_out = e
                .get_ref()
                .and_then(|i| i.downcast_ref::<reqwest::Error>())
                .is_some_and(reqwest::Error::is_timeout);
            if timed_out {
                Failure::Stalled {
                    origin: self.origin.clone(),
                    after: self.settings.low_speed_time.unwrap_or_default(),
                    waiting: Waiting::MoreData,
                }
            } else {
                Failure::Dropped {
                    origin: self.origin.clone(),
                    detail: match e.get_ref() {
                        Some(inner) => innermost(inner),
                        None => e.to_string(),
                    },
                }
            }
        })?;
        let Some(time) = self.settings.low_speed_time else {
            return Ok(n);
        };
        self.window_bytes += n as u64;
        let over = self.window_start.elapsed();
        if n > 0 && over >= time {
            let need = (self.settings.low_speed_limit as f64 * over.as_secs_f64()).max(1.0);
            if (self.window_bytes as f64) < need {
                return Err(Failure::TooSlow {
                    origin: self.origin.clone(),
                    bytes: self.window_bytes,
                    over,
                    limit: self.settings.low_speed_limit,
                });
            }
            self.window_start = Instant::now();
            self.window_bytes = 0;
        }
        Ok(n)
    }
}

enum State {
    /// The negotiation request being written by libgit2; sent on the first read.
    Request {
        url: Url,
        body: Vec<u8>,
    },
    Reading(Box<Body>),
    Failed,
}

struct Stream {
    session: Arc<Session>,
    state: State,
}

impl Stream {
    fn reading(session: &Arc<Session>, resp: Response, at: &Url) -> Stream {
        Stream {
            session: session.clone(),
            state: State::Reading(Box::new(Body {
                resp,
                origin: origin(at),
                settings: session.settings,
                window_start: Instant::now(),
                window_bytes: 0,
            })),
        }
    }

    fn read_checked(&mut self, buf: &mut [u8]) -> Result<usize, Failure> {
        if let State::Request { url, body } = &mut self.state {
            let (url, body) = (url.clone(), std::mem::take(body));
            self.state = State::Failed;
            let (resp, at) = send(&self.session, Method::POST, url, Some(body))?;
            expect_type(&resp, &at, RESULT)?;
            *self = Stream::reading(&self.session, resp, &at);
        }
        match &mut self.state {
            State::Reading(body) => {
                let r = body.read(buf);
                if r.is_err() {
                    self.state = State::Failed;
                }
                r
            }
            _ => Err(Failure::Protocol {
                origin: String::new(),
                what: "read after a failure".into(),
            }),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_checked(buf).map_err(|f| {
            let e = io::Error::other(f.to_string());
            session::record(f);
            e
        })
    }
}

impl Write for Stream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.state {
            State::Request { body, .. } => {
                body.extend_from_slice(data);
                Ok(data.len())
            }
            _ => Err(io::Error::other("git wrote to a response")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past: no wait"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn urls_lose_their_userinfo_and_query_in_messages() {
        let u = Url::parse("https://u:p@h.example:8443/a/b.git/info/refs?sig=secret").unwrap();
        assert_eq!(shown(&u), "https://h.example:8443/a/b.git/info/refs");
        assert_eq!(origin(&u), "https://h.example:8443");
        let r = repo_url("https://user:pw@h.example/x.git").unwrap();
        assert_eq!(r.as_str(), "https://h.example/x.git");
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for u in [
            "http://127.0.0.2:1/x",
            "http://[::1]/x",
            "http://LOCALHOST/x",
        ] {
            assert!(is_loopback(&Url::parse(u).unwrap()), "{u}");
        }
        assert!(!is_loopback(
            &Url::parse("https://bitbucket.org/x").unwrap()
        ));
    }
}
