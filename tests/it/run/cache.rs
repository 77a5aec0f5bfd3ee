//! The node-level clone cache (`provision --cache-dir`): what a warm cache transfers, checkouts
//! that pass `git fsck` and outlive the cache, several provisions at once, broken mirrors
//! rebuilt, eviction, and the credential kept out of the cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::git::{commit, commit_all, git, write};
use crate::support::remote::*;
use crate::support::{Out, agentenv_cmd};

const UPLOAD_PACK: &str = "POST /acme/payments-api.git/git-upload-pack";
const REF_LISTING: &str = "GET /acme/payments-api.git/info/refs";

struct Cached {
    f: Fixture,
    spec: PathBuf,
    cache: PathBuf,
}

impl Cached {
    /// The shared fixture with a file large enough that a full transfer is easy to tell from
    /// an incremental one (random bytes do not compress).
    fn new() -> Cached {
        let f = Fixture::new();
        let noise: Vec<u8> = (0..256 * 1024).map(|_| rand_byte()).collect();
        write(&f.upstream.join("data.bin"), noise);
        commit_all(&f.upstream, "add data");
        let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
        let cache = f.path().join("cache");
        Cached { f, spec, cache }
    }

    fn provision(&self, workdir: &Path) -> Out {
        self.provision_cmd(workdir, API_TOKEN)
            .output()
            .expect("agentenv runs")
            .into()
    }

    fn provision_cmd(&self, workdir: &Path, token: &str) -> Command {
        let mut cmd = agentenv_cmd(&[
            "provision",
            self.spec.to_str().unwrap(),
            "--workdir",
            workdir.to_str().unwrap(),
            "--cache-dir",
            self.cache.to_str().unwrap(),
        ]);
        cmd.env("BB_TOKEN", token).env(
            "AGENTENV_PERSONAL_FILE",
            self.f.path().join("no-personal.yaml"),
        );
        cmd
    }

    /// The same provision into `workdir` without the cache, for comparison.
    fn provision_uncached(&self, workdir: &Path) -> Out {
        let spec = self.spec.to_str().unwrap();
        let work = workdir.to_str().unwrap();
        self.f
            .run(API_TOKEN, &["provision", spec, "--workdir", work])
            .into()
    }

    fn work(&self, name: &str) -> PathBuf {
        self.f.path().join(name)
    }

    fn mirrors(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.cache.join("mirrors"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    fn mirror(&self) -> PathBuf {
        let m = self.mirrors();
        assert_eq!(m.len(), 1, "one mirror: {m:?}");
        m[0].clone()
    }
}

fn rand_byte() -> u8 {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u64> = const { Cell::new(0x9e37_79b9_7f4a_7c15) });
    STATE.with(|s| {
        // xorshift: incompressible enough, and the same bytes on every run.
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 24) as u8
    })
}

/// The checkout passes `git fsck --full`, borrows no objects, and is at `head`.
#[track_caller]
fn assert_sound_checkout(checkout: &Path, head: &str) {
    git(checkout, &["fsck", "--full", "--no-progress"]);
    assert_eq!(git(checkout, &["rev-parse", "HEAD"]), head);
    assert!(
        !checkout.join(".git/objects/info/alternates").exists(),
        "a checkout must not borrow objects from the cache"
    );
    assert_eq!(git(checkout, &["status", "--porcelain"]), "", "clean");
}

