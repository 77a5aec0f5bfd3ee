//! The typed values the client returns, the same on Bitbucket Cloud and Data Center where the
//! products overlap. A field one product does not give is an `Option` that is `None` there
//! (Data Center branch lists have no dates, its change lists no line counts): never a made-up
//! zero or empty string. Decoding from each product's JSON lives in `cloud.rs` and
//! `datacenter.rs`, behind [`FromCloud`] and [`FromDataCenter`].

use serde_json::Value;

use super::ApiError;

/// A point in time as the server gave it (Cloud writes RFC 3339 with an offset; Data Center
/// milliseconds since the epoch, read as UTC).
pub type Timestamp = chrono::DateTime<chrono::FixedOffset>;

/// Decoding one Bitbucket Cloud JSON object (implemented in `cloud.rs`).
pub trait FromCloud: Sized {
    fn from_cloud(v: &Value) -> Result<Self, ApiError>;
}

/// Decoding one Bitbucket Data Center JSON object (implemented in `datacenter.rs`).
pub trait FromDataCenter: Sized {
    fn from_datacenter(v: &Value) -> Result<Self, ApiError>;
}

/// Raw JSON passes through unchanged: for the tests of page decoding.
#[cfg(test)]
impl FromCloud for Value {
    fn from_cloud(v: &Value) -> Result<Value, ApiError> {
        Ok(v.clone())
    }
}

#[cfg(test)]
impl FromDataCenter for Value {
    fn from_datacenter(v: &Value) -> Result<Value, ApiError> {
        Ok(v.clone())
    }
}

/// A repository as the API addresses it: Cloud `workspace/slug`, Data Center `PROJECT/slug`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoId {
    /// The Cloud workspace slug or the Data Center project key.
    pub owner: String,
    pub slug: String,
}

impl RepoId {
    pub fn new(owner: impl Into<String>, slug: impl Into<String>) -> RepoId {
        RepoId {
            owner: owner.into(),
            slug: slug.into(),
        }
    }

    /// `owner/slug`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.slug)
    }
}

impl std::fmt::Display for RepoId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.slug)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub slug: String,
    /// `workspace/slug` (Cloud) or `PROJECT/slug` (Data Center).
    pub full_name: String,
    /// The name people see, which may differ from the slug.
    pub name: String,
    pub description: Option<String>,
    /// Main language as Bitbucket records it: Cloud only, `None` when unset.
    pub language: Option<String>,
    /// Cloud `is_private`, Data Center `!public`; a server that says neither is read as
    /// private, the reading that exposes nothing.
    pub is_private: bool,
    /// Cloud only: Data Center's repository object does not carry it (call `default_branch`).
    pub default_branch: Option<String>,
    /// The repository's web page.
    pub web_url: Option<String>,
    pub clone_urls: Vec<CloneUrl>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneUrl {
    /// `https`, `http` or `ssh`, as the server names it.
    pub protocol: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    pub name: String,
    /// The full id of the commit the branch points at.
    pub head: String,
    /// The head commit's date: Cloud only (Data Center branch lists carry no commit details).
    pub date: Option<Timestamp>,
    /// The head commit's message: Cloud only.
    pub message: Option<String>,
    /// Data Center only: Cloud branch objects do not say (the repository's `default_branch` does).
    pub is_default: Option<bool>,
}

/// A revision a commit list starts from or stops at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rev {
    /// A branch name (`main`, `release/1.0`), never a tag or a commit id.
    Branch(String),
    /// A full or abbreviated commit id.
    Commit(String),
}

/// Which commits to list: those reachable from `from` and from none of `exclude`, newest first
/// (`git log from ^exclude… -- path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitQuery {
    pub from: Rev,
    /// Cloud takes any number; Data Center one (its `since`).
    pub exclude: Vec<Rev>,
    /// Only commits that touch this path (a file or a directory).
    pub path: Option<String>,
}

impl CommitQuery {
    pub fn from(rev: Rev) -> CommitQuery {
        CommitQuery {
            from: rev,
            exclude: Vec::new(),
            path: None,
        }
    }
}

/// Who made a commit, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub email: Option<String>,
    pub date: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub hash: String,
    pub parents: Vec<String>,
    pub author: Signature,
    /// Data Center only: Cloud records one person and one date per commit (the author).
    pub committer: Option<Signature>,
    pub message: String,
}

/// What happened to a file between two revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeStatus {
    Added,
    Removed,
    Modified,
    Renamed,
    /// Data Center only (Cloud reports a copy as an addition).
    Copied,
    /// A status this client does not know, as the server wrote it.
    Other(String),
}

