//! Bitbucket Data Center REST 1.0 (and the legacy build-status API): the paths each call asks
//! for and how each answer reads into the typed model. With `cloud.rs`, the only place that
//! knows the JSON field names.
//!
//! Quirks handled here: lists page by `start`/`limit` with `isLastPage`/`nextPageStart`
//! (`null` or absent on the last page); there is no single-branch endpoint, so a branch is
//! found with `filterText` and an exact match; `commits/{id}` takes commit ids only; the
//! commit list takes one `since`, so reachability costs one request per branch; a directory
//! listing is a page inside `children`, a file's browse page has `lines` instead; change
//! lists carry no line counts and branch lists no commit details; commit author names are
//! the Bitbucket user's when the author is mapped to one. Permission failures answer 401 with
//! an `AuthorisationException` (read as forbidden by the transport).

use serde_json::Value;

use super::client::{Transport, seg, segs, with_query};
use super::json::{boolean, clone_urls, items, millis, required, set, text, uint};
use super::{
    ApiError, ApiErrorKind, At, Branch, BuildStatus, ChangeStatus, ChangedFile, Commit,
    CommitQuery, DirEntry, EntryKind, FileContent, FileRead, FromDataCenter, Listing, Page,
    PrQuery, PrRef, PrState, PullRequest, RawText, RepoId, Repository, Rev, Reviewer, RunStatus,
    Signature, User,
};

pub(crate) fn repo_path(r: &RepoId) -> String {
    format!("/api/1.0/projects/{}/repos/{}", seg(&r.owner), seg(&r.slug))
}

/// A revision as `until`/`since` take it: a branch fully qualified, so that a tag of the same
/// name cannot be meant.
fn rev_param(rev: &Rev) -> String {
    match rev {
        Rev::Branch(name) => format!("refs/heads/{name}"),
        Rev::Commit(id) => id.clone(),
    }
}

type R<T> = Result<T, ApiError>;

/// One page of `endpoint` with `params`: the first or the one `at.cursor` names.
async fn list<T: FromDataCenter>(
    t: &Transport,
    endpoint: &str,
    params: &[(&str, String)],
    at: At<'_>,
) -> R<Page<T>> {
    Page::from_datacenter(&t.get_json(&page_path(endpoint, params, at)?).await?)
}

fn page_path(endpoint: &str, params: &[(&str, String)], at: At<'_>) -> R<String> {
    let (start, limit) = match at.cursor {
        Some(c) => c.datacenter_position()?,
        None => (0, at.limit),
    };
    let mut p = params.to_vec();
    p.push(("start", start.to_string()));
    p.push(("limit", limit.to_string()));
    Ok(with_query(endpoint, &p))
}

/// With `filter`: the project's listing has no filter, the cross-project search has one, by
/// name (case-insensitive), narrowed to the project by its key.
pub(crate) async fn repositories(
    t: &Transport,
    key: &str,
    filter: Option<&str>,
    at: At<'_>,
) -> R<Page<Repository>> {
    match filter {
        None => list(t, &format!("/api/1.0/projects/{}/repos", seg(key)), &[], at).await,
        Some(name) => {
            let params = [("projectkey", key.to_string()), ("name", name.to_string())];
            let mut page: Page<Repository> = list(t, "/api/1.0/repos", &params, at).await?;
            // `projectkey` "matches" the key, and servers before 8.0 ignore it: keep this
            // project's repositories only, whatever the server let through.
            page.values.retain(|r| in_project(r, key));
            Ok(page)
        }
    }
}

/// Whether `r` (full name `KEY/slug`) belongs to project `key` (keys are case-insensitive).
fn in_project(r: &Repository, key: &str) -> bool {
    r.full_name
        .split_once('/')
        .is_some_and(|(k, _)| k.eq_ignore_ascii_case(key))
}

pub(crate) async fn repository(t: &Transport, r: &RepoId) -> R<Repository> {
    Repository::from_datacenter(&t.get_json(&repo_path(r)).await?)
}

pub(crate) async fn project(t: &Transport, key: &str) -> R<()> {
    t.get_json(&format!("/api/1.0/projects/{}", seg(key)))
        .await
        .map(|_| ())
}

pub(crate) async fn branches(
    t: &Transport,
    r: &RepoId,
    filter: Option<&str>,
    at: At<'_>,
) -> R<Page<Branch>> {
    let params: Vec<_> = filter
        .map(|f| ("filterText", f.to_string()))
        .into_iter()
        .collect();
    list(t, &format!("{}/branches", repo_path(r)), &params, at).await
}

