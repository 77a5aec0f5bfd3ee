//! `search_code` on repositories without a checkout: a shallow, single-branch clone in the
//! node's clone cache ([`crate::git::cache`]: one bare mirror per repository URL, locked, bounded
//! by size and count with the least recently used evicted first, rebuilt when broken), made on
//! first use and refreshed by fetch afterwards. Git traffic, not REST requests: it is not counted
//! against the provider's REST budget (Bitbucket counts git separately, with a far higher limit).
//!
//! The cache is `AGENTENV_CACHE_DIR` when set (shared by every server and provision of the
//! machine), else the workdir's `.agentenv/cache`. Each use asks the remote for the branch's tip
//! with the repository's provider credential, so a mirror another environment fetched is never
//! read for a credential that cannot read the repository; an out-of-scope repository or branch
//! never gets this far (the caller resolved both through the scope first).

use std::path::PathBuf;

use crate::git::cache::{CACHE_DIR_VAR, Cache, Limits};
use crate::spec::Repo;
use crate::tools::Context;

/// The clone cache's directory for this server.
pub(crate) fn dir(ctx: &Context) -> PathBuf {
    match std::env::var_os(CACHE_DIR_VAR) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => ctx.workdir.join(".agentenv").join("cache"),
    }
}

/// The credential-free URL the cache keys repository `slug` of `provider` by.
fn url_of(ctx: &Context, provider: &str, slug: &str) -> Option<String> {
    let repo = Repo {
        provider: Some(provider.to_string()),
        slug: Some(slug.to_string()),
        url: None,
        branch: None,
        depth: 1,
        path: None,
    };
    crate::provision::plan::repo(&ctx.env, &repo, &ctx.workdir)
        .ok()
        .map(|p| p.url)
}

/// Whether repository `slug` of `provider` has a clone in the cache. Nothing is created or
/// locked to find out: listing repositories must not make a cache directory.
pub(crate) fn is_cached(ctx: &Context, provider: &str, slug: &str) -> bool {
    let dir = dir(ctx);
    if !dir.join("mirrors").is_dir() {
        return false;
    }
    url_of(ctx, provider, slug)
        .is_some_and(|url| Cache::open(&dir, Limits::default()).is_ok_and(|c| c.has(&url)))
}