#[test]
fn a_warm_cache_transfers_only_what_changed_and_checkouts_outlive_it() {
    let c = Cached::new();
    let head = git(&c.f.upstream, &["rev-parse", "main"]);

    // Without the cache, for comparison: the same checkout, refs and remote.
    c.provision_uncached(&c.work("plain")).ok();
    // A shallow fetch over stateless HTTP negotiates in more than one request.
    let fetch_requests = c.f.emu.count(UPLOAD_PACK);
    let full = c.f.emu.bytes_sent(UPLOAD_PACK);
    assert!(
        full > 200 * 1024,
        "the first transfer carries data.bin: {full}"
    );

    c.f.emu.reset_counters();
    c.provision(&c.work("w1")).ok().hides(CANARIES);
    assert_eq!(
        c.f.emu.count(UPLOAD_PACK),
        fetch_requests,
        "a cold cache fetches once"
    );
    let first = c.f.emu.bytes_sent(UPLOAD_PACK);
    assert!(first > 200 * 1024, "{first}");

    // The second cold provision on this node: the remote is asked, nothing is downloaded.
    c.f.emu.reset_counters();
    c.provision(&c.work("w2")).ok();
    assert_eq!(c.f.emu.count(UPLOAD_PACK), 0, "nothing changed upstream");
    assert_eq!(c.f.emu.count(REF_LISTING), 1, "the remote is still asked");

    // One small commit upstream: only it travels.
    let head2 = commit(&c.f.upstream, "NEWS.md", "one more line\n");
    c.f.emu.reset_counters();
    c.provision(&c.work("w3")).ok();
    assert!(c.f.emu.count(UPLOAD_PACK) > 0);
    let incremental = c.f.emu.bytes_sent(UPLOAD_PACK);
    assert!(
        incremental * 20 < first,
        "an incremental fetch sends what changed: {incremental} bytes vs {first}"
    );

    for (w, at) in [("w1", &head), ("w2", &head), ("w3", &head2)] {
        assert_sound_checkout(&c.work(w).join("payments-api"), at);
    }
    // The same result as a clone without the cache: branches, remote, tracking.
    let refs = |w: &str| {
        git(
            &c.work(w).join("payments-api"),
            &["for-each-ref", "--format=%(refname) %(objectname)"],
        )
    };
    assert_eq!(refs("w1"), refs("plain"));
    let config = |w: &str, key: &str| git(&c.work(w).join("payments-api"), &["config", key]);
    for key in [
        "remote.origin.url",
        "remote.origin.fetch",
        "branch.main.remote",
        "branch.main.merge",
    ] {
        assert_eq!(config("w1", key), config("plain", key), "{key}");
    }

    // No credential anywhere in the cache: not in files, not in the mirror's config.
    assert!(
        canary_files(&c.cache).is_empty(),
        "{:?}",
        canary_files(&c.cache)
    );
    let mirror_config = std::fs::read_to_string(c.mirror().join("config")).unwrap();
    assert!(
        !mirror_config.contains("[remote") && !mirror_config.contains('@'),
        "{mirror_config}"
    );

    // The checkouts do not need the cache.
    std::fs::remove_dir_all(&c.cache).unwrap();
    for (w, at) in [("w1", &head), ("w3", &head2)] {
        assert_sound_checkout(&c.work(w).join("payments-api"), at);
        git(&c.work(w).join("payments-api"), &["log", "-1", "--stat"]);
    }
    // And a provision after that updates as usual.
    c.provision(&c.work("w1")).ok();
    assert_sound_checkout(&c.work("w1").join("payments-api"), &head2);
}

fn canary_files(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    crate::support::canary::files_holding(dir, CANARIES)
}

/// A mirror fetched one commit deep (the default, and what `search_code` makes) serves a
/// later `depth: 3` with three commits, as `git clone --depth 3` has, not one.
#[test]
fn a_deeper_depth_than_the_mirror_holds_is_fetched() {
    let c = Cached::new();
    c.provision(&c.work("one")).ok();
    let deep =
        c.f.cloud_spec(API_AUTH, &format!("{ONE_REPO}\n    depth: 3"), "");
    let out: Out = agentenv_cmd(&[
        "provision",
        deep.to_str().unwrap(),
        "--workdir",
        c.work("three").to_str().unwrap(),
        "--cache-dir",
        c.cache.to_str().unwrap(),
    ])
    .env("BB_TOKEN", API_TOKEN)
    .env(
        "AGENTENV_PERSONAL_FILE",
        c.f.path().join("no-personal.yaml"),
    )
    .output()
    .expect("agentenv runs")
    .into();
    out.ok();
    let theirs = c.f.path().join("git-depth-3");
    git(
        c.f.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "3",
            &format!("file://{}", c.f.upstream.display()),
            theirs.to_str().unwrap(),
        ],
    );
    let count = |dir: &Path| git(dir, &["rev-list", "--count", "HEAD"]);
    assert_eq!(count(&c.work("three").join("payments-api")), count(&theirs));
    assert_eq!(count(&c.work("one").join("payments-api")), "1");
}

#[test]
fn four_provisions_at_once_share_one_mirror() {
    let c = Cached::new();
    let head = git(&c.f.upstream, &["rev-parse", "main"]);
    // How many requests one fetch takes, from a clone without the cache.
    c.provision_uncached(&c.work("plain")).ok();
    let one_fetch = c.f.emu.count(UPLOAD_PACK);
    assert!(one_fetch > 0);
    c.f.emu.reset_counters();
    let children: Vec<_> = (0..4)
        .map(|i| {
            c.provision_cmd(&c.work(&format!("p{i}")), API_TOKEN)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("agentenv starts")
        })
        .collect();
    for child in children {
        let out: Out = child.wait_with_output().unwrap().into();
        out.ok();
    }
    assert_eq!(
        c.f.emu.count(UPLOAD_PACK),
        one_fetch,
        "one fetch; the others found the mirror up to date"
    );
    c.mirror();
    for i in 0..4 {
        assert_sound_checkout(&c.work(&format!("p{i}")).join("payments-api"), &head);
    }
}

