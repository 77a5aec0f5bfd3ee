//! Local file failures during a clone or an update name their real cause: a full disk or a
//! permission error is exit 1 with the OS's words and the path — not exit 5 "check the URL",
//! not retried — and once the cause is gone the next plain provision converges. A workdir
//! path that is a file says so.
//!
//! A full disk is a small tmpfs when the tests may mount one (as root); otherwise a file-size
//! limit (`RLIMIT_FSIZE`, which fails writes with EFBIG, "File too large") stands in for it.
//! A permission error is a directory the provision may not write: as root, the provision runs
//! as `nobody` (root ignores permissions).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use bitbucket_emulator::{Config, Emulator};

use crate::support::git::{commit_all, git, upstream, write};
use crate::support::provision::{entries, spec};
use crate::support::{Out, agentenv_cmd};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A tmpfs of `size` mounted at `at` for the life of the value.
struct SmallDisk {
    at: PathBuf,
}

impl SmallDisk {
    /// `None` when this process cannot mount (not root, or no permission in a container).
    fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let ok = is_root()
            && Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(at)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk {
            at: at.to_path_buf(),
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// How the disk fills up in this run of the tests.
enum Full {
    /// A tmpfs that is too small: ENOSPC. Held for its `Drop`, which unmounts it.
    #[allow(dead_code)]
    Tmpfs(SmallDisk),
    /// Files may not grow past this many bytes: EFBIG.
    FileSizeLimit(u64),
}

impl Full {
    fn new(at: &Path, size: &str, limit: u64) -> Full {
        match SmallDisk::mount(at, size) {
            Some(d) => Full::Tmpfs(d),
            None => {
                std::fs::create_dir_all(at).unwrap();
                eprintln!(
                    "no tmpfs can be mounted here: a file-size limit stands in for a full disk"
                );
                Full::FileSizeLimit(limit)
            }
        }
    }

    /// What the OS says.
    fn says(&self) -> &'static str {
        match self {
            Full::Tmpfs(_) => "No space left on device",
            Full::FileSizeLimit(_) => "File too large",
        }
    }

    /// Make room: a bigger tmpfs (a file-size limit applies only to the commands it is
    /// applied to).
    fn make_room(&self) {
        if let Full::Tmpfs(d) = self {
            let st = Command::new("mount")
                .args(["-o", "remount,size=16m", "tmpfs"])
                .arg(&d.at)
                .status()
                .unwrap();
            assert!(st.success());
        }
    }

    fn apply(&self, cmd: &mut Command) {
        if let Full::FileSizeLimit(limit) = *self {
            // SAFETY: between fork and exec, only setrlimit(2) and signal(2), which are
            // async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    let rl = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    libc::setrlimit(libc::RLIMIT_FSIZE, &rl);
                    // Past the limit a write fails with EFBIG instead of killing the process.
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    Ok(())
                });
            }
        }
    }
}

fn served(up: &Path) -> (Emulator, String) {
    let emu = Emulator::start(
        Config::default()
            .anonymous(true)
            .cloud_repo("acme", "app", up),
    );
    let url = emu.cloud_clone_url("acme", "app");
    (emu, url)
}

fn provision_cmd(spec: &Path, wd: &Path) -> Command {
    agentenv_cmd(&[
        "provision",
        spec.to_str().unwrap(),
        "--workdir",
        wd.to_str().unwrap(),
    ])
}

#[track_caller]
fn assert_local_failure(out: &Out, says: &str, path: &Path) {
    out.failed(1).says(says).says(&path.display().to_string());
    assert!(
        !out.all().contains("check the URL") && !out.all().contains("attempts)"),
        "a local failure is neither a network failure nor retried:\n{}",
        out.all()
    );
}

