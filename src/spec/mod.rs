//! The environment spec: the YAML model, loading with positions, validation, JSON Schema.

mod model;

pub use model::*;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A spec loaded from disk and validated, with its compiled scope.
#[derive(Debug, Clone)]
pub struct LoadedEnv {
    pub spec: Environment,
    /// The spec file as given.
    pub path: PathBuf,
    /// The directory holding the spec file: relative `url:` and `secrets.team` resolve from it.
    pub dir: PathBuf,
    pub scope: CompiledScope,
}

/// `scope:` with its regexes compiled. `None` allows everything.
#[derive(Debug, Clone, Default)]
pub struct CompiledScope {
    pub repositories: Option<regex::Regex>,
    pub branches: Option<regex::Regex>,
}

impl CompiledScope {
    /// A repository is in scope when the regex matches its slug or its full name.
    pub fn repo_allowed(&self, slug: &str, full_name: Option<&str>) -> bool {
        match &self.repositories {
            None => true,
            Some(re) => re.is_match(slug) || full_name.is_some_and(|f| re.is_match(f)),
        }
    }
    pub fn branch_allowed(&self, branch: &str) -> bool {
        self.branches.as_ref().is_none_or(|re| re.is_match(branch))
    }
}

impl LoadedEnv {
    /// Read, parse and validate a spec file. Errors read `file:line:column: message`.
    pub fn load(path: &Path) -> Result<LoadedEnv> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::input(format!("{}: cannot read the spec: {e}", path.display())))?;
        Self::from_str(path, &text)
    }

    pub fn from_str(path: &Path, text: &str) -> Result<LoadedEnv> {
        let spec: Environment = serde_yaml::from_str(text)
            .map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
        let compile = |what: &str, re: &Option<String>| -> Result<Option<regex::Regex>> {
            re.as_deref()
                .map(|r| {
                    regex::Regex::new(r).map_err(|e| {
                        Error::input(format!(
                            "{}: scope.{what}: invalid regex: {e}",
                            path.display()
                        ))
                    })
                })
                .transpose()
        };
        let scope = CompiledScope {
            repositories: compile("repositories", &spec.scope.repositories)?,
            branches: compile("branches", &spec.scope.branches)?,
        };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Ok(LoadedEnv {
            spec,
            path: path.to_path_buf(),
            dir,
            scope,
        })
    }

    /// The default workdir when `--workdir` is not given: `$AGENTENV_WORKDIR`, else
    /// `./agentenv-work/<name>`.
    pub fn default_workdir(&self) -> PathBuf {
        match std::env::var_os("AGENTENV_WORKDIR") {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from("agentenv-work").join(&self.spec.name),
        }
    }

    /// Find a repo by the name the tools use (see [`Repo::name`]).
    pub fn repo(&self, name: &str) -> Option<&Repo> {
        self.spec.repos.iter().find(|r| r.name() == name)
    }
}

/// The JSON Schema of the spec, as committed in `schema/environment.schema.json`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Environment)).expect("schema serializes")
}

pub mod cli {
    //! `agentenv validate` and `agentenv schema`.
    use std::path::PathBuf;

    use super::LoadedEnv;
    use crate::error::Result;

    #[derive(Debug, clap::Args)]
    pub struct ValidateArgs {
        /// One or more environment specs.
        #[arg(required = true)]
        pub envs: Vec<PathBuf>,
        #[arg(long)]
        pub json: bool,
    }

    /// `agentenv validate ENV…`: every spec is checked; all problems are reported.
    pub fn validate(args: ValidateArgs) -> Result<()> {
        let mut first_err = None;
        for path in &args.envs {
            match LoadedEnv::load(path) {
                Ok(_) => println!("{}: ok", path.display()),
                Err(e) => {
                    eprintln!("{e}");
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// `agentenv schema`: the JSON Schema of the spec.
    pub fn schema() -> Result<()> {
        let text = serde_json::to_string_pretty(&super::json_schema()).expect("schema serializes");
        println!("{text}");
        Ok(())
    }
}
