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

use std::path::PathBuf;

use super::paths::clean_path;
use super::{Context, Error, Kind, Result};
use crate::scope::Scope;
use crate::spec::Repo;

pub use checkout::Checkout;
pub use remote::Remote;

/// Where one call's answers come from.
pub enum Source<'a> {
    /// Cloned in the workdir: git objects, any in-scope ref.
    Checkout(Checkout<'a>),
    /// In scope and in the spec with a provider, not cloned: the REST API, branch refs only.
    Remote(Remote<'a>),
}

/// A repository of the spec that the scope allows, and where its checkout is (or would be).
#[derive(Clone)]
pub struct RepoRef<'a> {
    pub spec: &'a Repo,
    pub name: String,
    pub dir: PathBuf,
}

impl RepoRef<'_> {
    pub fn is_cloned(&self) -> bool {
        self.dir.join(".git").exists()
    }

    fn not_cloned(&self) -> Error {
        Error::new(
            Kind::NotCloned,
            format!(
                "repository `{}` is not cloned in the workdir; run `agentenv provision` first",
                self.name
            ),
        )
    }
}

impl Context {
    /// The spec's repository called `name` (its name, or its full name `owner/slug`: Cloud
    /// `workspace/slug`, Data Center `PROJECT/slug`), if the scope allows it. Scope is decided
    /// first, so an out-of-scope name gets the same answer whether or not the spec has it.
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
        let full = spec.and_then(|r| r.full_name(providers));
        let slug = spec.map_or_else(|| name.to_string(), Repo::name);
        let in_scope = match spec {
            Some(_) => self.env.scope.repo(&slug, full.as_deref()),
            // Not in the spec: the name as given is both forms it could be.
            None => self
                .env
                .scope
                .repo(name, name.contains('/').then_some(name)),
        };
        if !in_scope {
            return Err(Error::out_of_scope(format!(
                "repository `{name}` is outside the environment's scope; {}",
                self.known_repos()
            )));
        }
        let spec = spec.ok_or_else(|| {
            Error::not_found(format!(
                "no repository `{name}` in this environment; {}",
                self.known_repos()
            ))
        })?;
        let rel = clean_path(&spec.checkout_path()).map_err(|_| {
            Error::failure(format!(
                "repository `{name}` has a checkout path outside the workdir; fix `path:` in the spec"
            ))
        })?;
        Ok(RepoRef {
            spec,
            name: slug,
            dir: self.workdir.join(rel),
        })
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
        if known.is_empty() {
            "no repository of this environment is in scope".to_string()
        } else {
            format!("repositories in scope: {}", known.join(", "))
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
        .is_some_and(|p| p.kind == crate::spec::ProviderKind::Datacenter);
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
