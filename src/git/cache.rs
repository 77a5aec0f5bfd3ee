//! The node-level clone cache: one bare mirror per repository URL, shared by every provision
//! on a machine (or Kubernetes node), so the Nth cold start fetches only what changed upstream
//! and makes its checkout from local objects.
//!
//! ## Layout
//!
//! ```text
//! DIR/mirrors/<key>.git/                    a bare repository, fetched with the requester's credential
//! DIR/mirrors/<key>.git/agentenv-mirror.json  the marker: written after a complete fetch; its mtime is the last use
//! DIR/locks/<key>.lock                      the mirror's advisory file lock (kept when the mirror is evicted)
//! ```
//!
//! `<key>` is a digest of the credential-free URL plus its last path segment, for people.
//!
//! ## API (also for on-demand clones of repositories that were not provisioned)
//!
//! ```no_run
//! # use std::{path::Path, sync::Arc};
//! # use agentenv::git::{cache::{Cache, Limits}, Session, Settings};
//! # fn f(session: Arc<Session>) -> agentenv::Result<()> {
//! let cache = Cache::open(Path::new("/var/cache/agentenv"), Limits::from_env()?)?;
//! // Locked, validated (rebuilt when broken), refreshed: the default branch at depth 1.
//! let mirror = cache.mirror("https://bitbucket.org/acme/api.git", &session, None, 1)?;
//! let head = mirror.checkout_into(Path::new("/tmp/api"), mirror.branch().unwrap())?;
//! # Ok(()) }
//! ```
//!
//! - [`Cache::open`]`(dir, limits)`: the cache at `dir` (created), bounded by [`Limits`].
//! - [`Cache::mirror`]`(url, session, branch, depth)`: the mirror of `url`, locked for as long
//!   as the returned [`Mirror`] lives, with `branch` (default: the remote's default branch)
//!   fetched at `depth` (0 = full history) through `session` — the caller's credential for the
//!   provider's origin and its timeouts ([`super::Session`]). Nothing is fetched when the mirror
//!   already has the remote's tip; the remote is asked every time, with the caller's credential,
//!   so a cached mirror never serves a repository to a credential that cannot read it.
//! - The steps of `mirror` one by one, for callers that must look at the remote's answer before
//!   fetching (provision checks the branch against the spec's scope): [`Cache::lock`],
//!   [`Mirror::remote`] + [`super::Connection::open`], [`remote_branch`], [`Mirror::fetch`].
//! - [`Cache::has`]`(url)`: whether a complete mirror of `url` is there, without locking (for a
//!   listing that says what is cached; `search_code` reads mirrors through [`Cache::lock`]).
//! - [`Mirror::checkout_into`]`(target, branch)`: a new, independent checkout at `target`, as
//!   `git clone --single-branch` leaves it (`origin` with a one-branch refspec, the local branch
//!   tracking it, tags that point into its history).
//!
//! ## Guarantees
//!
//! - **No credential is stored.** Fetches use an anonymous remote on the URL as given, inside
//!   the caller's session; the mirror has no remote in its config, and the marker holds the
//!   credential-free URL.
//! - **Checkouts are independent of the cache.** `checkout_into` hard-links the mirror's pack
//!   files (immutable in git, as `git clone --local` does) and copies them when the link fails
//!   (another file system or mount — the usual case on Kubernetes, where the cache volume and the
//!   workdir's `emptyDir` are different mounts). No alternates: a checkout borrowing objects
//!   through `objects/info/alternates` would break when the cache is evicted, rebuilt or
//!   deleted. A checkout passes `git fsck` and stays valid when the cache goes away.
//! - **Concurrency.** One process (or thread) at a time holds a mirror, through an advisory file
//!   lock the OS releases when the holder dies; others wait. Different mirrors are independent.
//! - **Broken mirrors are rebuilt.** A mirror without its marker (its first fetch never
//!   finished), whose pack and index disagree (a truncated or overwritten pack), or whose branch
//!   tips cannot be read is removed and fetched anew. An object that turns out unreadable while
//!   checking out makes the caller [`Mirror::invalidate`] it and try once more.
//! - **Bounded.** After each use, least recently used mirrors that no one holds are evicted
//!   until the cache is within [`Limits`] (size and count). The mirror just used is kept even
//!   when it alone is over the size limit.
//! - A mirror keeps the history it has been asked for: a `depth: 0` request makes it complete,
//!   and checkouts made from it then have full history too.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use git2::{AutotagOption, FetchOptions, Oid, Repository};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Connection, Session};
use crate::error::{Error, Result};

