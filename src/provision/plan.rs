//! The plan: where each repository comes from and goes, and whether each step runs and why.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::provision::state::State;
use crate::spec::{LoadedEnv, ProviderKind, Repo, Step};

/// One repository, resolved against the spec file and the workdir.
#[derive(Debug, Clone)]
pub struct RepoPlan {
    /// The name tools and the CLI use ([`Repo::name`]).
    pub name: String,
    /// The URL shown and recorded: never carries credentials.
    pub url: String,
    /// What git2 connects to.
    pub fetch_url: String,
    /// For a local path or `file://` URL: the repository on disk.
    pub local_path: Option<PathBuf>,
    /// The checkout's path relative to the workdir, as written in the spec.
    pub rel_path: String,
    /// Absolute target directory.
    pub target: PathBuf,
    pub branch: Option<String>,
    pub depth: u32,
    /// The spec's scope: its branch rule is checked again once the remote names its default branch.
    pub scope: crate::scope::Scope,
}

/// Resolve every repository of the spec, refusing those outside `scope.repositories`.
pub fn repos(env: &LoadedEnv, workdir: &Path) -> Result<Vec<RepoPlan>> {
    env.spec
        .repos
        .iter()
        .map(|r| repo(env, r, workdir))
        .collect()
}

/// Resolve one repository of the spec, refusing it when it is outside `scope.repositories`
/// (the tools plan the one repository a call fetches into).
pub fn repo(env: &LoadedEnv, repo: &Repo, workdir: &Path) -> Result<RepoPlan> {
    let name = repo.name();
    // The same rule as validation and the tools: the bare name or `owner/slug`.
    let full_name = repo.full_name(&env.spec.providers);
    if !env.scope.repo(&name, full_name.as_deref()) {
        return Err(Error::not_found(format!(
            "{}: repository {name} is outside the spec's scope.repositories",
            env.path.display()
        ))
        .with_hint("widen `scope.repositories` or remove the repository"));
    }
    if let Some(branch) = &repo.branch
        && !env.scope.branch(branch)
    {
        return Err(Error::not_found(format!(
            "{}: branch `{branch}` of repository {name} is outside the spec's scope.branches",
            env.path.display()
        ))
        .with_hint("widen `scope.branches` or pick another branch"));
    }
    let url = source_url(env, repo)?;
    let local_path = local_path(&url, &env.dir);
    let fetch_url = match &local_path {
        Some(p) => p.to_string_lossy().into_owned(),
        None => url.clone(),
    };
    let rel_path = repo.checkout_path();
    Ok(RepoPlan {
        url: strip_credentials(&fetch_url),
        fetch_url,
        local_path,
        target: workdir.join(&rel_path),
        rel_path,
        name,
        branch: repo.branch.clone(),
        depth: repo.depth,
        scope: env.scope.clone(),
    })
}

/// The clone URL as the spec gives it: `url:`, a full URL in `slug:`, or the provider's git root
/// plus the slug.
fn source_url(env: &LoadedEnv, repo: &Repo) -> Result<String> {
    let clean = |s: &str| s.trim().trim_start_matches("git clone ").trim().to_string();
    if let Some(url) = &repo.url {
        return Ok(clean(url));
    }
    let slug = repo.slug.as_deref().map(clean).unwrap_or_default();
    if slug.contains("://") || slug.contains('@') {
        return Ok(slug);
    }
    let missing = || {
        Error::input(format!(
            "{}: repository {} needs `url:`, or `provider:` with `slug:`",
            env.path.display(),
            repo.name()
        ))
    };
    let provider_name = repo.provider.as_deref().ok_or_else(missing)?;
    let provider = env.spec.providers.get(provider_name).ok_or_else(|| {
        Error::input(format!(
            "{}: repository {} refers to provider `{provider_name}`, which `providers:` does not define",
            env.path.display(),
            repo.name()
        ))
    })?;
    if slug.is_empty() {
        return Err(missing());
    }
    let root = match provider.kind {
        ProviderKind::Cloud => {
            let root = provider
                .git_url
                .as_deref()
                .unwrap_or("https://bitbucket.org");
            let ws = provider.workspace.as_deref().unwrap_or_default();
            format!("{}/{ws}", root.trim_end_matches('/'))
        }
        ProviderKind::Datacenter => {
            let base = provider.base_url.as_deref().unwrap_or_default();
            let root = provider
                .git_url
                .clone()
                .unwrap_or_else(|| format!("{}/scm", base.trim_end_matches('/')));
            let project = provider
                .project
                .as_deref()
                .unwrap_or_default()
                .to_lowercase();
            format!("{}/{project}", root.trim_end_matches('/'))
        }
    };
    Ok(format!("{root}/{slug}.git"))
}

