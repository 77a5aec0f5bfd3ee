//! `list_repositories`: the repositories of a provider's workspace (Cloud) or project (Data
//! Center) that the scope allows, and what each is to the agent: provisioned (a checkout in
//! the workdir), cached (a clone in the clone cache, which `search_code` reads) or API only.
//!
//! Scope filtering thins upstream pages, so one answer reads on (at most `MAX_PAGES` pages)
//! until it holds `limit` in-scope repositories or the listing ends, and asks the server to
//! filter where Bitbucket can and the filter cannot drop an in-scope repository
//! (`server_filter`). Its cursor resumes inside an upstream page when the answer filled up
//! there.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::paging::{self, page_limit};
use super::paths;
use super::source::remote::{api_error, block_on};
use super::{Context, Error, Result, Tool, search_code, text};
use crate::bitbucket::{self, Cursor, Flavor};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Provider name from the spec (optional when there is one).
    #[serde(default)]
    pub provider: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// In-scope repositories per page, 1-100 (default 30).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One repository.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Repository {
    /// The slug: pass it (or `full_name`) as `repo` to the other tools.
    pub name: String,
    /// `workspace/slug` (Cloud) or `PROJECT/slug` (Data Center).
    pub full_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Main language as Bitbucket records it (Cloud only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `private` or `public`.
    pub visibility: String,
    /// The default branch (Cloud; Data Center's listing does not include it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
    /// The repository's web page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The spec's `repos:` lists it (every in-scope repository is reachable, listed or not).
    pub in_environment: bool,
    /// It is cloned in the workdir: checkout tools answer from the local copy.
    pub cloned: bool,
    /// `provisioned` (a checkout in the workdir: local answers), `cached` (a clone in the
    /// clone cache: `search_code` reads it, the other tools ask the API) or `api_only`.
    pub status: Status,
}

