//! `bitbucket-emulator`: run the loopback Bitbucket by hand or for benchmarks.
//!
//! Prints its base URL as the first line of stdout, then serves until killed or until stdin
//! closes (so a parent that dies takes the emulator with it).

use std::io::{Read, Write};

use bitbucket_emulator::{Config, Emulator, Token};

const USAGE: &str = "usage: bitbucket-emulator [--anonymous] \
[--cloud-repo WORKSPACE/SLUG=PATH]... [--dc-repo PROJECT/SLUG=PATH]... [--token SPEC]...
  --anonymous                 allow unauthenticated reads (plain http clones)
  --cloud-repo ws/slug=PATH   serve PATH (bare or not) as Cloud ws/slug: {base}/ws/slug.git, {base}/2.0/...
  --dc-repo PROJ/slug=PATH    serve PATH as Data Center PROJ/slug: {base}/scm/proj/slug.git, {base}/rest/api/1.0/...
  --token SPEC                cloud-api:EMAIL:[USERNAME:]SECRET:SCOPES | cloud-access:SECRET:SCOPES |
                              dc-personal:USERNAME:SECRET:SCOPES | dc-project:PROJECT:SECRET:SCOPES |
                              dc-repo:PROJECT/REPO:SECRET:SCOPES   (SCOPES comma-separated)
Prints the base URL on the first stdout line; serves until killed or stdin closes.";

fn repo_arg(flag: &str, value: Option<String>) -> Result<(String, String, String), String> {
    let v = value.ok_or_else(|| format!("{flag} needs a value: OWNER/SLUG=PATH"))?;
    let (name, path) = v
        .split_once('=')
        .ok_or_else(|| format!("{flag} {v}: expected OWNER/SLUG=PATH"))?;
    let (owner, slug) = name
        .split_once('/')
        .ok_or_else(|| format!("{flag} {v}: expected OWNER/SLUG=PATH"))?;
    if owner.is_empty() || slug.is_empty() || path.is_empty() {
        return Err(format!(
            "{flag} {v}: expected OWNER/SLUG=PATH with none of them empty"
        ));
    }
    Ok((owner.into(), slug.into(), path.into()))
}

fn parse(args: impl Iterator<Item = String>) -> Result<Config, String> {
    let mut config = Config::default();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--anonymous" => config.anonymous = true,
            "--cloud-repo" => {
                let (o, s, p) = repo_arg("--cloud-repo", args.next())?;
                config = config.cloud_repo(&o, &s, p);
            }
            "--dc-repo" => {
                let (o, s, p) = repo_arg("--dc-repo", args.next())?;
                config = config.dc_repo(&o, &s, p);
            }
            "--token" => {
                let spec = args.next().ok_or("--token needs a value")?;
                config = config.token(Token::parse(&spec)?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(config)
}

/// Only a pipe, socket or terminal on stdin says something when it closes.
fn stdin_is_a_lifeline() -> bool {
    use std::io::IsTerminal;
    use std::os::unix::fs::FileTypeExt;
    if std::io::stdin().is_terminal() {
        return true;
    }
    std::fs::metadata("/dev/stdin")
        .is_ok_and(|m| m.file_type().is_fifo() || m.file_type().is_socket())
}

fn main() {
    let config = match parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            if e.is_empty() {
                println!("{USAGE}");
                std::process::exit(0);
            }
            eprintln!("bitbucket-emulator: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let emu = match Emulator::try_start(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("bitbucket-emulator: {e}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", emu.base_url());
    let _ = writeln!(
        out,
        "cloud api: {}  log host: {}",
        emu.cloud_api_url(),
        emu.log_host_url()
    );
    let _ = out.flush();
    if stdin_is_a_lifeline() {
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    } else {
        // `cmd &` in a script gets /dev/null as stdin: that EOF means nothing, serve until killed.
        loop {
            std::thread::park();
        }
    }
    drop(emu);
}
