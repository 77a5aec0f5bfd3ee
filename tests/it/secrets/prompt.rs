//! On a terminal, `secret create` prompts twice with echo off: the value never appears on
//! the terminal. A real pseudo-terminal (openpty), not a pipe.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::BIN;
use crate::support::secrets::*;

const VALUE: &str = "typed-canary-58a1f0";

/// Run `agentenv secret create` on a pty, typing `answers` each after the next prompt
/// appears; returns everything the terminal showed and the exit code.
fn on_terminal(sb: &Sandbox, name: &str, answers: &[&str]) -> (String, i32) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors; null name, termios and winsize are allowed.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // openpty leaves close-on-exec off: every test shares this process, and a child another
    // test starts meanwhile would inherit the terminal and hold it open.
    for fd in [master, slave] {
        // SAFETY: `fd` is one of the two descriptors openpty just returned.
        assert_eq!(
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) },
            0
        );
    }
    // SAFETY: both descriptors were just opened and are owned here.
    let (master, slave) = unsafe { (File::from_raw_fd(master), File::from_raw_fd(slave)) };
    let mut child = Command::new(BIN)
        .args([
            "secret",
            "create",
            sb.spec.to_str().unwrap(),
            "--team",
            name,
        ])
        .current_dir(sb.dir.path())
        .env_clear()
        .env("HOME", &sb.home)
        .env("XDG_CONFIG_HOME", &sb.config)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let mut reader = master.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        // EIO once the child has exited and the last slave descriptor is closed.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let mut writer = master;
    let wait_for = |seen: &mut String, prompts: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.matches(": ").count() < prompts && Instant::now() < deadline {
            if let Ok(b) = rx.recv_timeout(Duration::from_millis(100)) {
                seen.push_str(&String::from_utf8_lossy(&b));
            }
        }
    };
    for (i, answer) in answers.iter().enumerate() {
        // Type only once the prompt is there: the terminal echoes what is typed before
        // echo is turned off, as any terminal would.
        wait_for(&mut seen, i + 1);
        writer.write_all(format!("{answer}\r").as_bytes()).unwrap();
    }
    let status = child.wait().unwrap();
    while let Ok(b) = rx.recv_timeout(Duration::from_millis(300)) {
        seen.push_str(&String::from_utf8_lossy(&b));
    }
    (seen, status.code().unwrap_or(-1))
}

#[test]
fn the_prompt_does_not_echo_and_asks_twice() {
    let sb = Sandbox::new();
    let key = sb.key("keys/alice.txt");
    sb.write_spec(&[&key.public], &[]);
    let (screen, code) = on_terminal(&sb, "BB_TOKEN", &[VALUE, VALUE]);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("input hidden"), "{screen}");
    assert!(screen.contains("created team secret BB_TOKEN"), "{screen}");
    assert!(!screen.contains(VALUE), "the value was echoed:\n{screen}");
    let got = sb
        .resolve(&[("AGENTENV_AGE_KEY_FILE", key.file.to_str().unwrap())])
        .unwrap();
    assert_eq!(got.get("BB_TOKEN"), Some(VALUE));

    let before = sb.snapshot();
    let (screen, code) = on_terminal(&sb, "OTHER", &[VALUE, "something-else"]);
    assert_eq!(code, 2, "{screen}");
    assert!(screen.contains("differ"), "{screen}");
    assert!(!screen.contains(VALUE), "{screen}");
    assert_eq!(sb.snapshot(), before);
}
