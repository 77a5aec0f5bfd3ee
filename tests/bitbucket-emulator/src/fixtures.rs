//! Fixture data a test seeds: pull requests, pipelines with steps and logs, build statuses.

/// A pull request; its commits come from the repository's `source_branch`/`destination_branch`.
#[derive(Clone, Debug)]
pub struct PullRequest {
    pub id: u64,
    pub title: String,
    pub description: String,
    /// `OPEN`, `MERGED`, `DECLINED` or `SUPERSEDED` (Data Center: `OPEN`, `MERGED`, `DECLINED`).
    pub state: String,
    pub source_branch: String,
    pub destination_branch: String,
    /// Author's username / display name.
    pub author: String,
    pub reviewers: Vec<String>,
    pub draft: bool,
    /// ISO-8601, e.g. `2025-01-02T03:04:05.000000+00:00`.
    pub created_on: String,
    pub updated_on: String,
}

impl Default for PullRequest {
    fn default() -> PullRequest {
        PullRequest {
            id: 1,
            title: "Change".into(),
            description: String::new(),
            state: "OPEN".into(),
            source_branch: "feature".into(),
            destination_branch: "main".into(),
            author: "alice".into(),
            reviewers: Vec::new(),
            draft: false,
            created_on: "2025-01-02T03:04:05.000000+00:00".into(),
            updated_on: "2025-01-03T03:04:05.000000+00:00".into(),
        }
    }
}

/// A Cloud pipeline run.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// With braces: `{11111111-2222-4333-8444-555555555555}`.
    pub uuid: String,
    pub build_number: u64,
    /// `PENDING`, `IN_PROGRESS` or `COMPLETED`.
    pub state: String,
    /// For `COMPLETED`: `SUCCESSFUL`, `FAILED`, `ERROR`, `STOPPED` or `EXPIRED`.
    pub result: Option<String>,
    pub ref_name: String,
    /// A revision the repository resolves (hash or branch).
    pub commit: String,
    pub creator: String,
    pub created_on: String,
    pub completed_on: Option<String>,
    pub duration_in_seconds: u64,
    pub steps: Vec<PipelineStep>,
}

impl Default for Pipeline {
    fn default() -> Pipeline {
        Pipeline {
            uuid: "{11111111-2222-4333-8444-555555555555}".into(),
            build_number: 1,
            state: "COMPLETED".into(),
            result: Some("SUCCESSFUL".into()),
            ref_name: "main".into(),
            commit: "main".into(),
            creator: "alice".into(),
            created_on: "2025-01-02T03:04:05.000Z".into(),
            completed_on: Some("2025-01-02T03:05:05.000Z".into()),
            duration_in_seconds: 60,
            steps: Vec::new(),
        }
    }
}

/// One step of a pipeline; `log` is served from the log host after a redirect.
#[derive(Clone, Debug)]
pub struct PipelineStep {
    pub uuid: String,
    pub name: String,
    /// `PENDING`, `READY`, `IN_PROGRESS` or `COMPLETED`.
    pub state: String,
    /// For `COMPLETED`: `SUCCESSFUL`, `FAILED`, `ERROR`, `STOPPED`, `NOT_RUN` or `EXPIRED`.
    pub result: Option<String>,
    pub log: Option<Vec<u8>>,
    pub started_on: Option<String>,
    pub completed_on: Option<String>,
    pub duration_in_seconds: u64,
}

impl Default for PipelineStep {
    fn default() -> PipelineStep {
        PipelineStep {
            uuid: "{aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee}".into(),
            name: "Build".into(),
            state: "COMPLETED".into(),
            result: Some("SUCCESSFUL".into()),
            log: None,
            started_on: Some("2025-01-02T03:04:10.000Z".into()),
            completed_on: Some("2025-01-02T03:05:00.000Z".into()),
            duration_in_seconds: 50,
        }
    }
}

/// A Data Center build status on a commit.
#[derive(Clone, Debug)]
pub struct BuildStatus {
    /// Full commit hash.
    pub commit: String,
    pub key: String,
    /// `SUCCESSFUL`, `FAILED`, `INPROGRESS` (current API also `CANCELLED`, `UNKNOWN`).
    pub state: String,
    pub name: String,
    pub url: String,
    pub description: String,
    /// Milliseconds since the epoch.
    pub date_added: i64,
}

impl Default for BuildStatus {
    fn default() -> BuildStatus {
        BuildStatus {
            commit: String::new(),
            key: "build".into(),
            state: "SUCCESSFUL".into(),
            name: "Build".into(),
            url: "https://ci.example.com/build/1".into(),
            description: "Build passed".into(),
            date_added: 1_735_787_045_000,
        }
    }
}

/// Where a step's log lives on the log host (opaque to clients, like a presigned URL path).
pub fn log_blob_path(pipeline: &str, step: &str) -> String {
    let clean = |s: &str| s.trim_matches(|c| c == '{' || c == '}').to_string();
    format!("/logs/{}/{}", clean(pipeline), clean(step))
}