/// The environment variable that names the cache directory when `--cache-dir` is not given.
pub const CACHE_DIR_VAR: &str = "AGENTENV_CACHE_DIR";
/// Bytes the mirrors may take (suffixes K, M, G, T: powers of 1024).
pub const MAX_SIZE_VAR: &str = "AGENTENV_CACHE_MAX_SIZE";
/// How many mirrors the cache keeps.
pub const MAX_MIRRORS_VAR: &str = "AGENTENV_CACHE_MAX_MIRRORS";

const MARKER: &str = "agentenv-mirror.json";

/// libgit2 cannot repack; every incremental fetch adds a pack. Past this many, lookups slow
/// down, so the mirror is fetched anew in one pack.
const MAX_PACKS: usize = 32;

/// How big the cache may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of all mirrors.
    pub max_bytes: u64,
    /// Number of mirrors.
    pub max_mirrors: usize,
}

impl Default for Limits {
    /// 20 GiB and 256 mirrors: a node's cache for a few dozen environments' repositories.
    fn default() -> Limits {
        Limits {
            max_bytes: 20 << 30,
            max_mirrors: 256,
        }
    }
}

impl Limits {
    /// The defaults, overridden by `AGENTENV_CACHE_MAX_SIZE` and `AGENTENV_CACHE_MAX_MIRRORS`.
    pub fn from_env() -> Result<Limits> {
        Limits::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Limits> {
        let mut limits = Limits::default();
        if let Some(v) = var(MAX_SIZE_VAR) {
            limits.max_bytes = parse_size(&v).ok_or_else(|| {
                Error::input(format!(
                    "{MAX_SIZE_VAR}=`{}` is not a size",
                    v.chars().take(40).collect::<String>()
                ))
                .with_hint("write bytes, or a number with K, M, G or T (powers of 1024), e.g. 20G")
            })?;
        }
        if let Some(v) = var(MAX_MIRRORS_VAR) {
            limits.max_mirrors = v.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                Error::input(format!(
                    "{MAX_MIRRORS_VAR}=`{}` is not a number of mirrors",
                    v.chars().take(40).collect::<String>()
                ))
                .with_hint("write a whole number above 0, e.g. 100")
            })?;
        }
        Ok(limits)
    }
}

/// `123`, `512K`, `20G` (powers of 1024; a trailing `B`/`iB` is allowed).
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_uppercase();
    let t = t
        .strip_suffix("IB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(&t);
    let (digits, shift) = match t.chars().last()? {
        'K' => (&t[..t.len() - 1], 10),
        'M' => (&t[..t.len() - 1], 20),
        'G' => (&t[..t.len() - 1], 30),
        'T' => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: u64 = digits.trim().parse().ok()?;
    n.checked_mul(1u64 << shift)
}

/// The clone cache at one directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    limits: Limits,
}

/// What the marker says about a mirror.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    version: u32,
    /// The credential-free URL the mirror was fetched from.
    url: String,
    /// Per branch of a shallow mirror, the depth its tip was last fetched at (absent in
    /// markers written before this was recorded: unknown, so fetched again when asked).
    #[serde(default)]
    depths: std::collections::BTreeMap<String, u32>,
}

impl Cache {
    /// The cache at `dir` when it exists, without creating anything: for asking what it holds.
    pub fn existing(dir: &Path) -> Option<Cache> {
        let root = std::path::absolute(dir).ok()?;
        root.join("mirrors").is_dir().then(|| Cache {
            root,
            limits: Limits::default(),
        })
    }

