//! Where a tool's answers come from: the repository's local checkout ([`checkout`]) or its
//! provider's REST API ([`remote`]). A tool resolves the repository a call names once, with
//! [`Context::source`], and calls the back end for what it got.
//!
//! Every scope decision is `crate::scope`'s ([`Scope::repo`], [`Scope::branch`]), made from
//! names alone before anything is looked up, so a refusal never tells whether an out-of-scope
//! thing exists. What this module adds is the ref syntax both resolvers accept, and the
//! wording of the refusals.

pub mod checkout;
pub mod remote;

use std::borrow::Cow;
use std::path::PathBuf;

use super::paths::clean_path;
use super::{Context, Error, Kind, Result};
use crate::scope::Scope;
use crate::spec::{ProviderKind, Repo};

pub use checkout::Checkout;
pub use remote::Remote;

/// Where one call's answers come from.
pub enum Source<'a> {
    /// Cloned in the workdir: git objects, any in-scope ref.
    Checkout(Checkout<'a>),
    /// In scope with a provider, not cloned: the REST API, branch refs only.
    Remote(Remote<'a>),
}

/// A repository the scope allows: one of the spec's `repos:` (provisioned up front), or any
/// other repository of a spec's provider whose name the scope admits (reached on demand).
#[derive(Clone)]
pub struct RepoRef<'a> {
    /// The spec's entry, or for a repository outside `repos:` the entry it would have
    /// (`provider` and `slug`, everything else default).
    pub spec: Cow<'a, Repo>,
    pub name: String,
    /// Where its checkout is (or would be); only a `repos:` entry is ever checked out there.
    pub dir: PathBuf,
    /// Listed in the spec's `repos:`.
    pub listed: bool,
}

impl RepoRef<'_> {
    pub fn is_cloned(&self) -> bool {
        self.listed && self.dir.join(".git").exists()
    }

    fn not_cloned(&self) -> Error {
        let what = if self.listed {
            "run `agentenv provision` first"
        } else {
            "it is not in the spec's `repos:`; list it there and run `agentenv provision` for a checkout"
        };
        Error::new(
            Kind::NotCloned,
            format!(
                "repository `{}` is not cloned in the workdir; {what}",
                self.name
            ),
        )
    }
}