#[test]
fn a_full_disk_during_a_clone_is_exit_1_with_the_cause_and_the_path() {
    let t = tempfile::tempdir().unwrap();
    let up = upstream(&t.path().join("up"));
    // 3 MB that do not compress: the pack alone does not fit.
    let noise: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    write(&up.join("noise.bin"), noise);
    commit_all(&up, "noise");
    let (emu, url) = served(&up);
    let spec = spec(
        t.path(),
        &format!("repos:\n  - url: {url}\n    path: app\n"),
    );
    let full = Full::new(&t.path().join("small"), "1m", 1_000_000);
    let wd = t.path().join("small/wd");
    let mut cmd = provision_cmd(&spec, &wd);
    full.apply(&mut cmd);
    let out = Out::from(cmd.output().unwrap());
    assert_local_failure(&out, full.says(), &wd);
    assert_eq!(emu.count("GET */info/refs*"), 1, "not retried");
    assert_eq!(entries(&wd), [".agentenv"], "no half clone left");
}

/// The workdir's disk fills while a checkout is made from the clone cache (on another
/// disk): exit 1 with the cause, and the mirror is kept, not thrown away and fetched again
/// onto the same full disk.
#[test]
fn a_full_disk_during_a_checkout_from_the_cache_keeps_the_mirror() {
    let t = tempfile::tempdir().unwrap();
    let up = upstream(&t.path().join("up"));
    // 2 MB that compress to almost nothing: the mirror's pack is small, the work tree is not.
    write(
        &up.join("big.txt"),
        "all work and no play\n".repeat(100_000),
    );
    commit_all(&up, "big");
    let (emu, url) = served(&up);
    let spec = spec(
        t.path(),
        &format!("repos:\n  - url: {url}\n    path: app\n"),
    );
    let cache = t.path().join("cache");
    let full = Full::new(&t.path().join("small"), "1m", 1_000_000);
    let wd = t.path().join("small/wd");
    let mut cmd = provision_cmd(&spec, &wd);
    cmd.arg("--cache-dir").arg(&cache);
    full.apply(&mut cmd);
    let out = Out::from(cmd.output().unwrap());
    out.failed(1).says(full.says());
    if let Full::Tmpfs(_) = full {
        out.says("is full");
        assert_eq!(emu.count("GET */info/refs*"), 1, "fetched once, not again");
        let mirrors = std::fs::read_dir(cache.join("mirrors")).unwrap().count();
        assert_eq!(mirrors, 1, "the mirror is kept");
    }
}

#[test]
fn a_full_disk_during_an_update_is_exit_1_and_the_next_run_completes_the_update() {
    let t = tempfile::tempdir().unwrap();
    let up = upstream(&t.path().join("up"));
    let (_emu, url) = served(&up);
    let spec = spec(
        t.path(),
        &format!("repos:\n  - url: {url}\n    path: app\n"),
    );
    let full = Full::new(&t.path().join("small"), "1m", 1_000_000);
    let wd = t.path().join("small/wd");
    Out::from(provision_cmd(&spec, &wd).output().unwrap()).ok();

    // 2 MB that compress to almost nothing: the fetch fits, the checkout does not, and it
    // stops half-way (files before big.txt written, those after not).
    write(&up.join("a-first.txt"), "written before the disk fills\n");
    write(
        &up.join("big.txt"),
        "all work and no play\n".repeat(100_000),
    );
    write(&up.join("file2.txt"), "2 moved on\n");
    std::fs::remove_file(up.join("file3.txt")).unwrap();
    let b = commit_all(&up, "move on");
    let mut cmd = provision_cmd(&spec, &wd);
    full.apply(&mut cmd);
    let out = Out::from(cmd.output().unwrap());
    assert_local_failure(&out, full.says(), &wd.join("app"));

    full.make_room();
    let out = Out::from(provision_cmd(&spec, &wd).output().unwrap());
    out.ok();
    assert!(!out.all().contains("local changes"), "{}", out.all());
    let app = wd.join("app");
    assert_eq!(git(&app, &["rev-parse", "HEAD"]), b);
    assert_eq!(
        git(&app, &["status", "--porcelain", "--untracked-files=all"]),
        ""
    );
    git(&app, &["fsck", "--full", "--no-progress"]);
}