    /// The cache at `dir`, created if missing.
    pub fn open(dir: &Path, limits: Limits) -> Result<Cache> {
        let root = std::path::absolute(dir)
            .map_err(|e| Error::input(format!("cache dir {}: {e}", dir.display())))?;
        for sub in ["mirrors", "locks"] {
            let d = root.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| {
                Error::failure(format!(
                    "cannot create the clone cache {}: {e}",
                    d.display()
                ))
                .with_hint(format!(
                    "give --cache-dir (or {CACHE_DIR_VAR}) a directory this user can write"
                ))
            })?;
        }
        Ok(Cache { root, limits })
    }

    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Where the mirror of `url` lives (whether or not it exists yet).
    pub fn mirror_path(&self, url: &str) -> PathBuf {
        self.root.join("mirrors").join(format!("{}.git", key(url)))
    }

    /// Whether the mirror of `url` exists and finished its first fetch (no lock taken: an
    /// answer for a listing, not a promise that it is still there when locked).
    pub fn has(&self, url: &str) -> bool {
        self.mirror_path(url).join(MARKER).is_file()
    }

    fn lock_path(&self, key: &str) -> PathBuf {
        self.root.join("locks").join(format!("{key}.lock"))
    }

    /// The mirror of `url` (credential-free: it is the mirror's name and is recorded),
    /// locked, validated, and rebuilt empty when broken. Waits while another process holds it
    /// (at most [`crate::provision::lock::LOCK_WAIT`]).
    pub fn lock(&self, url: &str) -> Result<Mirror> {
        let lock = crate::provision::lock::wait_for(&self.lock_path(&key(url)))?;
        self.locked(url, lock)
    }

    /// [`Cache::lock`], waiting for another holder until `deadline` only (`None`: still held
    /// then) — for a tool call, whose own budget bounds the wait.
    pub fn lock_until(&self, url: &str, deadline: std::time::Instant) -> Result<Option<Mirror>> {
        match crate::provision::lock::wait_until(&self.lock_path(&key(url)), deadline)? {
            Some(lock) => self.locked(url, lock).map(Some),
            None => Ok(None),
        }
    }

    fn locked(&self, url: &str, lock: File) -> Result<Mirror> {
        let dir = self.mirror_path(url);
        let repo = match validate(&dir, url) {
            Ok(repo) => repo,
            Err(_) => rebuild(&dir)?,
        };
        Ok(Mirror {
            repo,
            dir,
            url: url.to_string(),
            cache: self.clone(),
            branch: None,
            _lock: lock,
        })
    }

    /// The mirror of `url`, locked and refreshed: `branch` (default: the remote's default
    /// branch) fetched at `depth` (0 = full history) unless the mirror already has the
    /// remote's tip. The remote is asked through `session` in any case.
    pub fn mirror(
        &self,
        url: &str,
        session: &Arc<Session>,
        branch: Option<&str>,
        depth: u32,
    ) -> Result<Mirror> {
        let net = |e: git2::Error| {
            let e = match super::take_failure() {
                Some(f) => Error::new(f.kind(), format!("{url}: {f}")).with_source(f),
                None => Error::unavailable(format!("{url}: {}", e.message())).with_source(e),
            };
            e.context("refreshing the clone cache")
        };
        let mut mirror = self.lock(url)?;
        let branch = {
            let mut remote = mirror.remote(url).map_err(net)?;
            let mut conn = Connection::open(&mut remote, session.clone()).map_err(net)?;
            let (branch, oid) = remote_branch(&conn, branch).map_err(net)?;
            mirror
                .fetch(&mut conn, &branch, oid, depth, FetchOptions::new())
                .map_err(net)?;
            branch
        };
        mirror.branch = Some(branch);
        Ok(mirror)
    }

    /// Evict least recently used mirrors nobody holds until the cache is within its limits;
    /// `keep` (the mirror in use) stays. Best effort: what cannot be measured or removed stays.
    fn evict(&self, keep: &Path) {
        let Ok(entries) = std::fs::read_dir(self.root.join("mirrors")) else {
            return;
        };
        // (last use, size, path, key) of every mirror; a mirror without a marker never finished
        // its first fetch, so it counts as used longest ago.
        let mut mirrors: Vec<(SystemTime, u64, PathBuf, String)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let key = name.strip_suffix(".git")?.to_string();
                let path = e.path();
                let used = std::fs::metadata(path.join(MARKER))
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                Some((used, dir_size(&path), path, key))
            })
            .collect();
        let mut total: u64 = mirrors.iter().map(|m| m.1).sum();
        let mut count = mirrors.len();
        mirrors.sort_by_key(|m| m.0);
        for (_, size, path, key) in mirrors {
            if total <= self.limits.max_bytes && count <= self.limits.max_mirrors {
                break;
            }
            if path == keep {
                continue;
            }
            let Ok(lock) = crate::provision::lock::open(&self.lock_path(&key)) else {
                continue;
            };
            // Held by someone: in use now, so not the least recently used anyway.
            if lock.try_lock().is_err() {
                continue;
            }
            if std::fs::remove_dir_all(&path).is_ok() {
                total = total.saturating_sub(size);
                count -= 1;
            }
        }
    }
}