impl Context {
    /// The repository called `name`, if the scope allows it: a `repos:` entry by its name or
    /// full name (`owner/slug`: Cloud `workspace/slug`, Data Center `PROJECT/slug`), else any
    /// repository of a spec's provider whose slug or full name the scope admits. `owner/slug`
    /// picks the provider; a bare slug that several providers could hold is looked up on each,
    /// and refused with the choices when more than one has it. Scope is decided first, from the
    /// name alone, so an out-of-scope name gets the same answer whether or not it exists.
    pub fn repo(&self, name: &str) -> Result<RepoRef<'_>> {
        let providers = &self.env.spec.providers;
        let spec = self.env.repo(name).or_else(|| {
            name.contains('/').then(|| {
                self.env
                    .spec
                    .repos
                    .iter()
                    .find(|r| canonical_full_name(r, providers).as_deref() == Some(name))
            })?
        });
        let Some(spec) = spec else {
            return self.unlisted(name);
        };
        let full = spec.full_name(providers);
        let slug = spec.name();
        if !self.env.scope.repo(&slug, full.as_deref()) {
            return Err(self.out_of_scope_repo(name));
        }
        let rel = clean_path(&spec.checkout_path()).map_err(|_| {
            Error::failure(format!(
                "repository `{name}` has a checkout path outside the workdir; fix `path:` in the spec"
            ))
        })?;
        Ok(RepoRef {
            spec: Cow::Borrowed(spec),
            name: slug,
            dir: self.workdir.join(rel),
            listed: true,
        })
    }

    /// A repository outside `repos:`, reached through the provider that can hold it.
    fn unlisted(&self, name: &str) -> Result<RepoRef<'_>> {
        let providers = &self.env.spec.providers;
        let (owner, slug) = match name.split_once('/') {
            Some((o, s)) => (Some(o), s),
            None => (None, name),
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        // Which providers could hold it, and of those which the scope allows.
        let mut could = 0;
        let mut candidates: Vec<Repo> = Vec::new();
        if valid(slug) && owner.is_none_or(valid) {
            for (pname, p) in providers {
                let holder = match p.kind {
                    ProviderKind::Cloud => p.workspace.as_deref(),
                    ProviderKind::Datacenter => p.project.as_deref(),
                };
                let Some(holder) = holder else { continue };
                if owner.is_some_and(|o| !o.eq_ignore_ascii_case(holder)) {
                    continue;
                }
                could += 1;
                let repo = Repo::on_provider(pname, slug);
                if self
                    .env
                    .scope
                    .repo(slug, repo.full_name(providers).as_deref())
                {
                    candidates.push(repo);
                }
            }
        }
        // Out of scope, or a name no provider of the spec can hold (a bare name when the spec
        // has no provider, an owner it does not know): decided from the name alone.
        if candidates.is_empty() {
            return Err(
                if could > 0 || !self.env.scope.repo(name, owner.map(|_| name)) {
                    self.out_of_scope_repo(name)
                } else {
                    Error::not_found(format!(
                        "no repository `{name}` in this environment; {}",
                        self.known_repos()
                    ))
                },
            );
        }
        // `acme/x` and `ACME/x` on two providers whose owners differ only in case: the
        // spelling given picks one, else no name could ever reach either.
        if let Some(o) = owner
            && candidates.len() > 1
        {
            let exact: Vec<Repo> = candidates
                .iter()
                .filter(|r| {
                    r.full_name(providers)
                        .is_some_and(|f| f.split_once('/').is_some_and(|(h, _)| h == o))
                })
                .cloned()
                .collect();
            if exact.len() == 1 {
                candidates = exact;
            }
        }
        let spec = if candidates.len() == 1 {
            candidates.remove(0)
        } else {
            self.pick_provider(name, candidates)?
        };
        Ok(self.not_listed(spec))
    }

    /// A reference to a repository the spec's `repos:` does not list.
    fn not_listed(&self, spec: Repo) -> RepoRef<'_> {
        RepoRef {
            dir: self.workdir.join(spec.checkout_path()),
            name: spec.name(),
            spec: Cow::Owned(spec),
            listed: false,
        }
    }

    /// Repository `slug` of `provider` (as its listing names it), in scope or refused.
    pub(crate) fn on_provider(&self, provider: &str, slug: &str) -> Result<RepoRef<'_>> {
        let spec = Repo::on_provider(provider, slug);
        let full = spec.full_name(&self.env.spec.providers);
        if !self.env.scope.repo(slug, full.as_deref()) {
            return Err(self.out_of_scope_repo(slug));
        }
        Ok(self.not_listed(spec))
    }

    /// A bare slug that several providers could hold, all in scope: the one provider that has
    /// it, else a refusal naming each `owner/slug` that exists. Remembered per server.
    fn pick_provider(&self, name: &str, candidates: Vec<Repo>) -> Result<Repo> {
        let key = name.to_string();
        if let Some(p) = self.api.picked(&key)
            && let Some(r) = candidates
                .iter()
                .find(|r| r.provider.as_deref() == Some(&p))
        {
            return Ok(r.clone());
        }
        let providers = &self.env.spec.providers;
        let mut found = Vec::new();
        for repo in candidates {
            let Some(pname) = repo.provider.clone() else {
                continue;
            };
            if self.repo_exists(&pname, &repo.name())? {
                found.push(repo);
            }
        }
        match found.len() {
            0 => Err(Error::not_found(format!(
                "no repository `{name}` on the providers of this environment ({}); call list_repositories to see the repositories in scope",
                self.provider_names()
            ))),
            1 => {
                let repo = found.remove(0);
                self.api
                    .pick(key, repo.provider.clone().unwrap_or_default());
                Ok(repo)
            }
            _ => {
                let choices: Vec<String> = found
                    .iter()
                    .filter_map(|r| {
                        Some(format!(
                            "`{}` (provider `{}`)",
                            canonical_full_name(r, providers)?,
                            r.provider.as_deref()?
                        ))
                    })
                    .collect();
                Err(Error::input(format!(
                    "repository `{name}` exists on more than one provider: {}; pass `repo` as one of these `owner/slug` names",
                    choices.join(", ")
                )))
            }
        }
    }

    fn out_of_scope_repo(&self, name: &str) -> Error {
        Error::out_of_scope(format!(
            "repository `{name}` is outside the environment's scope; {}",
            self.known_repos()
        ))
    }

    /// Where the answers about repository `name` come from: its checkout when it is cloned
    /// (and readable), else its provider's API; a repository without a provider that is not
    /// cloned cannot be answered (`not_cloned`).
    pub fn source(&self, name: &str) -> Result<Source<'_>> {
        let repo = self.repo(name)?;
        let not_cloned = if repo.is_cloned() {
            match self.repos.take(&repo.dir) {
                Ok(git) => return Ok(Source::Checkout(Checkout::new(self, repo, git))),
                Err(e) => checkout::unreadable(&repo.name, e),
            }
        } else {
            repo.not_cloned()
        };
        if repo.spec.provider.is_some() {
            Remote::new(self, repo).map(Source::Remote)
        } else {
            Err(not_cloned)
        }
    }

    /// Repository `name` when it is cloned, without opening it (search reads the working tree).
    pub fn cloned(&self, name: &str) -> Result<RepoRef<'_>> {
        let repo = self.repo(name)?;
        if repo.is_cloned() {
            Ok(repo)
        } else {
            Err(repo.not_cloned())
        }
    }

    fn known_repos(&self) -> String {
        let providers = &self.env.spec.providers;
        let known: Vec<String> = self
            .env
            .spec
            .repos
            .iter()
            .filter(|r| {
                self.env
                    .scope
                    .repo(&r.name(), r.full_name(providers).as_deref())
            })
            .map(|r| r.name())
            .collect();
        let more = if providers.is_empty() {
            ""
        } else {
            "; call list_repositories for every repository in scope"
        };
        if known.is_empty() {
            format!("no repository of the spec's `repos:` is in scope{more}")
        } else {
            format!(
                "repositories of the spec in scope: {}{more}",
                known.join(", ")
            )
        }
    }
}

