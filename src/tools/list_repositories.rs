//! `list_repositories`: the repositories of a provider's workspace (Cloud) or project (Data
//! Center) that the scope allows, and which of them the environment has cloned.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::paging::{self, page_limit};
use super::paths;
use super::source::remote::{api_error, block_on};
use super::{Context, Error, Result, Tool, text};
use crate::bitbucket::{self, Cursor};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Provider name from the spec (optional when there is one).
    #[serde(default)]
    pub provider: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Repositories per page, 1-100 (default 30), before out-of-scope ones are left out.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One repository.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Repository {
    /// The slug: pass it as `repo` to the other tools when `in_environment` is true.
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
    /// The spec names this repository, so the other tools accept it.
    pub in_environment: bool,
    /// It is cloned in the workdir: checkout tools answer from the local copy.
    pub cloned: bool,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub provider: String,
    pub repositories: Vec<Repository>,
    /// Repositories of this page left out because the scope does not allow them.
    pub out_of_scope: usize,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One row per repository: full name, visibility, language, default branch, whether the
/// environment has it, URL; the description on its own line.
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
            let env = match (r.in_environment, r.cloned) {
                (true, true) => "in environment, cloned",
                (true, false) => "in environment",
                (false, true) => "cloned",
                (false, false) => "",
            };
            vec![
                r.full_name.clone(),
                r.visibility.clone(),
                r.language.clone().unwrap_or_default(),
                r.default_branch.clone().unwrap_or_default(),
                env.to_string(),
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
    text::footer(&mut t, o.next_cursor.as_deref(), None);
    t
}

pub struct ListRepositories;

impl Tool for ListRepositories {
    const NAME: &'static str = "list_repositories";
    const DESCRIPTION: &'static str = "Repositories of a provider's workspace or project that the scope allows: language, visibility, default branch, URL, and whether the environment has it (names usable as `repo`) and has cloned it.";
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
        let client = ctx.api_client(&provider)?;
        let page = block_on(client.repositories(limit, after.map(Cursor::from).as_ref())).map_err(
            |e| {
                api_error(
                    e,
                    &format!("the workspace/project of provider `{provider}`"),
                )
            },
        )?;
        let mut out_of_scope = 0;
        let mut repositories = Vec::new();
        for r in page.values {
            let mut repo = Repository::of(r);
            if !ctx.env.scope.repo(&repo.name, Some(&repo.full_name)) {
                out_of_scope += 1;
                continue;
            }
            let spec = ctx.env.spec.repos.iter().find(|r| {
                r.provider.as_deref() == Some(provider.as_str())
                    && r.name().eq_ignore_ascii_case(&repo.name)
            });
            repo.in_environment = spec.is_some();
            repo.cloned = spec.is_some_and(|r| {
                paths::clean_path(&r.checkout_path())
                    .is_ok_and(|p| ctx.workdir.join(p).join(".git").exists())
            });
            repositories.push(repo);
        }
        let out = Output {
            next_cursor: paging::encode_bound(KIND, &provider, page.next.map(Cursor::into_string)),
            provider,
            repositories,
            out_of_scope,
        };
        Ok(out)
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
        }
    }
}