/// The mirror's directory name for a URL: a digest (so any URL maps to a safe name) and the
/// URL's last segment (so people can tell mirrors apart).
fn key(url: &str) -> String {
    let digest = Sha256::digest(url.trim_end_matches('/').as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("");
    let last = last.strip_suffix(".git").unwrap_or(last);
    let name: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect();
    let name = name.trim_start_matches('.');
    if name.is_empty() {
        hex
    } else {
        format!("{hex}-{name}")
    }
}

/// Open the mirror at `dir` if it is complete and sound; the reason otherwise.
fn validate(dir: &Path, url: &str) -> std::result::Result<Repository, String> {
    let text = std::fs::read_to_string(dir.join(MARKER)).map_err(|e| format!("marker: {e}"))?;
    let marker: Marker = serde_json::from_str(&text).map_err(|e| format!("marker: {e}"))?;
    if marker.url != url || marker.version != 1 {
        return Err("the marker names another URL".into());
    }
    let repo = Repository::open_bare(dir).map_err(|e| e.message().to_string())?;
    check_packs(&dir.join("objects/pack"))?;
    // Every branch tip and its root tree must read back: what a checkout reads first.
    let refs = repo
        .references_glob("refs/heads/*")
        .map_err(|e| e.to_string())?;
    for r in refs {
        let r = r.map_err(|e| e.to_string())?;
        let commit = r.peel_to_commit().map_err(|e| e.to_string())?;
        commit.tree().map_err(|e| e.to_string())?;
    }
    Ok(repo)
}

/// Each index has its pack, and the pack's trailing checksum is the one the index records
/// (a truncated, half-written or overwritten pack fails this without reading it whole).
fn check_packs(pack_dir: &Path) -> std::result::Result<(), String> {
    let Ok(entries) = std::fs::read_dir(pack_dir) else {
        return Ok(());
    };
    let mut packs = 0;
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "idx") {
            continue;
        }
        packs += 1;
        let pack = path.with_extension("pack");
        let from_idx = tail(&path, 40, 20).map_err(|e| format!("{}: {e}", path.display()))?;
        let from_pack = tail(&pack, 20, 20).map_err(|e| format!("{}: {e}", pack.display()))?;
        if from_idx != from_pack {
            return Err(format!("{} does not match its index", pack.display()));
        }
    }
    if packs > MAX_PACKS {
        return Err(format!("{packs} packs: fetched anew into one"));
    }
    Ok(())
}

/// `len` bytes starting `from_end` bytes before the end of a file.
fn tail(path: &Path, from_end: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    let size = f.metadata()?.len();
    if size < from_end {
        return Err(std::io::Error::other("too short"));
    }
    f.seek(SeekFrom::Start(size - from_end))?;
    let mut buf = vec![0; len];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// An empty bare repository at `dir`, whatever was there.
fn rebuild(dir: &Path) -> Result<Repository> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| {
            Error::failure(format!(
                "cannot remove the broken cache mirror {}: {e}",
                dir.display()
            ))
        })?;
    }
    Repository::init_bare(dir).map_err(|e| {
        Error::failure(format!(
            "cannot create the cache mirror {}: {}",
            dir.display(),
            e.message()
        ))
    })
}

/// Total size of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                Err(_) => {}
            }
        }
    }
    total
}