/// A repository's `owner/slug` as Bitbucket writes it: a Data Center project key in capitals.
fn canonical_full_name(
    repo: &Repo,
    providers: &std::collections::BTreeMap<String, crate::spec::Provider>,
) -> Option<String> {
    let full = repo.full_name(providers)?;
    let datacenter = repo
        .provider
        .as_deref()
        .and_then(|p| providers.get(p))
        .is_some_and(|p| p.kind == ProviderKind::Datacenter);
    if datacenter && repo.slug.is_some() {
        let (project, slug) = full.split_once('/')?;
        Some(format!("{}/{slug}", project.to_uppercase()))
    } else {
        Some(full)
    }
}

/// A branch a call names, refused when its syntax is not a plain branch name or the scope
/// does not allow it (before any lookup, on either source).
pub(crate) fn check_branch(scope: &Scope, branch: &str) -> Result<()> {
    check_ref_syntax(branch)?;
    if scope.branch(branch) {
        Ok(())
    } else {
        Err(out_of_scope_branch(scope, branch))
    }
}

pub(crate) fn out_of_scope_branch(scope: &Scope, name: &str) -> Error {
    let rule = scope
        .branches_rule()
        .map(|r| format!(" (scope.branches is `{r}`)"))
        .unwrap_or_default();
    Error::out_of_scope(format!(
        "branch `{name}` is outside the environment's scope{rule}; call list_branches to see the branches in scope"
    ))
}

/// 7 to 40 hex digits: git's shortest default abbreviation up to a full SHA-1.
pub(crate) fn looks_like_commit_id(s: &str) -> bool {
    (7..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Refuse revision syntax and anything git itself would not accept as a branch name.
///
/// Refs are resolved by exact lookups, never `revparse` of the caller's string: revision
/// syntax (`HEAD~2`, `main@{1}`, `a..b`, `X^`, `X:path`) would reach commits and blobs that no
/// in-scope branch names. Such strings are refused before any lookup.
pub(crate) fn check_ref_syntax(reference: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::input(format!(
            "ref `{}` is not accepted: {why}. Pass a branch name from list_branches or a commit id from list_commits",
            reference.escape_debug()
        )))
    };
    if reference.is_empty() {
        return bad("it is empty");
    }
    if reference.len() > 255 {
        return bad("it is longer than 255 bytes");
    }
    if reference.starts_with('-') {
        return bad("it starts with `-`");
    }
    if reference
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return bad("it contains whitespace or control characters");
    }
    for (pat, why) in [
        ("@{", "reflog syntax (`@{…}`) is not supported"),
        ("..", "ranges (`a..b`, `a...b`) are not supported"),
        ("~", "ancestry syntax (`~N`) is not supported"),
        ("^", "parent syntax (`^`) is not supported"),
        (
            ":",
            "`rev:path` syntax is not supported; pass the path separately",
        ),
        ("\\", "backslashes are not allowed"),
    ] {
        if reference.contains(pat) {
            return bad(why);
        }
    }
    if reference == "@" || reference.contains(['?', '*', '[']) {
        return bad("revision shortcuts and glob characters are not supported");
    }
    if !git2::Reference::is_valid_name(&format!("refs/heads/{reference}")) {
        return bad("it is not a valid branch name");
    }
    Ok(())
}
