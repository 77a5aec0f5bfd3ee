//! Running the binary under a memory ceiling and a deadline, for the tests that prove a hostile
//! input costs bounded memory and time: the child gets `RLIMIT_AS` (as `prlimit --as` would set
//! it), so an allocation past the ceiling fails in the child instead of swapping the machine,
//! and its own peak resident size comes back from `wait4`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Out;

/// 512 MiB of address space: the ceiling the hostile-input tests run the binary under. The
/// debug binary maps ~70 MB and a thread stack 8 MB before it reads anything.
pub const ADDRESS_SPACE: u64 = 512 * 1024 * 1024;

/// What a bounded run did.
pub struct Bounded {
    pub out: Out,
    /// Peak resident set size of the child, in KiB.
    pub max_rss_kib: i64,
    pub elapsed: Duration,
}

/// Run `cmd` with at most `address_space` bytes of address space; kill it and fail the test
/// when it is still running after `deadline` (a hang guard, not a timing assertion).
#[track_caller]
pub fn run(cmd: &mut Command, address_space: u64, deadline: Duration) -> Bounded {
    let limit = libc::rlimit {
        rlim_cur: address_space as libc::rlim_t,
        rlim_max: address_space as libc::rlim_t,
    };
    // SAFETY: setrlimit is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    // Reaped by `wait4` below, which also reports the child's peak memory.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agentenv runs");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waiting for our own child, which `child` never waits for itself.
        let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if got == pid {
            break;
        }
        assert!(got == 0, "wait4: {}", std::io::Error::last_os_error());
        if started.elapsed() > deadline {
            let _ = child.kill();
            // SAFETY: as above; reaps the killed child.
            unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            panic!(
                "still running after {deadline:?}; stderr so far:\n{}",
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let out = Out {
        code,
        stdout: String::from_utf8_lossy(&stdout.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.join().unwrap()).into_owned(),
    };
    Bounded {
        out,
        max_rss_kib: usage.ru_maxrss,
        elapsed,
    }
}