/// What a repository is to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Provisioned,
    Cached,
    ApiOnly,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Provisioned => "provisioned",
            Status::Cached => "cached",
            Status::ApiOnly => "api_only",
        }
    }
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub provider: String,
    pub repositories: Vec<Repository>,
    /// Repositories the server sent for this answer that the scope does not allow.
    pub out_of_scope: usize,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Why the page holds fewer than `limit` although more may follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One row per repository: full name, visibility, language, default branch, status (and
/// `in repos:` when the spec lists it), URL; the description on its own line.
fn render(o: &Output) -> String {
    let mut t = format!(
        "provider {}: {}",
        o.provider,
        text::count(o.repositories.len() as u64, "repository", "repositories")
    );
    if o.out_of_scope > 0 {
        let _ = write!(t, " ({} out of scope left out)", o.out_of_scope);
    }
    t.push('\n');
    let rows: Vec<Vec<String>> = o
        .repositories
        .iter()
        .map(|r| {
            let mut env = r.status.as_str().to_string();
            if r.in_environment && !r.cloned {
                env.push_str(", in repos:");
            }
            vec![
                r.full_name.clone(),
                r.visibility.clone(),
                r.language.clone().unwrap_or_default(),
                r.default_branch.clone().unwrap_or_default(),
                env,
                r.url.clone().unwrap_or_default(),
            ]
        })
        .collect();
    for (line, r) in text::aligned(&rows).into_iter().zip(&o.repositories) {
        t.push_str(&line);
        t.push('\n');
        if let Some(d) = r.description.as_deref().filter(|d| !d.is_empty()) {
            let _ = writeln!(t, "  {d}");
        }
    }
    text::footer(&mut t, o.next_cursor.as_deref(), o.note.as_deref());
    t
}

pub struct ListRepositories;

impl Tool for ListRepositories {
    const NAME: &'static str = "list_repositories";
    const DESCRIPTION: &'static str = "Repositories of a provider's workspace or project that the scope allows, every one usable as `repo` by the other tools: language, visibility, default branch, URL, and `status`: `provisioned` (cloned in the workdir), `cached` (in the clone cache, searched locally) or `api_only`.";
    const API_ONLY: bool = true;
    type Args = Args;
    type Output = Output;

    fn render(out: &Output) -> String {
        render(out)
    }

    fn run(ctx: &Context, args: Args) -> Result<Output> {
        let limit = page_limit(args.limit)?;
        let provider = match args.provider {
            Some(p) => p,
            None => {
                let names: Vec<&String> = ctx.env.spec.providers.keys().collect();
                match names.as_slice() {
                    [one] => (*one).clone(),
                    _ => {
                        return Err(Error::input(format!(
                            "pass `provider`: this environment has {} providers ({})",
                            names.len(),
                            names
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
            }
        };
        // Bound to the provider, so a cursor from one provider is refused for another.
        let after = paging::decode_bound(KIND, &provider, args.cursor.as_deref())?;
        // `skip\nupstream`: entries of the upstream page at `upstream` (empty: the first
        // page) already shown.
        let (mut upstream, mut skip) = match after.as_deref() {
            None => (None, 0),
            Some(c) => {
                let (skip, link) = c.split_once('\n').ok_or_else(bad_cursor)?;
                let skip = skip.parse::<usize>().map_err(|_| bad_cursor())?;
                (Some(link).filter(|l| !l.is_empty()).map(Cursor::from), skip)
            }
        };
        let client = ctx.api_client(&provider)?;
        let filter = server_filter(&client.flavor, ctx.env.scope.repositories_rule());
        // Scope thins pages (a server filter only narrows the listing to a superset): read
        // them whole, as many repositories per request as Cloud serves.
        let page_size = if ctx.env.scope.repositories_rule().is_some() {
            MAX_PAGE
        } else {
            limit
        };
        let what = format!("the workspace/project of provider `{provider}`");
        let mut out_of_scope = 0;
        let mut repositories = Vec::new();
        let mut next = None;
        let mut pages = 0;
        'pages: loop {
            let page =
                block_on(client.repositories(filter.as_deref(), page_size, upstream.as_ref()))
                    .map_err(|e| api_error(e, &what))?;
            pages += 1;
            for (i, r) in page.values.into_iter().enumerate().skip(skip) {
                if repositories.len() == limit {
                    let at = upstream.as_ref().map(Cursor::as_str).unwrap_or("");
                    next = Some(format!("{i}\n{at}"));
                    break 'pages;
                }
                let mut repo = Repository::of(r);
                if !ctx.env.scope.repo(&repo.name, Some(&repo.full_name)) {
                    out_of_scope += 1;
                    continue;
                }
                repo.describe(ctx, &provider);
                repositories.push(repo);
            }
            skip = 0;
            match page.next {
                None => break,
                Some(n) if repositories.len() == limit || pages == MAX_PAGES => {
                    next = Some(format!("0\n{n}"));
                    break;
                }
                Some(n) => upstream = Some(n),
            }
        }
        let note = (next.is_some() && repositories.len() < limit).then(|| {
            format!(
                "{pages} pages of the listing read without filling this one (most repositories are outside the scope); pass `next_cursor` to read on"
            )
        });
        Ok(Output {
            next_cursor: paging::encode_bound(KIND, &provider, next),
            provider,
            repositories,
            out_of_scope,
            note,
        })
    }
}

/// Every in-scope repository of `provider` as `(slug, full name)`, reading at most
/// `MAX_WORKSPACE_PAGES` pages of 100 (server-filtered as the listing is); false when the
/// listing went on past that. For a workspace-wide search.
pub(crate) fn in_scope(ctx: &Context, provider: &str) -> Result<(Vec<(String, String)>, bool)> {
    let client = ctx.api_client(provider)?;
    let filter = server_filter(&client.flavor, ctx.env.scope.repositories_rule());
    let what = format!("the workspace/project of provider `{provider}`");
    let mut upstream: Option<Cursor> = None;
    let mut out = Vec::new();
    for _ in 0..MAX_WORKSPACE_PAGES {
        let page = block_on(client.repositories(filter.as_deref(), MAX_PAGE, upstream.as_ref()))
            .map_err(|e| api_error(e, &what))?;
        out.extend(
            page.values
                .into_iter()
                .filter(|r| ctx.env.scope.repo(&r.slug, Some(&r.full_name)))
                .map(|r| (r.slug, r.full_name)),
        );
        match page.next {
            None => return Ok((out, true)),
            Some(n) => upstream = Some(n),
        }
    }
    Ok((out, false))
}

/// Upstream pages of 100 a workspace-wide search reads at most to enumerate a provider.
const MAX_WORKSPACE_PAGES: usize = 20;

/// Upstream pages one answer reads at most.
const MAX_PAGES: usize = 5;
/// The largest upstream page Bitbucket Cloud serves.
const MAX_PAGE: usize = 100;

fn bad_cursor() -> Error {
    Error::input(
        "invalid cursor: pass the `next_cursor` of the previous page unchanged, with the same other arguments, or omit it to start over",
    )
}

/// The text the server may filter the listing by: only ever one that every in-scope
/// repository passes, so it thins the pages without changing the answer.
///
/// - Cloud (`full_name ~ "TEXT"`, case-insensitive contains): a literal every match of
///   `scope.repositories` contains. The full name holds the slug, so a literal required of
///   either is in the full name.
/// - Data Center (`/repos?projectkey=KEY&name=TEXT`): the leading letters and digits of a
///   prefix every match starts with, when the rule is anchored (`^payments-`, or
///   `^KEY/payments-`) and cannot match by the project key instead. Data Center derives the
///   slug from the name (lower case, other characters as `-`), so the name starts with them
///   too; a repository renamed since its slug was made can be missed by this filter.
fn server_filter(flavor: &Flavor, rule: Option<&str>) -> Option<String> {
    let lits = required_literals(rule?);
    match flavor {
        Flavor::Cloud { .. } => lits.inner,
        Flavor::DataCenter { project } => {
            let prefix = lits.prefix?;
            let key = format!("{project}/");
            let rest = match prefix.strip_prefix(&key) {
                Some(rest) => rest,
                // Matching `KEY/slug` by a prefix of the key admits every repository.
                None if key.starts_with(&prefix) || prefix.contains('/') => return None,
                None => &prefix,
            };
            let lead: String = rest
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            (!lead.is_empty()).then_some(lead)
        }
    }
}

/// Literals every match of a regex holds.
#[derive(Debug, Default, PartialEq)]
struct Literals {
    /// Text every match contains (the longest such text found).
    inner: Option<String>,
    /// Text every matching string starts with (the rule is anchored at the start).
    prefix: Option<String>,
}

/// Two sources, the longer wins: runs of literal text in the rule's top-level sequence
/// (`svc-[a-z]+-api` holds `-api`), and the common prefix of every match as regex-syntax's
/// extractor finds it (`^(payments-web|payments-x)$` starts with `payments-`).
/// Case-insensitive parts have no single literal, so yield none.
fn required_literals(rule: &str) -> Literals {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    use regex_syntax::hir::{HirKind, Look};
    let Ok(hir) = regex_syntax::parse(rule) else {
        return Literals::default();
    };
    let text = |bytes: &[u8]| -> Option<String> {
        let valid = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()?,
        };
        (!valid.is_empty()).then(|| valid.to_string())
    };
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let common = seq
        .literals()
        .filter(|l| !l.is_empty())
        .and_then(|_| seq.longest_common_prefix())
        .and_then(text);
    let anchored = hir.properties().look_set_prefix().contains(Look::Start);
    let mut inner = common.clone();
    let items: Vec<&regex_syntax::hir::Hir> = match hir.kind() {
        HirKind::Concat(items) => items.iter().collect(),
        _ => vec![&hir],
    };
    let mut run: Vec<u8> = Vec::new();
    for item in items.iter().map(|i| Some(*i)).chain([None]) {
        if let Some(HirKind::Literal(l)) = item.map(|i| i.kind()) {
            run.extend_from_slice(&l.0);
            continue;
        }
        if let Some(t) = text(&std::mem::take(&mut run))
            && inner.as_ref().is_none_or(|i| i.len() < t.len())
        {
            inner = Some(t);
        }
    }
    Literals {
        inner,
        prefix: if anchored { common } else { None },
    }
}

const KIND: &str = "repos.v1";

impl Repository {
    fn of(r: bitbucket::Repository) -> Repository {
        Repository {
            name: r.slug,
            full_name: r.full_name,
            description: r.description,
            language: r.language,
            visibility: if r.is_private { "private" } else { "public" }.to_string(),
            default_branch: r.default_branch,
            url: r.web_url,
            in_environment: false,
            cloned: false,
            status: Status::ApiOnly,
        }
    }

    /// Fill in what the repository is to this environment.
    fn describe(&mut self, ctx: &Context, provider: &str) {
        let spec = ctx.env.spec.repos.iter().find(|r| {
            r.provider.as_deref() == Some(provider) && r.name().eq_ignore_ascii_case(&self.name)
        });
        self.in_environment = spec.is_some();
        self.cloned = spec.is_some_and(|r| {
            paths::clean_path(&r.checkout_path())
                .is_ok_and(|p| ctx.workdir.join(p).join(".git").exists())
        });
        self.status = if self.cloned {
            Status::Provisioned
        } else if search_code::is_cached(ctx, provider, &self.name) {
            Status::Cached
        } else {
            Status::ApiOnly
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_literals_every_match_holds_become_filters() {
        let lit = required_literals;
        assert_eq!(
            lit("^payments-.*"),
            Literals {
                inner: Some("payments-".into()),
                prefix: Some("payments-".into())
            }
        );
        assert_eq!(
            lit("^(payments-web|payments-x)$").prefix.as_deref(),
            Some("payments-")
        );
        assert_eq!(lit("^acme/pay-").inner.as_deref(), Some("acme/pay-"));
        assert_eq!(lit("svc-[a-z]+-api$").inner.as_deref(), Some("svc-"));
        assert_eq!(lit("[a-z]+-api$").inner.as_deref(), Some("-api"));
        assert_eq!(lit("svc-[a-z]+-api$").prefix, None);
        for none in [
            "^(api|web)$",
            "(?i)^pay",
            "payments|billing",
            ".*",
            "[ab]",
            "((",
        ] {
            assert_eq!(lit(none).inner, None, "{none}");
        }
        let cloud = Flavor::Cloud {
            workspace: "acme".into(),
        };
        let dc = Flavor::DataCenter {
            project: "PAY".into(),
        };
        assert_eq!(
            server_filter(&cloud, Some("^payments-")).as_deref(),
            Some("payments-")
        );
        assert_eq!(server_filter(&cloud, None), None);
        assert_eq!(
            server_filter(&dc, Some("^payments-")).as_deref(),
            Some("payments")
        );
        assert_eq!(
            server_filter(&dc, Some("^PAY/pay-x")).as_deref(),
            Some("pay")
        );
        // Matching by the project key admits the whole project: no filter.
        assert_eq!(server_filter(&dc, Some("^PA")), None);
        assert_eq!(server_filter(&dc, Some("^OTHER/x")), None);
        assert_eq!(server_filter(&dc, Some("payments-")), None);
    }
}
