//! Bitbucket Cloud REST 2.0: the paths each call asks for and how each answer reads into the
//! typed model. With `datacenter.rs`, the only place that knows the JSON field names.
//!
//! Quirks handled here: lists page by an opaque `next` link; pull request lists leave
//! reviewers out unless `fields` asks for them; a pull request's diffstat and diff answer with
//! a redirect to the repository's `/diffstat/{a}..{b}`; a completed step's log redirects to
//! object storage on another host (the transport drops the credential for that hop); a
//! repository without Pipelines answers 404 on every pipelines endpoint, told apart from a
//! missing repository by asking for the repository; a build number works where the API
//! documents a pipeline UUID, and where it does not the newest runs are searched for it.

use serde_json::Value;

use super::client::{MAX_BODY_BYTES, Transport, seg, segs, with_query};
use super::json::{boolean, clone_urls, items, required, rfc3339, set, strings, text, uint};
use super::{
    ApiError, ApiErrorKind, At, Branch, ChangeStatus, ChangedFile, Commit, CommitQuery, DirEntry,
    EntryKind, FileContent, FileRead, FromCloud, Listing, Page, Pipeline, PipelineId,
    PipelineQuery, PipelineStep, PrQuery, PrRef, PrState, PullRequest, RawText, RepoId, Repository,
    Rev, Reviewer, RunStatus, Signature, User,
};

pub(crate) fn repo_path(r: &RepoId) -> String {
    format!("/repositories/{}/{}", seg(&r.owner), seg(&r.slug))
}

/// A revision as a path segment: branch names keep their `/`.
fn rev_path(rev: &Rev) -> String {
    match rev {
        Rev::Branch(name) => segs(name),
        Rev::Commit(id) => seg(id),
    }
}

fn rev_param(rev: &Rev) -> String {
    match rev {
        Rev::Branch(name) | Rev::Commit(name) => name.clone(),
    }
}

type R<T> = Result<T, ApiError>;

/// One page of `endpoint`: the first with `params`, or the one `at.cursor` names, which must
/// still address `endpoint`.
async fn list<T: FromCloud>(
    t: &Transport,
    endpoint: &str,
    params: &[(&str, String)],
    at: At<'_>,
) -> R<Page<T>> {
    let path = match at.cursor {
        Some(c) => t.cloud_cursor_path(c, endpoint, false)?,
        None => first_page(endpoint, params, at.limit),
    };
    finish(t, Page::from_cloud(&t.get_json(&path).await?)?)
}

fn first_page(endpoint: &str, params: &[(&str, String)], limit: usize) -> String {
    let mut p = params.to_vec();
    p.push(("pagelen", limit.to_string()));
    with_query(endpoint, &p)
}

/// A page of the diffstat `endpoint` answers with a redirect to `{repo}/diffstat/{a}..{b}`:
/// its cursors lie below `{repo}/diffstat/`.
async fn diffstat(t: &Transport, r: &RepoId, endpoint: &str, at: At<'_>) -> R<Page<ChangedFile>> {
    let path = match at.cursor {
        Some(c) => t.cloud_cursor_path(c, &format!("{}/diffstat/", repo_path(r)), true)?,
        None => first_page(endpoint, &[], at.limit),
    };
    finish(t, Page::from_cloud(&t.get_json(&path).await?)?)
}

/// A decoded page with its `next` link checked and made relative to the API root.
fn finish<T>(t: &Transport, mut page: Page<T>) -> R<Page<T>> {
    page.next = page.next.map(|n| t.cloud_next(n)).transpose()?;
    Ok(page)
}

/// With `filter`: BBQL `~` on the full name, a case-insensitive "contains" on
/// `workspace/slug` (the display `name` can differ from the slug, so it is not the field).
pub(crate) async fn repositories(
    t: &Transport,
    ws: &str,
    filter: Option<&str>,
    at: At<'_>,
) -> R<Page<Repository>> {
    let params: Vec<_> = filter
        .map(|f| ("q", contains("full_name", f)))
        .into_iter()
        .collect();
    list(t, &format!("/repositories/{}", seg(ws)), &params, at).await
}