#[test]
fn half_written_and_corrupt_mirrors_are_rebuilt() {
    let c = Cached::new();
    let head = git(&c.f.upstream, &["rev-parse", "main"]);
    c.provision(&c.work("w0")).ok();
    let one_fetch = c.f.emu.count(UPLOAD_PACK);
    let mirror = c.mirror();
    let pack = |m: &Path| -> PathBuf {
        std::fs::read_dir(m.join("objects/pack"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "pack"))
            .expect("a pack")
    };

    type Break = fn(&Path, &Path);
    let breaks: [(&str, Break); 4] = [
        // Killed during its first fetch: no marker.
        ("no marker", |m, _| {
            std::fs::remove_file(m.join("agentenv-mirror.json")).unwrap()
        }),
        // A pack cut short.
        ("truncated pack", |_, p| {
            let len = std::fs::metadata(p).unwrap().len();
            set_writable(p);
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(len / 2)
                .unwrap();
        }),
        // Bytes overwritten inside the objects, the trailer intact: only reading finds it.
        ("garbage inside the pack", |_, p| {
            use std::io::{Seek, SeekFrom, Write};
            let len = std::fs::metadata(p).unwrap().len();
            set_writable(p);
            let mut f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            f.seek(SeekFrom::Start(len / 3)).unwrap();
            f.write_all(&[0x55; 4096]).unwrap();
        }),
        // A branch pointing at an object that is not there.
        ("dangling branch", |m, _| {
            std::fs::write(
                m.join("refs/heads/main"),
                "1111111111111111111111111111111111111111\n",
            )
            .unwrap();
        }),
    ];
    for (i, (what, break_it)) in breaks.into_iter().enumerate() {
        // Rebuilding a broken mirror never damages checkouts made before: it unlinks the
        // mirror's files, and w0 holds its own links to (or copies of) the packs it was made
        // from. (Damage written into a pack in place reaches the checkouts that hard-link that
        // very file; the README says so.)
        break_it(&mirror, &pack(&mirror));
        c.f.emu.reset_counters();
        let work = c.work(&format!("after{i}"));
        let out = c.provision(&work);
        assert_eq!(out.code, 0, "{what}: {}", out.all());
        assert_eq!(
            c.f.emu.count(UPLOAD_PACK),
            one_fetch,
            "{what}: fetched anew"
        );
        assert_sound_checkout(&work.join("payments-api"), &head);
        assert_sound_checkout(&c.work("w0").join("payments-api"), &head);
        assert_eq!(c.mirror(), mirror, "{what}: rebuilt in place");
    }
}

/// Packs are read-only; a test that breaks one makes it writable first.
fn set_writable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn least_recently_used_mirrors_are_evicted_past_the_limit() {
    let c = Cached::new();
    // `cloud_spec` writes env.yaml each time: keep the first.
    let payments = c.f.path().join("payments.yaml");
    std::fs::copy(&c.spec, &payments).unwrap();
    let other = crate::support::git::upstream(&c.f.path().join("ledger-upstream"));
    c.f.emu.add_cloud_repo("acme", "ledger", &other);
    let ledger =
        c.f.cloud_spec(API_AUTH, "  - provider: bb\n    slug: ledger", "");
    let run = |spec: &Path, work: &str, limit: &str| -> Out {
        agentenv_cmd(&[
            "provision",
            spec.to_str().unwrap(),
            "--workdir",
            c.work(work).to_str().unwrap(),
        ])
        .env("AGENTENV_CACHE_DIR", &c.cache)
        .env("AGENTENV_CACHE_MAX_MIRRORS", limit)
        .env("BB_TOKEN", API_TOKEN)
        .env(
            "AGENTENV_PERSONAL_FILE",
            c.f.path().join("no-personal.yaml"),
        )
        .output()
        .unwrap()
        .into()
    };
    std::fs::copy(&ledger, c.f.path().join("ledger.yaml")).unwrap();
    let ledger = c.f.path().join("ledger.yaml");

    run(&payments, "a", "2").ok();
    run(&ledger, "b", "2").ok();
    assert_eq!(c.mirrors().len(), 2, "within the limit");
    let names = |c: &Cached| -> Vec<String> {
        c.mirrors()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    // Use payments again, then go down to one mirror: ledger is the least recently used.
    run(&payments, "c", "2").ok();
    run(&payments, "d", "1").ok();
    let left = names(&c);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].ends_with("-payments-api.git"), "{left:?}");
    // Evicted mirrors leave their checkouts intact.
    git(
        &c.work("b").join("ledger"),
        &["fsck", "--full", "--no-progress"],
    );
    let bad = run(&payments, "e", "zero");
    bad.failed(2).says("AGENTENV_CACHE_MAX_MIRRORS");
}

#[test]
fn a_cached_mirror_is_not_served_to_a_credential_the_remote_refuses() {
    let c = Cached::new();
    c.provision(&c.work("w1")).ok();
    let out: Out = c
        .provision_cmd(&c.work("w2"), EXPIRED)
        .output()
        .unwrap()
        .into();
    out.failed(3).hides(CANARIES);
    assert!(
        !c.work("w2").join("payments-api").exists(),
        "no checkout from the cache without the remote's consent"
    );
}