/// The branch to use and its tip, from an open connection: `branch`, or the remote's default.
pub fn remote_branch(
    conn: &Connection<'_, '_>,
    branch: Option<&str>,
) -> std::result::Result<(String, Oid), git2::Error> {
    let branch = match branch {
        Some(b) => b.to_string(),
        None => {
            let head = conn.default_branch()?;
            let head = head.as_str().unwrap_or_default();
            head.strip_prefix("refs/heads/").unwrap_or(head).to_string()
        }
    };
    let refname = format!("refs/heads/{branch}");
    let oid = conn
        .list()?
        .iter()
        .find(|h| h.name() == refname)
        .map(|h| h.oid())
        .ok_or_else(|| {
            git2::Error::new(
                git2::ErrorCode::NotFound,
                git2::ErrorClass::Reference,
                format!("the remote has no branch `{branch}`"),
            )
        })?;
    Ok((branch, oid))
}

/// One repository's mirror, held (locked) for as long as this value lives.
pub struct Mirror {
    repo: Repository,
    dir: PathBuf,
    url: String,
    cache: Cache,
    /// The branch [`Cache::mirror`] resolved, when it was used.
    branch: Option<String>,
    _lock: File,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("dir", &self.dir)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Mirror {
    /// The bare repository's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The mirror itself, to read objects from (the lock is held meanwhile).
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// The branch [`Cache::mirror`] fetched (the remote's default one when none was asked).
    pub fn branch(&self) -> Option<&str> {
        self.branch.as_deref()
    }

    /// The mirror's tip of `branch`, if it has one.
    pub fn tip(&self, branch: &str) -> Option<Oid> {
        self.repo
            .refname_to_id(&format!("refs/heads/{branch}"))
            .ok()
    }

    /// An anonymous (never saved) remote on `fetch_url`, to connect inside a session with
    /// [`Connection::open`]. `fetch_url` may differ from the mirror's URL only by credentials.
    pub fn remote(&self, fetch_url: &str) -> std::result::Result<git2::Remote<'_>, git2::Error> {
        self.repo.remote_anonymous(fetch_url)
    }

    /// Bring `branch` to `oid` on an open connection, at `depth` (0 = full history), unless the
    /// mirror already has it at that depth. `fo` carries the caller's callbacks (progress);
    /// depth and tags are set here. Returns whether anything was fetched. The marker is
    /// written (and the last use recorded) either way, then the cache is trimmed to its limits.
    pub fn fetch(
        &self,
        conn: &mut Connection<'_, '_>,
        branch: &str,
        oid: Oid,
        depth: u32,
        mut fo: FetchOptions<'_>,
    ) -> std::result::Result<bool, git2::Error> {
        let shallow = self.repo.is_shallow();
        let mut depths = self.depths();
        let held = depths.get(branch).copied().unwrap_or(0);
        // A shallow mirror serves a deeper `depth` than it was fetched at with too little
        // history: fetch it again, never shallower than it was.
        let deep_enough = !shallow || (depth != 0 && held >= depth);
        let have = self.tip(branch) == Some(oid) && deep_enough;
        if !have {
            fo.download_tags(AutotagOption::Auto);
            let empty = self
                .repo
                .references_glob("refs/heads/*")
                .map(|mut r| r.next().is_none())
                .unwrap_or(true);
            if shallow && depth == 0 {
                // git's --unshallow: deepen past every shallow boundary.
                fo.depth(i32::MAX);
            } else if (shallow || empty) && depth != 0 {
                fo.depth(depth.max(held).min(i32::MAX as u32) as i32);
            }
            // A complete mirror stays complete: an incremental full fetch sends only the new
            // objects, where a shallow one would cut the mirror's history at the new tip.
            let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
            conn.remote().fetch(&[&refspec], Some(&mut fo), None)?;
            depths.insert(
                branch.to_string(),
                if depth == 0 { 0 } else { depth.max(held) },
            );
        }
        self.mark(depths)
            .map_err(|e| git2::Error::from_str(&e.to_string()))?;
        // On every use, not only after a fetch: lowered limits apply at the next use.
        self.cache.evict(&self.dir);
        Ok(!have)
    }

    /// The depths the marker records per branch (none when it cannot be read).
    fn depths(&self) -> std::collections::BTreeMap<String, u32> {
        std::fs::read_to_string(self.dir.join(MARKER))
            .ok()
            .and_then(|t| serde_json::from_str::<Marker>(&t).ok())
            .map(|m| m.depths)
            .unwrap_or_default()
    }