/// `provision` of `spec` into `wd`, run as `nobody` when root (root may write anywhere),
/// with the workdir theirs.
fn provision_unprivileged(spec: &Path, wd: &Path, t: &Path) -> Out {
    let mut cmd = provision_cmd(spec, wd);
    if is_root() {
        // The test's tempdir is private to root; nobody must reach the spec and the workdir.
        chmod(t, 0o755);
        let st = Command::new("chown")
            .args(["-R", &format!("{NOBODY}:{NOBODY}")])
            .arg(wd)
            .status()
            .unwrap();
        assert!(st.success());
        cmd.uid(NOBODY).gid(NOBODY).env("HOME", t);
    }
    Out::from(cmd.output().unwrap())
}

/// git on a checkout that may belong to `nobody`.
fn git_any(dir: &Path, args: &[&str]) -> String {
    git(dir, &[&["-c", "safe.directory=*"], args].concat())
}

fn chmod(p: &Path, mode: u32) {
    let m = std::os::unix::fs::PermissionsExt::from_mode(mode);
    std::fs::set_permissions(p, m).unwrap();
}

#[test]
fn a_permission_error_during_a_clone_is_exit_1_with_the_cause_and_the_path() {
    let t = tempfile::tempdir().unwrap();
    let up = upstream(&t.path().join("up"));
    let (emu, url) = served(&up);
    let spec = spec(
        t.path(),
        &format!("repos:\n  - url: {url}\n    path: locked/app\n"),
    );
    let wd = t.path().join("wd");
    std::fs::create_dir_all(wd.join("locked")).unwrap();
    // Nobody may create the clone in `locked`.
    chmod(&wd.join("locked"), 0o555);
    let out = provision_unprivileged(&spec, &wd, t.path());
    assert_local_failure(&out, "Permission denied", &wd.join("locked"));
    assert!(emu.count("GET */info/refs*") <= 1, "not retried");

    chmod(&wd.join("locked"), 0o755);
    provision_unprivileged(&spec, &wd, t.path()).ok();
    assert_eq!(
        git_any(&wd.join("locked/app"), &["rev-parse", "HEAD"]),
        git(&up, &["rev-parse", "main"])
    );
}

#[test]
fn a_permission_error_during_an_update_is_exit_1_and_the_update_completes_later() {
    let t = tempfile::tempdir().unwrap();
    let up = upstream(&t.path().join("up"));
    let (_emu, url) = served(&up);
    let spec = spec(
        t.path(),
        &format!("repos:\n  - url: {url}\n    path: app\n"),
    );
    let wd = t.path().join("wd");
    std::fs::create_dir_all(&wd).unwrap();
    let run = || provision_unprivileged(&spec, &wd, t.path());
    run().ok();

    // The update changes files in place (allowed) and adds and removes some in the checkout's
    // top directory, which nobody may write now.
    write(&up.join("file2.txt"), "2 moved on\n");
    write(&up.join("a-new.txt"), "new\n");
    std::fs::remove_file(up.join("file3.txt")).unwrap();
    let b = commit_all(&up, "move on");
    let app = wd.join("app");
    chmod(&app, 0o555);
    let out = run();
    assert_local_failure(&out, "Permission denied", &app);

    chmod(&app, 0o755);
    run().ok();
    assert_eq!(git_any(&app, &["rev-parse", "HEAD"]), b);
    assert_eq!(
        git_any(&app, &["status", "--porcelain", "--untracked-files=all"]),
        ""
    );
}

#[test]
fn a_workdir_that_is_a_file_says_so() {
    let t = tempfile::tempdir().unwrap();
    upstream(&t.path().join("up"));
    let spec = spec(t.path(), "repos:\n  - url: ./up\n");
    let file = t.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut cmd = provision_cmd(&spec, &file);
        cmd.args(extra);
        Out::from(cmd.output().unwrap()).failed(2).says(&format!(
            "workdir {} is a file, not a directory",
            file.display()
        ));
        let mut cmd = provision_cmd(&spec, &file.join("wd"));
        cmd.args(extra);
        Out::from(cmd.output().unwrap())
            .failed(2)
            .says(&format!("is inside {}, which is a file", file.display()));
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x", "left alone");
}
