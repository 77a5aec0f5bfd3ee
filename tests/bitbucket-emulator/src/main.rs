//! `bitbucket-emulator`: run the loopback Bitbucket by hand or for benchmarks.
//!
//! Prints its base URL as the first line of stdout, then serves until killed or until stdin
//! closes (so a parent that dies takes the emulator with it).

use std::io::{Read, Write};

use bitbucket_emulator::{Config, Emulator, Pipeline, PipelineStep, PullRequest, Token};
use serde_json::Value;

const USAGE: &str = "usage: bitbucket-emulator [--anonymous] \
[--cloud-repo WORKSPACE/SLUG=PATH]... [--dc-repo PROJECT/SLUG=PATH]... [--token SPEC]... [--fixtures FILE]
  --anonymous                 allow unauthenticated reads (plain http clones)
  --cloud-repo ws/slug=PATH   serve PATH (bare or not) as Cloud ws/slug: {base}/ws/slug.git, {base}/2.0/...
  --dc-repo PROJ/slug=PATH    serve PATH as Data Center PROJ/slug: {base}/scm/proj/slug.git, {base}/rest/api/1.0/...
  --token SPEC                cloud-api:EMAIL:[USERNAME:]SECRET:SCOPES | cloud-access:SECRET:SCOPES |
                              dc-personal:USERNAME:SECRET:SCOPES | dc-project:PROJECT:SECRET:SCOPES |
                              dc-repo:PROJECT/REPO:SECRET:SCOPES   (SCOPES comma-separated)
  --fixtures FILE             JSON object with lists `pull_requests` and `pipelines` (Cloud):
                              each entry has `workspace` and `slug` and the fields of the emulator's
                              PullRequest / Pipeline (steps: PipelineStep, `log` a string); omitted
                              fields take their defaults
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

/// What `--fixtures` seeds once the emulator runs.
#[derive(Default)]
struct Seed {
    pull_requests: Vec<(String, String, PullRequest)>,
    pipelines: Vec<(String, String, Pipeline)>,
}

fn set_str(v: &Value, key: &str, field: &mut String) {
    if let Some(s) = v.get(key).and_then(Value::as_str) {
        *field = s.to_string();
    }
}

fn set_opt(v: &Value, key: &str, field: &mut Option<String>) {
    match v.get(key) {
        Some(Value::Null) => *field = None,
        Some(Value::String(s)) => *field = Some(s.clone()),
        _ => {}
    }
}

fn set_u64(v: &Value, key: &str, field: &mut u64) {
    if let Some(n) = v.get(key).and_then(Value::as_u64) {
        *field = n;
    }
}

/// Owner and slug of a fixture entry.
fn owner(v: &Value, what: &str) -> Result<(String, String), String> {
    let get = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("--fixtures: every {what} needs `workspace` and `slug`"))
    };
    Ok((get("workspace")?, get("slug")?))
}

fn read_fixtures(path: &str) -> Result<Seed, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--fixtures {path}: {e}"))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("--fixtures {path}: not JSON: {e}"))?;
    let list = |k: &str| {
        doc.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut seed = Seed::default();
    for v in list("pull_requests") {
        let (ws, slug) = owner(&v, "pull request")?;
        let mut pr = PullRequest::default();
        set_u64(&v, "id", &mut pr.id);
        for (k, f) in [
            ("title", &mut pr.title),
            ("description", &mut pr.description),
            ("state", &mut pr.state),
            ("source_branch", &mut pr.source_branch),
            ("destination_branch", &mut pr.destination_branch),
            ("author", &mut pr.author),
            ("created_on", &mut pr.created_on),
            ("updated_on", &mut pr.updated_on),
        ] {
            set_str(&v, k, f);
        }
        if let Some(r) = v.get("reviewers").and_then(Value::as_array) {
            pr.reviewers = r
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect();
        }
        pr.draft = v.get("draft").and_then(Value::as_bool).unwrap_or(pr.draft);
        seed.pull_requests.push((ws, slug, pr));
    }
    for v in list("pipelines") {
        let (ws, slug) = owner(&v, "pipeline")?;
        let mut p = Pipeline::default();
        for (k, f) in [
            ("uuid", &mut p.uuid),
            ("state", &mut p.state),
            ("ref_name", &mut p.ref_name),
            ("commit", &mut p.commit),
            ("creator", &mut p.creator),
            ("created_on", &mut p.created_on),
        ] {
            set_str(&v, k, f);
        }
        set_u64(&v, "build_number", &mut p.build_number);
        set_u64(&v, "duration_in_seconds", &mut p.duration_in_seconds);
        set_opt(&v, "result", &mut p.result);
        set_opt(&v, "completed_on", &mut p.completed_on);
        for s in v
            .get("steps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut step = PipelineStep::default();
            for (k, f) in [
                ("uuid", &mut step.uuid),
                ("name", &mut step.name),
                ("state", &mut step.state),
            ] {
                set_str(s, k, f);
            }
            set_opt(s, "result", &mut step.result);
            set_opt(s, "started_on", &mut step.started_on);
            set_opt(s, "completed_on", &mut step.completed_on);
            set_u64(s, "duration_in_seconds", &mut step.duration_in_seconds);
            step.log = s
                .get("log")
                .and_then(Value::as_str)
                .map(|l| l.as_bytes().to_vec());
            p.steps.push(step);
        }
        seed.pipelines.push((ws, slug, p));
    }
    Ok(seed)
}

fn parse(args: impl Iterator<Item = String>) -> Result<(Config, Seed), String> {
    let mut config = Config::default();
    let mut seed = Seed::default();
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
            "--fixtures" => {
                let path = args.next().ok_or("--fixtures needs a file")?;
                let more = read_fixtures(&path)?;
                seed.pull_requests.extend(more.pull_requests);
                seed.pipelines.extend(more.pipelines);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok((config, seed))
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
    let (config, seed) = match parse(std::env::args().skip(1)) {
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
    for (ws, slug, pr) in seed.pull_requests {
        emu.add_cloud_pull_request(&ws, &slug, pr);
    }
    for (ws, slug, p) in seed.pipelines {
        emu.add_pipeline(&ws, &slug, p);
    }
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