    /// Write the marker (a complete fetch is in place) and so record the use.
    fn mark(&self, depths: std::collections::BTreeMap<String, u32>) -> std::io::Result<()> {
        let marker = Marker {
            version: 1,
            url: self.url.clone(),
            depths,
        };
        let tmp = self.dir.join(format!("{MARKER}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec(&marker).expect("plain JSON"))?;
        std::fs::rename(&tmp, self.dir.join(MARKER))
    }

    /// Forget this mirror's content: the next [`Cache::lock`] rebuilds it. For a caller that
    /// found an object unreadable.
    pub fn invalidate(&self) {
        let _ = std::fs::remove_file(self.dir.join(MARKER));
    }

    /// Make a new checkout of `branch` at `target` (absent or empty), independent of the
    /// cache: the mirror's packs hard-linked or copied into it, `origin` set to the mirror's
    /// URL with a one-branch refspec, the local branch tracking it, the tags that point into
    /// its history, the work tree checked out. Returns the commit checked out.
    pub fn checkout_into(&self, target: &Path, branch: &str) -> Result<Oid> {
        let err = |e: git2::Error| {
            Error::failure(format!(
                "checking out {branch} of {} from the clone cache into {}: {}",
                self.url,
                target.display(),
                e.message()
            ))
            .with_source(e)
        };
        let tip = self.tip(branch).ok_or_else(|| {
            Error::not_found(format!(
                "the clone cache's mirror of {} has no branch `{branch}`",
                self.url
            ))
        })?;
        let repo = Repository::init(target).map_err(err)?;
        let git_dir = repo.path().to_path_buf();
        drop(repo);
        share_objects(&self.dir, &git_dir).map_err(|e| {
            Error::failure(format!(
                "cannot copy objects from the clone cache {} into {}: {e}",
                self.dir.display(),
                target.display()
            ))
        })?;
        // Opened again so its object database sees the packs.
        let repo = Repository::open(target).map_err(err)?;
        let refspec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
        repo.remote_with_fetch("origin", &self.url, &refspec)
            .map_err(err)?;
        repo.reference(
            &format!("refs/remotes/origin/{branch}"),
            tip,
            true,
            "agentenv: from the clone cache",
        )
        .map_err(err)?;
        for (name, oid) in self.tags_into(tip) {
            repo.reference(&name, oid, true, "agentenv: from the clone cache")
                .map_err(err)?;
        }
        let commit = repo.find_commit(tip).map_err(err)?;
        // The work tree is most of a warm-cache provision: written as a fresh clone's is,
        // several files at a time.
        let tree = commit.tree().map_err(err)?;
        crate::provision::git::populate(&repo, &tree).map_err(err)?;
        repo.reference(
            &format!("refs/heads/{branch}"),
            tip,
            true,
            "agentenv: provision",
        )
        .map_err(err)?;
        let mut cfg = repo.config().map_err(err)?;
        cfg.set_str(&format!("branch.{branch}.remote"), "origin")
            .map_err(err)?;
        cfg.set_str(
            &format!("branch.{branch}.merge"),
            &format!("refs/heads/{branch}"),
        )
        .map_err(err)?;
        repo.set_head(&format!("refs/heads/{branch}"))
            .map_err(err)?;
        Ok(tip)
    }

    /// Tags of the mirror that point at `tip` or into its history (as far as the mirror has
    /// it), as `git clone` follows them.
    fn tags_into(&self, tip: Oid) -> Vec<(String, Oid)> {
        let Ok(refs) = self.repo.references_glob("refs/tags/*") else {
            return Vec::new();
        };
        let tags: Vec<(String, Oid, Oid)> = refs
            .flatten()
            .filter_map(|r| {
                let name = r.name().ok()?.to_string();
                let oid = r.target()?;
                let commit = r.peel_to_commit().ok()?.id();
                Some((name, oid, commit))
            })
            .collect();
        if tags.is_empty() {
            return Vec::new();
        }
        let mut history = HashSet::new();
        if let Ok(mut walk) = self.repo.revwalk()
            && walk.push(tip).is_ok()
        {
            // A shallow mirror ends its history at its boundary; a missing parent ends the walk.
            for oid in walk {
                match oid {
                    Ok(oid) => {
                        history.insert(oid);
                    }
                    Err(_) => break,
                }
            }
        }
        tags.into_iter()
            .filter(|(_, _, commit)| history.contains(commit))
            .map(|(name, oid, _)| (name, oid))
            .collect()
    }
}

/// Give the repository at `git_dir` the mirror's objects and shallow boundary: hard links
/// where the file system allows them (packs and loose objects never change once written),
/// copies elsewhere.
fn share_objects(mirror: &Path, git_dir: &Path) -> std::io::Result<()> {
    let from = mirror.join("objects");
    let to = git_dir.join("objects");
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(from.join(&rel))? {
            let e = e?;
            let name = e.file_name();
            let rel = rel.join(&name);
            let kind = e.file_type()?;
            if kind.is_dir() {
                if rel == Path::new("info") {
                    // Never alternates: the checkout must not depend on the cache.
                    continue;
                }
                std::fs::create_dir_all(to.join(&rel))?;
                stack.push(rel);
            } else if kind.is_file() && is_object_file(&rel) {
                link_or_copy(&from.join(&rel), &to.join(&rel))?;
            }
        }
    }
    let shallow = mirror.join("shallow");
    if shallow.exists() {
        std::fs::copy(&shallow, git_dir.join("shallow"))?;
    }
    Ok(())
}

/// Packs with their indexes, and loose objects; not temporary files of a fetch.
fn is_object_file(rel: &Path) -> bool {
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    match rel.parent().and_then(|p| p.to_str()) {
        Some("pack") => {
            name.starts_with("pack-") && (name.ends_with(".pack") || name.ends_with(".idx"))
        }
        Some(dir) => dir.len() == 2 && name.len() == 38,
        None => false,
    }
}

fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        // Another file system or mount (EXDEV), or links not permitted: copy.
        Err(_) => std::fs::copy(from, to).map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("512K"), Some(512 << 10));
        assert_eq!(parse_size("20G"), Some(20 << 30));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("2 MB"), Some(2 << 20));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn a_held_mirror_is_waited_for_until_the_deadline_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), Limits::default()).unwrap();
        let url = "https://git.example/acme/app.git";
        let held = cache.lock(url).unwrap();
        let soon = std::time::Instant::now() + std::time::Duration::from_millis(100);
        assert!(cache.lock_until(url, soon).unwrap().is_none());
        drop(held);
        let later = std::time::Instant::now() + std::time::Duration::from_secs(5);
        assert!(cache.lock_until(url, later).unwrap().is_some());
    }

    #[test]
    fn limits_come_from_the_environment() {
        let l = Limits::from_lookup(|n| match n {
            MAX_SIZE_VAR => Some("1M".into()),
            MAX_MIRRORS_VAR => Some("3".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            l,
            Limits {
                max_bytes: 1 << 20,
                max_mirrors: 3
            }
        );
        assert!(Limits::from_lookup(|n| (n == MAX_MIRRORS_VAR).then(|| "0".into())).is_err());
        assert!(Limits::from_lookup(|n| (n == MAX_SIZE_VAR).then(|| "big".into())).is_err());
    }

    #[test]
    fn keys_are_safe_names_that_tell_urls_apart() {
        let a = key("https://bitbucket.org/acme/payments-api.git");
        assert!(a.ends_with("-payments-api"), "{a}");
        assert_ne!(a, key("https://bitbucket.org/other/payments-api.git"));
        assert_eq!(a, key("https://bitbucket.org/acme/payments-api.git/"));
        let odd = key("https://h/../..");
        assert!(!odd.contains('/') && !odd.starts_with('.'), "{odd}");
    }

    #[test]
    fn only_objects_are_shared() {
        assert!(is_object_file(Path::new("pack/pack-abc.pack")));
        assert!(is_object_file(Path::new("pack/pack-abc.idx")));
        assert!(!is_object_file(Path::new("pack/pack_git2_123")));
        assert!(!is_object_file(Path::new("pack/tmp_pack_x")));
        assert!(is_object_file(Path::new(
            "ab/cdef0123456789abcdef0123456789abcdef01"
        )));
        assert!(!is_object_file(Path::new("info/alternates")));
    }
}
