//! Passing SIGINT, SIGTERM and SIGHUP on to the agent while `run` waits for it.
//!
//! `run` does not die of these: it catches them and sends each to the agent, then goes on
//! waiting, so the agent's own exit status (or the signal that ended it, as 128+N) becomes
//! `run`'s. A signal another process sent (`kill`, a container runtime stopping the pod) is
//! passed on; one the kernel sent to the terminal's foreground process group (^C, a hang-up)
//! has reached the agent already — it shares `run`'s process group, so that an interactive
//! agent keeps its terminal — and is not sent twice, as `sudo` does it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::error::{Error, Result};

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The write end of the self-pipe the handler writes signal numbers to (-1: none).
static PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = if info.is_null() {
        libc::SI_USER
    } else {
        unsafe { (*info).si_code }
    };
    // si_code > 0 is the kernel's own (SI_KERNEL for a terminal's signals to its group).
    if code > 0 {
        return;
    }
    let fd = PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is one valid byte.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// The handlers, installed until dropped (then the default actions come back).
pub struct Forwarding {
    read: Option<OwnedFd>,
    _write: OwnedFd,
}

impl Forwarding {
    /// Catch the signals from now on; they queue until [`Forwarding::forward_to`].
    pub fn install() -> Result<Forwarding> {
        let mut fds = [0; 2];
        // SAFETY: fds has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(Error::failure(format!(
                "cannot set up signal forwarding: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: pipe2 just returned these two open descriptors, owned by nothing else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        PIPE.store(write.as_raw_fd(), Ordering::Relaxed);
        for sig in SIGNALS {
            // SAFETY: a zeroed sigaction is valid; the handler has the SA_SIGINFO signature.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        }
        Ok(Forwarding {
            read: Some(read),
            _write: write,
        })
    }

    /// Send every caught signal (and those caught before) to `pid`.
    pub fn forward_to(&self, pid: i32) {
        let Some(read) = self.read.as_ref().map(|r| r.as_raw_fd()) else {
            return;
        };
        // SAFETY: dup of an open descriptor; the thread owns the copy.
        let fd = unsafe { libc::dup(read) };
        if fd < 0 {
            return;
        }
        // SAFETY: fd was just returned by dup and is owned by nothing else.
        let read = unsafe { OwnedFd::from_raw_fd(fd) };
        std::thread::spawn(move || {
            let mut file = std::fs::File::from(read);
            let mut byte = [0u8; 1];
            use std::io::Read;
            while let Ok(1) = file.read(&mut byte) {
                // SAFETY: kill has no memory effects; an exited pid gives ESRCH, ignored.
                unsafe {
                    libc::kill(pid, byte[0] as libc::c_int);
                }
            }
        });
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        for sig in SIGNALS {
            // SAFETY: restoring the default action.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        PIPE.store(-1, Ordering::Relaxed);
        // The write end closes with `self`, which ends the forwarding thread's read.
        self.read.take();
    }
}