pub(crate) async fn repository(t: &Transport, r: &RepoId) -> R<Repository> {
    Repository::from_cloud(&t.get_json(&repo_path(r)).await?)
}

pub(crate) async fn workspace(t: &Transport, workspace: &str) -> R<()> {
    t.get_json(&format!("/workspaces/{}", seg(workspace)))
        .await
        .map(|_| ())
}

pub(crate) async fn current_user(t: &Transport) -> R<User> {
    User::from_cloud(&t.get_json("/user").await?)
}

pub(crate) async fn branches(
    t: &Transport,
    r: &RepoId,
    filter: Option<&str>,
    at: At<'_>,
) -> R<Page<Branch>> {
    // BBQL `~` is a case-insensitive "contains", like Data Center's `filterText`.
    let params: Vec<_> = filter
        .map(|f| ("q", contains("name", f)))
        .into_iter()
        .collect();
    list(t, &format!("{}/refs/branches", repo_path(r)), &params, at).await
}

/// The BBQL filter `field ~ "text"`, quoted.
fn contains(field: &str, text: &str) -> String {
    let quoted = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{field} ~ \"{quoted}\"")
}

pub(crate) async fn branch(t: &Transport, r: &RepoId, name: &str) -> R<Option<Branch>> {
    let path = format!("{}/refs/branches/{}", repo_path(r), segs(name));
    match t.get_json(&path).await {
        Ok(v) => Branch::from_cloud(&v).map(Some),
        Err(e) if e.kind == ApiErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) async fn default_branch(t: &Transport, r: &RepoId) -> R<Option<String>> {
    Ok(repository(t, r).await?.default_branch)
}

pub(crate) async fn commits(
    t: &Transport,
    r: &RepoId,
    q: &CommitQuery,
    at: At<'_>,
) -> R<Page<Commit>> {
    let base = repo_path(r);
    let mut params = Vec::new();
    // `commits/{rev}` lists what `rev` reaches; with exclusions, `include`/`exclude` are
    // `git log rev ^a ^b` in one request.
    let endpoint = if q.exclude.is_empty() {
        format!("{base}/commits/{}", rev_path(&q.from))
    } else {
        params.push(("include", rev_param(&q.from)));
        for x in &q.exclude {
            params.push(("exclude", rev_param(x)));
        }
        format!("{base}/commits")
    };
    if let Some(p) = &q.path {
        params.push(("path", p.clone()));
    }
    list(t, &endpoint, &params, at).await
}

pub(crate) async fn commit(t: &Transport, r: &RepoId, id: &str) -> R<Commit> {
    let path = format!("{}/commit/{}", repo_path(r), seg(id));
    Commit::from_cloud(&t.get_json(&path).await?)
}

/// Whether `commit` is an ancestor of (or equal to) one of `branches`: one request, as
/// `git log commit ^b1 ^b2 …` is empty exactly then.
pub(crate) async fn reachable(
    t: &Transport,
    r: &RepoId,
    commit: &str,
    branches: &[Branch],
) -> R<bool> {
    if branches.is_empty() {
        return Ok(false);
    }
    let q = CommitQuery {
        from: Rev::Commit(commit.to_string()),
        exclude: branches
            .iter()
            .map(|b| Rev::Branch(b.name.clone()))
            .collect(),
        path: None,
    };
    Ok(commits(t, r, &q, At::first(1)).await?.values.is_empty())
}

pub(crate) async fn commit_changes(
    t: &Transport,
    r: &RepoId,
    id: &str,
    at: At<'_>,
) -> R<Page<ChangedFile>> {
    diffstat(t, r, &format!("{}/diffstat/{}", repo_path(r), seg(id)), at).await
}

pub(crate) async fn commit_diff(
    t: &Transport,
    r: &RepoId,
    id: &str,
    max_bytes: usize,
) -> R<RawText> {
    let path = format!("{}/diff/{}", repo_path(r), seg(id));
    raw_text(t, &path, "text/plain", max_bytes).await
}

async fn raw_text(t: &Transport, path: &str, accept: &str, max_bytes: usize) -> R<RawText> {
    let resp = t.get(path, accept, max_bytes).await?;
    Ok(RawText {
        bytes: resp.body,
        truncated: resp.truncated,
    })
}

/// Whether an answer is a `src` directory listing of `dir` (not a JSON file that happens to be
/// there): every entry is a file or directory object under `dir`.
fn is_listing(v: &Value, dir: &str) -> bool {
    let Some(values) = v.get("values").and_then(Value::as_array) else {
        return false;
    };
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    values.iter().all(|e| {
        matches!(
            text(e, "/type").as_deref(),
            Some("commit_file" | "commit_directory")
        ) && text(e, "/path").is_some_and(|p| p.starts_with(&prefix))
    })
}

fn src_path(r: &RepoId, commit: &str, path: &str) -> String {
    if path.is_empty() {
        format!("{}/src/{}/", repo_path(r), seg(commit))
    } else {
        format!("{}/src/{}/{}", repo_path(r), seg(commit), segs(path))
    }
}

pub(crate) async fn directory(
    t: &Transport,
    r: &RepoId,
    commit: &str,
    path: &str,
    at: At<'_>,
) -> R<Listing> {
    // A directory's listing needs the trailing slash (the root's above all).
    let mut endpoint = src_path(r, commit, path);
    if !endpoint.ends_with('/') {
        endpoint.push('/');
    }
    let request = match at.cursor {
        Some(c) => t.cloud_cursor_path(c, &endpoint, false)?,
        None => first_page(&endpoint, &[], at.limit),
    };
    // The same URL serves a file's raw bytes when the path is a file.
    let resp = t.get(&request, "application/json", MAX_BODY_BYTES).await?;
    if !resp.is_json() {
        return Ok(Listing::NotADirectory);
    }
    let v = resp.json()?;
    if !is_listing(&v, path) {
        return Ok(Listing::NotADirectory);
    }
    let page = Page::from_cloud(&v)?;
    Ok(Listing::Entries(finish(t, page)?))
}

pub(crate) async fn file(
    t: &Transport,
    r: &RepoId,
    commit: &str,
    path: &str,
    max_bytes: usize,
) -> R<FileRead> {
    let resp = t.get(&src_path(r, commit, path), "*/*", max_bytes).await?;
    // The same URL lists a directory when the path is one.
    if resp.is_json()
        && !resp.truncated
        && serde_json::from_slice::<Value>(&resp.body).is_ok_and(|v| is_listing(&v, path))
    {
        return Ok(FileRead::NotAFile);
    }
    Ok(FileRead::Content(FileContent {
        bytes: resp.body,
        content_type: resp.content_type,
        truncated: resp.truncated,
    }))
}

pub(crate) async fn pull_requests(
    t: &Transport,
    r: &RepoId,
    q: &PrQuery,
    at: At<'_>,
) -> R<Page<PullRequest>> {
    let endpoint = format!("{}/pullrequests", repo_path(r));
    let states: Vec<String> = match &q.state {
        Some(s) => vec![s.as_str().to_string()],
        // Every state has to be named: without `state` the list holds only open ones.
        None => ["OPEN", "MERGED", "DECLINED", "SUPERSEDED"]
            .map(String::from)
            .to_vec(),
    };
    let mut params: Vec<(&str, String)> = states.into_iter().map(|s| ("state", s)).collect();
    // Lists leave reviewers and participants (with approvals) out unless asked for.
    params.push(("fields", "+values.reviewers,+values.participants".into()));
    list(t, &endpoint, &params, at).await
}

pub(crate) async fn pull_request(t: &Transport, r: &RepoId, id: u64) -> R<PullRequest> {
    let path = format!("{}/pullrequests/{id}", repo_path(r));
    PullRequest::from_cloud(&t.get_json(&path).await?)
}

pub(crate) async fn pull_request_changes(
    t: &Transport,
    r: &RepoId,
    id: u64,
    at: At<'_>,
) -> R<Page<ChangedFile>> {
    diffstat(
        t,
        r,
        &format!("{}/pullrequests/{id}/diffstat", repo_path(r)),
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
    let path = format!("{}/pullrequests/{id}/diff", repo_path(r));
    raw_text(t, &path, "text/plain", max_bytes).await
}

/// A pipelines failure made specific: a 404 on a repository that exists means Pipelines is
/// off (or, for one run, that the run does not exist); a 403 names the scope pipelines need.
async fn pipelines_error(
    t: &Transport,
    r: &RepoId,
    mut e: ApiError,
    run: Option<&PipelineId>,
) -> ApiError {
    match e.kind {
        ApiErrorKind::NotFound => {}
        ApiErrorKind::Forbidden => {
            // What pipelines need, then what the transport read from the server's answer
            // (the scopes it named), not one instead of the other.
            let need = "reading pipelines needs the `read:pipeline:bitbucket` scope on an API token, or `pipeline` on an access token";
            let hint = match e.hint.take() {
                Some(said) => format!("{need}; {said}"),
                None => need.to_string(),
            };
            return e.with_hint(hint);
        }
        _ => return e,
    }
    // The error body is the same in every case (`Not found`): ask the repository instead.
    if let Err(repo_err) = t.get_json(&repo_path(r)).await {
        return repo_err;
    }
    let run_missing = match run {
        Some(_) => match pipelines_off(t, r).await {
            Ok(off) => !off,
            Err(x) => return x,
        },
        None => false,
    };
    let (kind, message) = match run {
        Some(id) if run_missing => (
            ApiErrorKind::NotFound,
            format!("repository `{r}` has no pipeline `{id}`"),
        ),
        _ => (
            ApiErrorKind::PipelinesDisabled,
            format!(
                "Pipelines is not enabled for repository `{r}`: the repository exists but its pipelines endpoints answer 404; enable Pipelines in the repository settings"
            ),
        ),
    };
    let status = e.status.unwrap_or(404);
    ApiError::new(kind, message).answered(status, e.server_message)
}

/// Whether the pipelines list of an existing repository answers 404 (Pipelines is off).
async fn pipelines_off(t: &Transport, r: &RepoId) -> R<bool> {
    let list = format!("{}/pipelines?pagelen=1", repo_path(r));
    match t.get_json(&list).await {
        Ok(_) => Ok(false),
        Err(e) if e.kind == ApiErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

pub(crate) async fn pipelines(
    t: &Transport,
    r: &RepoId,
    q: &PipelineQuery,
    at: At<'_>,
) -> R<Page<Pipeline>> {
    let endpoint = format!("{}/pipelines", repo_path(r));
    let mut params: Vec<(&str, String)> = vec![("sort", "-created_on".into())];
    if let Some(b) = &q.branch {
        params.push(("target.branch", b.clone()));
    }
    if let Some(status) = q.status.and_then(status_filter) {
        params.push(("status", status.into()));
    }
    let page: Page<Pipeline> = match list(t, &endpoint, &params, at).await {
        Ok(p) => p,
        Err(e) => return Err(pipelines_error(t, r, e, None).await),
    };
    // Servers differ in which filters they honour: the same test again, here.
    let values = page
        .values
        .into_iter()
        .filter(|p| q.branch.is_none() || p.branch == q.branch)
        .filter(|p| q.status.is_none_or(|s| p.status == s))
        .collect();
    Ok(Page {
        values,
        next: page.next,
    })
}

/// The `status` filter value for a run status (`None`: the API has no filter for it).
fn status_filter(s: RunStatus) -> Option<&'static str> {
    Some(match s {
        RunStatus::Pending => "PENDING",
        RunStatus::InProgress => "BUILDING",
        RunStatus::Successful => "PASSED",
        RunStatus::Failed => "FAILED",
        RunStatus::Error => "ERROR",
        RunStatus::Stopped => "STOPPED",
        RunStatus::Expired | RunStatus::NotRun | RunStatus::Unknown => return None,
    })
}

/// Pages of 100 runs searched for a build number the server does not take in the path.
const NUMBER_SEARCH_PAGES: usize = 3;

pub(crate) async fn pipeline(t: &Transport, r: &RepoId, id: &PipelineId) -> R<Pipeline> {
    let path = format!("{}/pipelines/{}", repo_path(r), seg(&id.to_string()));
    match t.get_json(&path).await {
        Ok(v) => Pipeline::from_cloud(&v),
        Err(e) if e.kind == ApiErrorKind::NotFound => {
            if let PipelineId::Number(n) = id {
                let mut cursor = None;
                for _ in 0..NUMBER_SEARCH_PAGES {
                    let at = At::new(100, cursor.as_ref());
                    let page = pipelines(t, r, &PipelineQuery::default(), at).await?;
                    if let Some(p) = page.values.into_iter().find(|p| p.build_number == Some(*n)) {
                        return Ok(p);
                    }
                    match page.next {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
            }
            Err(pipelines_error(t, r, e, Some(id)).await)
        }
        Err(e) => Err(pipelines_error(t, r, e, Some(id)).await),
    }
}

pub(crate) async fn pipeline_steps(
    t: &Transport,
    r: &RepoId,
    pipeline: &str,
    at: At<'_>,
) -> R<Page<PipelineStep>> {
    let endpoint = format!("{}/pipelines/{}/steps", repo_path(r), seg(pipeline));
    match list(t, &endpoint, &[], at).await {
        Ok(p) => Ok(p),
        Err(e) => {
            let id = PipelineId::parse(pipeline).unwrap_or(PipelineId::Uuid(pipeline.to_string()));
            Err(pipelines_error(t, r, e, Some(&id)).await)
        }
    }
}

pub(crate) async fn step_log(
    t: &Transport,
    r: &RepoId,
    pipeline: &str,
    step: &str,
    max_bytes: usize,
) -> R<RawText> {
    let path = format!(
        "{}/pipelines/{}/steps/{}/log",
        repo_path(r),
        seg(pipeline),
        seg(step)
    );
    // A completed step's log is redirected to object storage; the transport follows without
    // the credential.
    match raw_text(t, &path, "*/*", max_bytes).await {
        Err(e) if e.kind == ApiErrorKind::NotFound => {
            let status = e.status;
            let mut missing = ApiError::new(
                ApiErrorKind::NotFound,
                format!(
                    "step {step} of pipeline {pipeline} has no log (it has not started, or its log expired)"
                ),
            );
            missing.status = status;
            missing.server_message = e.server_message;
            Err(missing)
        }
        Err(e) => Err(pipelines_error(t, r, e, None).await),
        ok => ok,
    }
}

// ---- Decoding ----------------------------------------------------------------------------

impl FromCloud for User {
    fn from_cloud(v: &Value) -> R<User> {
        Ok(User {
            display_name: set(v, "/display_name"),
            username: set(v, "/username"),
            handle: set(v, "/nickname"),
            id: set(v, "/uuid"),
            email: None,
        })
    }
}

impl FromCloud for Repository {
    fn from_cloud(v: &Value) -> R<Repository> {
        let full_name = set(v, "/full_name");
        let slug = set(v, "/slug")
            .or_else(|| {
                full_name
                    .as_deref()
                    .and_then(|f| f.rsplit('/').next())
                    .map(str::to_string)
            })
            .ok_or_else(|| super::page::bad_shape("has a repository without `/slug`"))?;
        Ok(Repository {
            full_name: full_name.unwrap_or_else(|| slug.clone()),
            name: set(v, "/name").unwrap_or_else(|| slug.clone()),
            slug,
            description: set(v, "/description"),
            language: set(v, "/language"),
            is_private: boolean(v, "/is_private").unwrap_or(true),
            default_branch: set(v, "/mainbranch/name"),
            web_url: set(v, "/links/html/href"),
            clone_urls: clone_urls(v),
        })
    }
}

impl FromCloud for Branch {
    fn from_cloud(v: &Value) -> R<Branch> {
        Ok(Branch {
            name: required(v, "/name", "a branch")?,
            head: required(v, "/target/hash", "a branch")?,
            date: rfc3339(v, "/target/date"),
            message: text(v, "/target/message"),
            is_default: None,
        })
    }
}

/// `Name <email>` as git recorded it.
fn parse_raw_person(raw: &str) -> (String, Option<String>) {
    match raw.rsplit_once('<') {
        Some((n, e)) => {
            let email = e.trim_end().trim_end_matches('>').trim();
            (
                n.trim().to_string(),
                (!email.is_empty()).then(|| email.to_string()),
            )
        }
        None => (raw.trim().to_string(), None),
    }
}

impl FromCloud for Commit {
    fn from_cloud(v: &Value) -> R<Commit> {
        let (name, email) = match text(v, "/author/raw") {
            Some(raw) => parse_raw_person(&raw),
            None => (
                set(v, "/author/user/display_name").unwrap_or_default(),
                None,
            ),
        };
        Ok(Commit {
            hash: required(v, "/hash", "a commit")?,
            parents: items(v, "/parents")
                .iter()
                .filter_map(|p| text(p, "/hash"))
                .collect(),
            author: Signature {
                name,
                email,
                date: rfc3339(v, "/date"),
            },
            committer: None,
            message: text(v, "/message").unwrap_or_default(),
        })
    }
}

impl FromCloud for ChangedFile {
    fn from_cloud(v: &Value) -> R<ChangedFile> {
        let new = text(v, "/new/path");
        let old = text(v, "/old/path");
        let status = match text(v, "/status").as_deref() {
            Some("added") => ChangeStatus::Added,
            Some("removed") => ChangeStatus::Removed,
            Some("modified") => ChangeStatus::Modified,
            Some("renamed") => ChangeStatus::Renamed,
            Some(other) => ChangeStatus::Other(other.to_string()),
            None => ChangeStatus::Other(String::new()),
        };
        let path = new
            .clone()
            .or_else(|| old.clone())
            .ok_or_else(|| super::page::bad_shape("has a diffstat entry with neither path"))?;
        let attrs: Option<Vec<String>> =
            match (strings(v, "/new/attributes"), strings(v, "/old/attributes")) {
                (None, None) => None,
                (a, b) => Some(a.into_iter().chain(b).flatten().collect()),
            };
        Ok(ChangedFile {
            path,
            old_path: if status == ChangeStatus::Renamed {
                old
            } else {
                None
            },
            status,
            lines_added: uint(v, "/lines_added"),
            lines_removed: uint(v, "/lines_removed"),
            binary: attrs.map(|a| a.iter().any(|x| x == "binary")),
        })
    }
}

impl FromCloud for DirEntry {
    fn from_cloud(v: &Value) -> R<DirEntry> {
        let path = required(v, "/path", "a directory entry")?;
        let attrs = strings(v, "/attributes");
        let has = |a: &str| attrs.as_ref().is_some_and(|l| l.iter().any(|x| x == a));
        let kind = if text(v, "/type").as_deref() == Some("commit_directory") {
            EntryKind::Dir
        } else if has("subrepository") {
            EntryKind::Submodule
        } else if has("link") {
            EntryKind::Symlink
        } else {
            EntryKind::File
        };
        let dir = kind == EntryKind::Dir;
        Ok(DirEntry {
            name: path.rsplit('/').next().unwrap_or(&path).to_string(),
            size: uint(v, "/size").filter(|_| !dir),
            executable: attrs.as_ref().filter(|_| !dir).map(|_| has("executable")),
            kind,
            path,
        })
    }
}

fn pr_ref(v: &Value, side: &str) -> R<PrRef> {
    Ok(PrRef {
        branch: required(v, &format!("/{side}/branch/name"), "a pull request")?,
        commit: set(v, &format!("/{side}/commit/hash")),
        repository: set(v, &format!("/{side}/repository/full_name")),
    })
}

impl FromCloud for PullRequest {
    fn from_cloud(v: &Value) -> R<PullRequest> {
        let id = uint(v, "/id")
            .ok_or_else(|| super::page::bad_shape("has a pull request without `/id`"))?;
        // Approvals are on `participants`; `reviewers` says who was asked.
        let participants = items(v, "/participants");
        let reviewers = v.get("reviewers").and_then(Value::as_array).map(|list| {
            list.iter()
                .map(|u| {
                    let user = User::from_cloud(u).unwrap_or_default();
                    let approved = user.id.as_ref().and_then(|id| {
                        participants
                            .iter()
                            .find(|p| text(p, "/user/uuid").as_ref() == Some(id))
                            .and_then(|p| boolean(p, "/approved"))
                    });
                    Reviewer { user, approved }
                })
                .collect()
        });
        Ok(PullRequest {
            id,
            title: text(v, "/title").unwrap_or_default(),
            description: text(v, "/description").or_else(|| text(v, "/summary/raw")),
            state: PrState::parse(&text(v, "/state").unwrap_or_default()),
            draft: boolean(v, "/draft").unwrap_or(false),
            author: v
                .get("author")
                .filter(|a| a.is_object())
                .map(|a| User::from_cloud(a).unwrap_or_default()),
            source: pr_ref(v, "source")?,
            destination: pr_ref(v, "destination")?,
            reviewers,
            comment_count: uint(v, "/comment_count"),
            created: rfc3339(v, "/created_on"),
            updated: rfc3339(v, "/updated_on"),
            web_url: set(v, "/links/html/href"),
        })
    }
}

/// A Pipelines state and result read together.
fn run_status(state: &str, result: Option<&str>) -> RunStatus {
    match state {
        "COMPLETED" => match result.unwrap_or("") {
            "SUCCESSFUL" => RunStatus::Successful,
            "FAILED" => RunStatus::Failed,
            "ERROR" => RunStatus::Error,
            "STOPPED" => RunStatus::Stopped,
            "EXPIRED" => RunStatus::Expired,
            "NOT_RUN" => RunStatus::NotRun,
            _ => RunStatus::Unknown,
        },
        "PENDING" | "PARSING" | "READY" => RunStatus::Pending,
        "IN_PROGRESS" | "RUNNING" | "BUILDING" | "HALTED" | "PAUSED" => RunStatus::InProgress,
        _ => RunStatus::Unknown,
    }
}

/// A trigger's name (`MANUAL`), or one made from its type (`pipeline_trigger_manual`).
fn trigger(v: &Value) -> Option<String> {
    set(v, "/trigger/name").or_else(|| {
        set(v, "/trigger/type").map(|t| {
            t.trim_start_matches("pipeline_trigger_")
                .to_ascii_uppercase()
        })
    })
}

impl FromCloud for Pipeline {
    fn from_cloud(v: &Value) -> R<Pipeline> {
        let state = text(v, "/state/name").unwrap_or_default();
        let result = set(v, "/state/result/name");
        // Branch runs name their branch; pull request runs their source branch.
        let on_branch =
            text(v, "/target/ref_type").is_none_or(|t| t.eq_ignore_ascii_case("branch"));
        let branch = set(v, "/target/ref_name")
            .filter(|_| on_branch)
            .or_else(|| set(v, "/target/source"));
        Ok(Pipeline {
            uuid: required(v, "/uuid", "a pipeline")?,
            build_number: uint(v, "/build_number"),
            status: run_status(&state, result.as_deref()),
            state,
            result,
            branch,
            commit: set(v, "/target/commit/hash"),
            trigger: trigger(v),
            creator: v
                .get("creator")
                .filter(|c| c.is_object())
                .map(|c| User::from_cloud(c).unwrap_or_default()),
            created: rfc3339(v, "/created_on"),
            completed: rfc3339(v, "/completed_on"),
            duration_secs: uint(v, "/duration_in_seconds"),
        })
    }
}

impl FromCloud for PipelineStep {
    fn from_cloud(v: &Value) -> R<PipelineStep> {
        let state = text(v, "/state/name").unwrap_or_default();
        let result = set(v, "/state/result/name");
        Ok(PipelineStep {
            uuid: required(v, "/uuid", "a pipeline step")?,
            name: set(v, "/name"),
            status: run_status(&state, result.as_deref()),
            state,
            result,
            started: rfc3339(v, "/started_on"),
            completed: rfc3339(v, "/completed_on"),
            duration_secs: uint(v, "/duration_in_seconds"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn raw_authors_split_into_name_and_email() {
        assert_eq!(
            parse_raw_person("Jane Q. Citizen <jane@example.com>"),
            ("Jane Q. Citizen".into(), Some("jane@example.com".into()))
        );
        assert_eq!(parse_raw_person("bot"), ("bot".into(), None));
        assert_eq!(parse_raw_person("x <>"), ("x".into(), None));
    }

    #[test]
    fn states_and_results_read_together() {
        assert_eq!(run_status("COMPLETED", Some("STOPPED")), RunStatus::Stopped);
        assert_eq!(run_status("COMPLETED", None), RunStatus::Unknown);
        assert_eq!(run_status("IN_PROGRESS", None), RunStatus::InProgress);
        assert_eq!(run_status("PENDING", None), RunStatus::Pending);
    }

    #[test]
    fn entries_read_their_kind_from_type_and_attributes() {
        let e = |v: Value| DirEntry::from_cloud(&v).unwrap();
        let d = e(json!({"type": "commit_directory", "path": "a/b"}));
        assert_eq!(
            (d.kind, d.name.as_str(), d.size, d.executable),
            (EntryKind::Dir, "b", None, None)
        );
        let f = e(
            json!({"type": "commit_file", "path": "x.sh", "size": 3, "attributes": ["executable"]}),
        );
        assert_eq!(
            (f.kind, f.size, f.executable),
            (EntryKind::File, Some(3), Some(true))
        );
        let l = e(json!({"type": "commit_file", "path": "l", "attributes": ["link"]}));
        assert_eq!((l.kind, l.executable), (EntryKind::Symlink, Some(false)));
        let s = e(json!({"type": "commit_file", "path": "m", "attributes": ["subrepository"]}));
        assert_eq!(s.kind, EntryKind::Submodule);
    }

    #[test]
    fn renames_keep_the_old_path_and_binary_is_read_from_attributes() {
        let c = ChangedFile::from_cloud(&json!({
            "status": "renamed", "lines_added": 0, "lines_removed": 0,
            "old": {"path": "a.bin", "attributes": ["binary"]}, "new": {"path": "b.bin"}
        }))
        .unwrap();
        assert_eq!(c.path, "b.bin");
        assert_eq!(c.old_path.as_deref(), Some("a.bin"));
        assert_eq!(c.binary, Some(true));
        let removed = ChangedFile::from_cloud(
            &json!({"status": "removed", "old": {"path": "gone"}, "new": null}),
        )
        .unwrap();
        assert_eq!(
            (removed.path.as_str(), removed.old_path, removed.binary),
            ("gone", None, None)
        );
    }
}