/// One file of a diffstat (Cloud) or change list (Data Center).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    /// The path after the change (before it, for a removed file).
    pub path: String,
    /// The path before a rename or copy.
    pub old_path: Option<String>,
    pub status: ChangeStatus,
    /// Cloud only: Data Center's change lists carry no line counts.
    pub lines_added: Option<u64>,
    pub lines_removed: Option<u64>,
    /// Cloud, when its file object lists attributes (`binary`); `None` when unknown.
    pub binary: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    /// Cloud only: Data Center lists a symbolic link as a file.
    Symlink,
    Submodule,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The last path component.
    pub name: String,
    /// The path from the repository root.
    pub path: String,
    pub kind: EntryKind,
    /// Bytes, for files; `None` for directories and where the server does not say.
    pub size: Option<u64>,
    /// Cloud only (its `executable` attribute): Data Center does not say.
    pub executable: Option<bool>,
}

/// A directory listing, or the finding that the path is a file.
#[derive(Debug)]
pub enum Listing {
    Entries(super::Page<DirEntry>),
    NotADirectory,
}

/// A file's bytes, or the finding that the path is a directory.
#[derive(Debug)]
pub enum FileRead {
    Content(FileContent),
    NotAFile,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    pub bytes: Vec<u8>,
    /// The server's `Content-Type`, parameters included.
    pub content_type: Option<String>,
    /// The file is longer than the caller's cap; `bytes` holds its beginning.
    pub truncated: bool,
}

/// A text body read up to a cap: a diff, a step log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawText {
    pub bytes: Vec<u8>,
    /// The body is longer than the caller's cap; `bytes` holds its beginning.
    pub truncated: bool,
}

impl RawText {
    /// The bytes as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// A Bitbucket user as an object names them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    /// Cloud `display_name`, Data Center `displayName`.
    pub display_name: Option<String>,
    /// Cloud `username` (withheld for most accounts since 2019), Data Center `name`.
    pub username: Option<String>,
    /// Cloud `nickname`, Data Center `slug`.
    pub handle: Option<String>,
    /// Cloud `uuid`, Data Center numeric `id`: the same user has the same id across objects.
    pub id: Option<String>,
    /// Data Center only: Cloud does not show addresses.
    pub email: Option<String>,
}

impl User {
    /// The name to show: the display name, else the user name, else the handle.
    pub fn label(&self) -> Option<&str> {
        self.display_name
            .as_deref()
            .or(self.handle.as_deref())
            .or(self.username.as_deref())
    }

    /// Whether `who` is one of this user's names (case-insensitive).
    pub fn answers_to(&self, who: &str) -> bool {
        [&self.display_name, &self.username, &self.handle]
            .into_iter()
            .flatten()
            .any(|n| n.eq_ignore_ascii_case(who))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrState {
    Open,
    Merged,
    Declined,
    /// Cloud only.
    Superseded,
    /// A state this client does not know, as the server wrote it.
    Other(String),
}

impl PrState {
    /// The name both APIs use.
    pub fn as_str(&self) -> &str {
        match self {
            PrState::Open => "OPEN",
            PrState::Merged => "MERGED",
            PrState::Declined => "DECLINED",
            PrState::Superseded => "SUPERSEDED",
            PrState::Other(s) => s,
        }
    }

    pub(crate) fn parse(s: &str) -> PrState {
        match s.to_ascii_uppercase().as_str() {
            "OPEN" => PrState::Open,
            "MERGED" => PrState::Merged,
            "DECLINED" => PrState::Declined,
            "SUPERSEDED" => PrState::Superseded,
            other => PrState::Other(other.to_string()),
        }
    }
}

/// Which pull requests to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrQuery {
    /// `None`: every state. Data Center has no `Superseded`.
    pub state: Option<PrState>,
}

/// One side of a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrRef {
    pub branch: String,
    /// The branch's commit as the pull request records it. Cloud gives it abbreviated (12
    /// hex digits), Data Center in full.
    pub commit: Option<String>,
    /// The repository's full name: differs from the pull request's own for a fork.
    pub repository: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewer {
    pub user: User,
    /// `None` when the server's answer does not say (a Cloud reviewer absent from `participants`).
    pub approved: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub id: u64,
    pub title: String,
    pub description: Option<String>,
    pub state: PrState,
    /// A server without draft pull requests (Data Center before 8.18) has none: `false`.
    pub draft: bool,
    pub author: Option<User>,
    pub source: PrRef,
    pub destination: PrRef,
    /// `None` when the answer leaves them out (Cloud lists do unless asked; the client asks).
    pub reviewers: Option<Vec<Reviewer>>,
    /// Data Center records it only once there are comments: `Some(0)` when its properties
    /// have none.
    pub comment_count: Option<u64>,
    pub created: Option<Timestamp>,
    pub updated: Option<Timestamp>,
    pub web_url: Option<String>,
}

/// Where a CI run stands, with the same meaning for Cloud Pipelines runs and steps and Data
/// Center build statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Pending,
    InProgress,
    Successful,
    Failed,
    Error,
    /// Cloud STOPPED, Data Center CANCELLED.
    Stopped,
    Expired,
    /// Cloud NOT_RUN (a step skipped).
    NotRun,
    Unknown,
}