/// A local repository path for a plain path or a `file://` URL; `None` for network URLs
/// (`scheme://…` or scp-like `user@host:path`).
pub(crate) fn local_path(url: &str, spec_dir: &Path) -> Option<PathBuf> {
    if let Some(rest) = url.strip_prefix("file://") {
        return Some(PathBuf::from(rest));
    }
    if url.contains("://") {
        return None;
    }
    if let Some((before, _)) = url.split_once(':')
        && !before.contains('/')
        && before.len() > 1
    {
        return None;
    }
    let p = spec_dir.join(url);
    Some(lexical_clean(&std::path::absolute(&p).unwrap_or(p)))
}

/// Resolve `.` and `..` without touching the disk, so URLs in output read naturally.
fn lexical_clean(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The URL without `user:password@`, for output and state.
pub fn strip_credentials(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if let Some((_, host)) = authority.rsplit_once('@') {
            return format!("{scheme}://{host}{path}");
        }
    }
    url.to_string()
}

/// Whether a step runs, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepDecision {
    Run(String),
    Skip(String),
    /// Skipped because its `creates:` path exists: recorded as satisfied.
    Satisfied(String),
    /// Its last run finished after the provision that started it was killed: recorded as
    /// done, not run again.
    Finished(String),
}

/// Decide a step from its guard, `always`, an interrupted last run, and its fingerprint
/// against the last success.
pub fn decide_step(step: &Step, fingerprint: &str, state: &State, workdir: &Path) -> StepDecision {
    let started = state.started.get(&step.name);
    if let Some(started) = started
        && started.fingerprint == fingerprint
        && super::steps::finished_ok(workdir, &step.name)
    {
        return StepDecision::Finished(format!(
            "its run started at {} finished after the provision running it was killed; recorded now, not run again",
            started.time
        ));
    }
    if let Some(creates) = &step.creates
        && workdir.join(creates).exists()
    {
        return StepDecision::Satisfied(format!("{creates} exists"));
    }
    if step.always {
        return StepDecision::Run("always: true".into());
    }
    if let Some(started) = started {
        return StepDecision::Run(format!(
            "its run started at {} was interrupted: the provision running it was killed",
            started.time
        ));
    }
    match state.steps.get(&step.name) {
        // A failed run records nothing but leaves its log: say so rather than "first run".
        None if super::steps::log_path(workdir, &step.name).exists() => {
            StepDecision::Run("no successful run recorded".into())
        }
        None => StepDecision::Run("first run".into()),
        Some(last) if last.fingerprint == fingerprint => {
            StepDecision::Skip("unchanged since its last successful run".into())
        }
        Some(_) => {
            StepDecision::Run("its command, dir, env, secrets or repository HEAD changed".into())
        }
    }
}

/// The repositories a step runs inside: those whose checkout contains its dir; every
/// repository when it runs at the workdir root (or outside all checkouts).
pub fn step_repos<'a>(step: &Step, repos: &'a [RepoPlan]) -> Vec<&'a RepoPlan> {
    let dir = normalize(step.dir.as_deref().unwrap_or(""));
    let inside: Vec<&RepoPlan> = repos
        .iter()
        .filter(|r| {
            let p = normalize(&r.rel_path);
            !dir.is_empty() && (dir == p || dir.starts_with(&format!("{p}/")))
        })
        .collect();
    if inside.is_empty() {
        repos.iter().collect()
    } else {
        inside
    }
}

/// `./a//b/` → `a/b`, so paths compare as the user means them.
pub fn normalize(p: &str) -> String {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_stripped_from_urls() {
        assert_eq!(
            strip_credentials("https://u:p@host.example/a/b.git"),
            "https://host.example/a/b.git"
        );
        assert_eq!(
            strip_credentials("http://127.0.0.1:8/x"),
            "http://127.0.0.1:8/x"
        );
    }

    #[test]
    fn a_step_that_never_ran_runs_for_its_first_run() {
        let step: Step = serde_yaml::from_str("name: build\nrun: 'true'\n").unwrap();
        let wd = tempfile::tempdir().unwrap();
        let decide = || decide_step(&step, "fp", &State::default(), wd.path());
        assert_eq!(decide(), StepDecision::Run("first run".into()));
        // A run that failed left its log and no record.
        let log = super::super::steps::log_path(wd.path(), "build");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(&log, "boom\n").unwrap();
        assert_eq!(
            decide(),
            StepDecision::Run("no successful run recorded".into())
        );
    }

    #[test]
    fn local_paths_are_told_from_urls() {
        let d = Path::new("/specs");
        assert_eq!(local_path("../x", d), Some(PathBuf::from("/x")));
        assert_eq!(local_path("file:///r", d), Some(PathBuf::from("/r")));
        assert_eq!(local_path("http://h/r", d), None);
        assert_eq!(local_path("git@host:r.git", d), None);
    }
}