/// Pages of `filterText` matches searched for the exact name.
const BRANCH_SEARCH_PAGES: usize = 10;

pub(crate) async fn branch(t: &Transport, r: &RepoId, name: &str) -> R<Option<Branch>> {
    // No single-branch endpoint: `filterText` matches names containing the text, so look for
    // the exact one among them.
    let mut cursor = None;
    for _ in 0..BRANCH_SEARCH_PAGES {
        let page = branches(t, r, Some(name), At::new(100, cursor.as_ref())).await?;
        if let Some(b) = page.values.into_iter().find(|b| b.name == name) {
            return Ok(Some(b));
        }
        match page.next {
            Some(n) => cursor = Some(n),
            None => return Ok(None),
        }
    }
    Ok(None)
}

pub(crate) async fn default_branch(t: &Transport, r: &RepoId) -> R<Option<String>> {
    match t
        .get_json(&format!("{}/default-branch", repo_path(r)))
        .await
    {
        Ok(v) => Ok(set(&v, "/displayId")),
        // An empty repository has none and answers 404, as a missing one does: ask which.
        Err(e) if e.kind == ApiErrorKind::NotFound => {
            repository(t, r).await?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

pub(crate) async fn commits(
    t: &Transport,
    r: &RepoId,
    q: &CommitQuery,
    at: At<'_>,
) -> R<Page<Commit>> {
    let mut params = vec![("until", rev_param(&q.from))];
    match q.exclude.as_slice() {
        [] => {}
        [one] => params.push(("since", rev_param(one))),
        _ => {
            return Err(ApiError::new(
                ApiErrorKind::Invalid,
                "Data Center's commit list excludes one revision (`since`), not several",
            ));
        }
    }
    if let Some(p) = &q.path {
        params.push(("path", p.clone()));
    }
    list(t, &format!("{}/commits", repo_path(r)), &params, at).await
}

pub(crate) async fn commit(t: &Transport, r: &RepoId, id: &str) -> R<Commit> {
    let path = format!("{}/commits/{}", repo_path(r), seg(id));
    Commit::from_datacenter(&t.get_json(&path).await?)
}

/// Whether `commit` is an ancestor of (or equal to) one of `branches`: one request per branch
/// (`commits?until=commit&since=head` is empty exactly when the head reaches it), stopping at
/// the first that does.
pub(crate) async fn reachable(
    t: &Transport,
    r: &RepoId,
    commit: &str,
    branches: &[Branch],
) -> R<bool> {
    for b in branches {
        let q = CommitQuery {
            from: Rev::Commit(commit.to_string()),
            exclude: vec![Rev::Commit(b.head.clone())],
            path: None,
        };
        if commits(t, r, &q, At::first(1)).await?.values.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

pub(crate) async fn commit_changes(
    t: &Transport,
    r: &RepoId,
    id: &str,
    at: At<'_>,
) -> R<Page<ChangedFile>> {
    list(
        t,
        &format!("{}/commits/{}/changes", repo_path(r), seg(id)),
        &[],
        at,
    )
    .await
}

pub(crate) async fn commit_diff(
    t: &Transport,
    r: &RepoId,
    id: &str,
    max_bytes: usize,
) -> R<RawText> {
    // No per-commit patch endpoint: the raw diff with only `until` diffs the commit against
    // its first parent.
    let path = with_query(
        &format!("{}/diff", repo_path(r)),
        &[("until", id.to_string())],
    );
    raw_text(t, &path, max_bytes).await
}

async fn raw_text(t: &Transport, path: &str, max_bytes: usize) -> R<RawText> {
    let resp = t.get(path, "text/plain", max_bytes).await?;
    Ok(RawText {
        bytes: resp.body,
        truncated: resp.truncated,
    })
}

pub(crate) async fn directory(
    t: &Transport,
    r: &RepoId,
    commit: &str,
    path: &str,
    at: At<'_>,
) -> R<Listing> {
    let endpoint = format!("{}/browse/{}", repo_path(r), segs(path));
    let request = page_path(&endpoint, &[("at", commit.to_string())], at)?;
    let v = t.get_json(&request).await?;
    // A file's browse answer is a page of its `lines`.
    if v.get("lines").is_some() {
        return Ok(Listing::NotADirectory);
    }
    let children = v
        .get("children")
        .ok_or_else(|| super::page::bad_shape("has neither `children` nor `lines`"))?;
    let page: Page<DirEntry> = Page::from_datacenter(children)?;
    // Children are named relative to the directory listed.
    Ok(Listing::Entries(page.map(|mut e| {
        if !path.is_empty() {
            e.path = format!("{path}/{}", e.path);
        }
        e
    })))
}

pub(crate) async fn file(
    t: &Transport,
    r: &RepoId,
    commit: &str,
    path: &str,
    max_bytes: usize,
) -> R<FileRead> {
    let url = with_query(
        &format!("{}/raw/{}", repo_path(r), segs(path)),
        &[("at", commit.to_string())],
    );
    match t.get(&url, "*/*", max_bytes).await {
        Ok(resp) => Ok(FileRead::Content(FileContent {
            bytes: resp.body,
            content_type: resp.content_type,
            truncated: resp.truncated,
        })),
        // `raw` answers 404 for a directory too: ask what the path is (one more request, on
        // this path only).
        Err(e) if e.kind == ApiErrorKind::NotFound => {
            let probe = with_query(
                &format!("{}/browse/{}", repo_path(r), segs(path)),
                &[("at", commit.to_string()), ("type", "true".to_string())],
            );
            match t.get_json(&probe).await {
                Ok(v) if text(&v, "/type").as_deref() == Some("DIRECTORY") => {
                    Ok(FileRead::NotAFile)
                }
                _ => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

pub(crate) async fn pull_requests(
    t: &Transport,
    r: &RepoId,
    q: &PrQuery,
    at: At<'_>,
) -> R<Page<PullRequest>> {
    let state = match &q.state {
        None => "ALL",
        Some(PrState::Superseded) => {
            return Err(ApiError::new(
                ApiErrorKind::Invalid,
                "state SUPERSEDED exists on Bitbucket Cloud only; Data Center has OPEN, MERGED, DECLINED and ALL",
            ));
        }
        Some(s) => s.as_str(),
    };
    let params = [("state", state.to_string())];
    list(t, &format!("{}/pull-requests", repo_path(r)), &params, at).await
}

pub(crate) async fn pull_request(t: &Transport, r: &RepoId, id: u64) -> R<PullRequest> {
    let path = format!("{}/pull-requests/{id}", repo_path(r));
    PullRequest::from_datacenter(&t.get_json(&path).await?)
}

pub(crate) async fn pull_request_changes(
    t: &Transport,
    r: &RepoId,
    id: u64,
    at: At<'_>,
) -> R<Page<ChangedFile>> {
    list(
        t,
        &format!("{}/pull-requests/{id}/changes", repo_path(r)),
        &[],
        at,
    )
    .await
}

pub(crate) async fn pull_request_diff(
    t: &Transport,
    r: &RepoId,
    id: u64,
    max_bytes: usize,
) -> R<RawText> {
    raw_text(
        t,
        &format!("{}/pull-requests/{id}.diff", repo_path(r)),
        max_bytes,
    )
    .await
}

pub(crate) async fn build_statuses(
    t: &Transport,
    commit: &str,
    at: At<'_>,
) -> R<Page<BuildStatus>> {
    // The legacy API (every version, not per repository) rather than `commits/{id}/builds`,
    // whose GET answers one key at a time.
    list(
        t,
        &format!("/build-status/1.0/commits/{}", seg(commit)),
        &[],
        at,
    )
    .await
}

// ---- Decoding ----------------------------------------------------------------------------

impl FromDataCenter for User {
    fn from_datacenter(v: &Value) -> R<User> {
        Ok(User {
            display_name: set(v, "/displayName"),
            username: set(v, "/name"),
            handle: set(v, "/slug"),
            id: uint(v, "/id").map(|n| n.to_string()),
            email: set(v, "/emailAddress"),
        })
    }
}

impl FromDataCenter for Repository {
    fn from_datacenter(v: &Value) -> R<Repository> {
        let slug = required(v, "/slug", "a repository")?;
        let project = required(v, "/project/key", "a repository")?;
        Ok(Repository {
            full_name: format!("{project}/{slug}"),
            name: set(v, "/name").unwrap_or_else(|| slug.clone()),
            slug,
            description: set(v, "/description"),
            language: None,
            is_private: boolean(v, "/public").map(|p| !p).unwrap_or(true),
            default_branch: None,
            web_url: set(v, "/links/self/0/href"),
            clone_urls: clone_urls(v),
        })
    }
}

impl FromDataCenter for Branch {
    fn from_datacenter(v: &Value) -> R<Branch> {
        let name = set(v, "/displayId")
            .or_else(|| {
                text(v, "/id").and_then(|id| id.strip_prefix("refs/heads/").map(str::to_string))
            })
            .ok_or_else(|| super::page::bad_shape("has a branch without `/displayId`"))?;
        let head = set(v, "/latestCommit")
            .or_else(|| set(v, "/latestChangeset"))
            .ok_or_else(|| super::page::bad_shape("has a branch without `/latestCommit`"))?;
        Ok(Branch {
            name,
            head,
            date: None,
            message: None,
            // Recorded answers say `isDefault`; the OpenAPI document says `default`.
            is_default: boolean(v, "/isDefault").or_else(|| boolean(v, "/default")),
        })
    }
}

/// A commit's author or committer. When Bitbucket maps the person to one of its users, `name`
/// is that user's login and `displayName` the name they go by, which is the nearer to git's.
fn signature(v: &Value, who: &str, when: &str) -> Signature {
    Signature {
        name: set(v, &format!("/{who}/displayName"))
            .or_else(|| text(v, &format!("/{who}/name")))
            .unwrap_or_default(),
        email: set(v, &format!("/{who}/emailAddress")),
        date: millis(v, &format!("/{when}")),
    }
}

impl FromDataCenter for Commit {
    fn from_datacenter(v: &Value) -> R<Commit> {
        Ok(Commit {
            hash: required(v, "/id", "a commit")?,
            parents: items(v, "/parents")
                .iter()
                .filter_map(|p| text(p, "/id"))
                .collect(),
            author: signature(v, "author", "authorTimestamp"),
            committer: v
                .get("committer")
                .is_some()
                .then(|| signature(v, "committer", "committerTimestamp")),
            message: text(v, "/message").unwrap_or_default(),
        })
    }
}

impl FromDataCenter for ChangedFile {
    fn from_datacenter(v: &Value) -> R<ChangedFile> {
        let status = match text(v, "/type").as_deref() {
            Some("ADD") => ChangeStatus::Added,
            Some("DELETE") => ChangeStatus::Removed,
            Some("MODIFY") => ChangeStatus::Modified,
            Some("MOVE") => ChangeStatus::Renamed,
            Some("COPY") => ChangeStatus::Copied,
            Some(other) => ChangeStatus::Other(other.to_string()),
            None => ChangeStatus::Other(String::new()),
        };
        Ok(ChangedFile {
            path: required(v, "/path/toString", "a change")?,
            old_path: set(v, "/srcPath/toString"),
            status,
            lines_added: None,
            lines_removed: None,
            binary: None,
        })
    }
}

impl FromDataCenter for DirEntry {
    /// An entry with its path relative to the directory listed (the call prefixes it).
    fn from_datacenter(v: &Value) -> R<DirEntry> {
        let path = required(v, "/path/toString", "a directory entry")?;
        let kind = match text(v, "/type").as_deref() {
            Some("DIRECTORY") => EntryKind::Dir,
            Some("SUBMODULE") => EntryKind::Submodule,
            _ => EntryKind::File,
        };
        Ok(DirEntry {
            name: path.rsplit('/').next().unwrap_or(&path).to_string(),
            size: uint(v, "/size").filter(|_| kind == EntryKind::File),
            executable: None,
            kind,
            path,
        })
    }
}

fn pr_ref(v: &Value, side: &str) -> R<PrRef> {
    let project = set(v, &format!("/{side}/repository/project/key"));
    let slug = set(v, &format!("/{side}/repository/slug"));
    Ok(PrRef {
        branch: required(v, &format!("/{side}/displayId"), "a pull request")?,
        commit: set(v, &format!("/{side}/latestCommit")),
        repository: project.zip(slug).map(|(p, s)| format!("{p}/{s}")),
    })
}

impl FromDataCenter for PullRequest {
    fn from_datacenter(v: &Value) -> R<PullRequest> {
        let id = uint(v, "/id")
            .ok_or_else(|| super::page::bad_shape("has a pull request without `/id`"))?;
        let reviewers = v.get("reviewers").and_then(Value::as_array).map(|list| {
            list.iter()
                .map(|r| Reviewer {
                    user: r
                        .get("user")
                        .map(|u| User::from_datacenter(u).unwrap_or_default())
                        .unwrap_or_default(),
                    approved: boolean(r, "/approved"),
                })
                .collect()
        });
        Ok(PullRequest {
            id,
            title: text(v, "/title").unwrap_or_default(),
            description: text(v, "/description"),
            state: PrState::parse(&text(v, "/state").unwrap_or_default()),
            draft: boolean(v, "/draft").unwrap_or(false),
            author: v
                .pointer("/author/user")
                .map(|u| User::from_datacenter(u).unwrap_or_default()),
            source: pr_ref(v, "fromRef")?,
            destination: pr_ref(v, "toRef")?,
            reviewers,
            // Recorded only once there are comments.
            comment_count: v
                .get("properties")
                .filter(|p| p.is_object())
                .map(|p| uint(p, "/commentCount").unwrap_or(0)),
            created: millis(v, "/createdDate"),
            updated: millis(v, "/updatedDate"),
            web_url: set(v, "/links/self/0/href"),
        })
    }
}

fn build_status(state: &str) -> RunStatus {
    match state {
        "SUCCESSFUL" => RunStatus::Successful,
        "FAILED" => RunStatus::Failed,
        "INPROGRESS" => RunStatus::InProgress,
        "CANCELLED" => RunStatus::Stopped,
        _ => RunStatus::Unknown,
    }
}

impl FromDataCenter for BuildStatus {
    fn from_datacenter(v: &Value) -> R<BuildStatus> {
        let state = text(v, "/state").unwrap_or_default();
        Ok(BuildStatus {
            key: required(v, "/key", "a build status")?,
            name: set(v, "/name"),
            status: build_status(&state),
            state,
            url: set(v, "/url"),
            description: set(v, "/description"),
            created: millis(v, "/dateAdded").or_else(|| millis(v, "/createdDate")),
            build_number: set(v, "/buildNumber"),
            duration_ms: uint(v, "/duration"),
            git_ref: set(v, "/ref"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mapped_authors_show_the_name_they_go_by() {
        let c = Commit::from_datacenter(&json!({
            "id": "abc", "message": "m",
            "author": {"name": "jcitizen", "displayName": "Jane Citizen", "emailAddress": "j@x"},
            "authorTimestamp": 1_530_720_102_000i64,
            "committer": {"name": "Git Name", "emailAddress": "g@x"},
            "committerTimestamp": 0,
            "parents": [{"id": "p1"}]
        }))
        .unwrap();
        assert_eq!(c.author.name, "Jane Citizen");
        assert_eq!(c.author.date.unwrap().timestamp(), 1_530_720_102);
        let committer = c.committer.unwrap();
        assert_eq!(
            (committer.name.as_str(), committer.email.as_deref()),
            ("Git Name", Some("g@x"))
        );
        assert_eq!(c.parents, ["p1"]);
    }

    #[test]
    fn comment_counts_are_zero_only_when_the_properties_say_nothing() {
        let base = json!({"id": 1, "fromRef": {"displayId": "a"}, "toRef": {"displayId": "b"}});
        let mut with = base.clone();
        with["properties"] = json!({"commentCount": 3});
        let mut without = base.clone();
        without["properties"] = json!({});
        let count = |v: &Value| PullRequest::from_datacenter(v).unwrap().comment_count;
        assert_eq!(count(&with), Some(3));
        assert_eq!(count(&without), Some(0));
        assert_eq!(count(&base), None);
    }

    #[test]
    fn a_filtered_listing_keeps_the_projects_repositories_only() {
        let repo = |key: &str| {
            Repository::from_datacenter(&json!({"slug": "payments-web", "project": {"key": key}}))
                .unwrap()
        };
        assert!(in_project(&repo("PAY"), "PAY"));
        assert!(in_project(&repo("pay"), "PAY"));
        assert!(!in_project(&repo("PAYROLL"), "PAY"));
        assert!(!in_project(&repo("OTHER"), "PAY"));
    }

    #[test]
    fn branch_refs_are_qualified_and_commits_are_not() {
        assert_eq!(rev_param(&Rev::Branch("main".into())), "refs/heads/main");
        assert_eq!(rev_param(&Rev::Commit("abc".into())), "abc");
    }
}