/// Which Cloud pipeline runs to list (always newest first).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PipelineQuery {
    /// Only runs on this branch.
    pub branch: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
}

/// A Cloud pipeline run as an agent names it: its UUID or its build number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineId {
    /// Braces included: `{1111…}`.
    Uuid(String),
    Number(u64),
}

impl PipelineId {
    /// A build number, or a UUID with or without braces; `None` for anything else.
    pub fn parse(given: &str) -> Option<PipelineId> {
        let g = given.trim();
        if !g.is_empty() && g.len() <= 19 && g.bytes().all(|b| b.is_ascii_digit()) {
            return g.parse().ok().map(PipelineId::Number);
        }
        let bare = g.strip_prefix('{').unwrap_or(g);
        let bare = bare.strip_suffix('}').unwrap_or(bare);
        let uuid = bare.len() == 36 && bare.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        uuid.then(|| PipelineId::Uuid(format!("{{{bare}}}")))
    }
}

impl std::fmt::Display for PipelineId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PipelineId::Uuid(u) => f.write_str(u),
            PipelineId::Number(n) => write!(f, "{n}"),
        }
    }
}

/// A Cloud Pipelines run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// With braces.
    pub uuid: String,
    pub build_number: Option<u64>,
    /// The server's state name: PENDING, IN_PROGRESS, COMPLETED, …
    pub state: String,
    /// For completed runs, the server's result name: SUCCESSFUL, FAILED, ERROR, STOPPED, EXPIRED.
    pub result: Option<String>,
    /// `state` and `result` read together.
    pub status: RunStatus,
    /// The branch it ran on; `None` for runs on a tag or a bare commit.
    pub branch: Option<String>,
    pub commit: Option<String>,
    /// What started it: PUSH, MANUAL, SCHEDULE, …
    pub trigger: Option<String>,
    pub creator: Option<User>,
    pub created: Option<Timestamp>,
    pub completed: Option<Timestamp>,
    pub duration_secs: Option<u64>,
}

/// One step of a Cloud pipeline run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineStep {
    /// With braces.
    pub uuid: String,
    /// `None` when the server leaves it out (recorded step lists do).
    pub name: Option<String>,
    /// PENDING, READY, IN_PROGRESS, COMPLETED.
    pub state: String,
    /// For completed steps: SUCCESSFUL, FAILED, ERROR, STOPPED, NOT_RUN, EXPIRED.
    pub result: Option<String>,
    pub status: RunStatus,
    pub started: Option<Timestamp>,
    pub completed: Option<Timestamp>,
    pub duration_secs: Option<u64>,
}

/// A build status a CI server posted on a Data Center commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStatus {
    pub key: String,
    pub name: Option<String>,
    /// The server's state name: SUCCESSFUL, FAILED, INPROGRESS, CANCELLED, UNKNOWN.
    pub state: String,
    pub status: RunStatus,
    pub url: Option<String>,
    pub description: Option<String>,
    /// When it was posted (`dateAdded`, or `createdDate` on the current API).
    pub created: Option<Timestamp>,
    /// Current API only (Data Center 7.14+); the legacy list has none of these.
    pub build_number: Option<String>,
    pub duration_ms: Option<u64>,
    /// The ref it was built for (`refs/heads/…`).
    pub git_ref: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_ids_are_numbers_or_uuids() {
        assert_eq!(PipelineId::parse(" 42 "), Some(PipelineId::Number(42)));
        let u = "11111111-2222-4333-8444-555555555555";
        let braced = PipelineId::Uuid(format!("{{{u}}}"));
        assert_eq!(PipelineId::parse(u), Some(braced.clone()));
        assert_eq!(PipelineId::parse(&format!("{{{u}}}")), Some(braced));
        for bad in [
            "",
            "abc",
            "{}",
            "99999999999999999999999",
            "../x",
            "{{1111}}",
        ] {
            assert_eq!(PipelineId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn users_answer_to_every_name_and_show_the_display_name() {
        let u = User {
            display_name: Some("Jane Citizen".into()),
            username: Some("jcitizen".into()),
            handle: Some("jane".into()),
            ..User::default()
        };
        assert_eq!(u.label(), Some("Jane Citizen"));
        for n in ["jane citizen", "JCITIZEN", "Jane"] {
            assert!(u.answers_to(n), "{n}");
        }
        assert!(!u.answers_to("jan"));
    }
}
