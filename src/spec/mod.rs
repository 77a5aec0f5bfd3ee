//! The environment spec: the YAML model, loading with positions, validation, JSON Schema.

mod checks;
mod diagnostic;
mod model;
mod shape;
mod yaml;

pub use diagnostic::Diagnostic;
pub use model::*;
pub use yaml::KeyPath;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::error::Result;

/// A spec loaded from disk and validated, with its compiled scope.
#[derive(Debug, Clone)]
pub struct LoadedEnv {
    pub spec: Environment,
    /// The spec file as given.
    pub path: PathBuf,
    /// The directory holding the spec file: relative `url:` and `secrets.team` resolve from it.
    pub dir: PathBuf,
    pub scope: crate::scope::Scope,
    /// The parsed YAML, for pointing later messages at a line (see `LoadedEnv::diagnostic`).
    tree: Arc<yaml::Node>,
}

impl LoadedEnv {
    /// Read, parse and validate a spec file. Errors read `file:line:column: message`, one
    /// line per problem, each followed by a hint; the kind is bad input (exit code 2).
    pub fn load(path: &Path) -> Result<LoadedEnv> {
        Self::diagnose_file(path).map_err(|d| diagnostic::into_error(path, &d))
    }

    pub fn from_str(path: &Path, text: &str) -> Result<LoadedEnv> {
        Self::diagnose(path, text).map_err(|d| diagnostic::into_error(path, &d))
    }

    /// Like [`LoadedEnv::load`], with every problem as data (for `validate --json`).
    pub fn diagnose_file(path: &Path) -> Result<LoadedEnv, Vec<Diagnostic>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![
                Diagnostic::whole_file(format!("cannot read the spec: {e}"))
                    .with_hint("check the path; `agentenv validate` takes the spec file itself"),
            ]
        })?;
        Self::diagnose(path, &text)
    }

    /// Parse and validate: YAML syntax, then the shape against the JSON Schema (every
    /// unknown key, wrong type, missing key at once), then the semantic checks.
    pub fn diagnose(path: &Path, text: &str) -> Result<LoadedEnv, Vec<Diagnostic>> {
        let tree = yaml::parse(text).map_err(|d| vec![d])?;
        let shape_problems = shape::check(schema_ref(), &tree);
        // Take the ill-shaped values out, so the semantic checks can still look at the rest:
        // one run reports an unknown key and a `..` path alike. If what is left still does not
        // deserialize (a required key is wrong), drop the sections with problems and try again.
        let mut doc = tree.to_json();
        for (at, _) in &shape_problems {
            at.remove_from(&mut doc);
        }
        let mut spec = serde_json::from_value::<Environment>(doc.clone());
        let mut dropped: Vec<yaml::KeyPath> = Vec::new();
        if spec.is_err() && !shape_problems.is_empty() {
            for (at, _) in &shape_problems {
                let section = at.section();
                section.remove_from(&mut doc);
                dropped.push(section);
            }
            spec = serde_json::from_value::<Environment>(doc);
        }
        let mut problems: Vec<Diagnostic> = Vec::new();
        let mut loaded = None;
        match spec {
            Ok(mut spec) => {
                for repo in &mut spec.repos {
                    for v in [&mut repo.slug, &mut repo.url].into_iter().flatten() {
                        *v = strip_clone_command(v).to_string();
                    }
                }
                let providers_known = !dropped.iter().any(|s| s.to_string() == "providers");
                let (scope, semantic) = checks::check(&spec, &tree, providers_known);
                // A check about a node whose part was taken out would only repeat it.
                problems.extend(semantic.into_iter().filter_map(|(at, d)| {
                    let echo = shape_problems.iter().any(|(bad, _)| at.contains(bad));
                    (!echo).then_some(d)
                }));
                loaded = Some((spec, scope));
            }
            Err(e) if shape_problems.is_empty() => {
                // The shape check accepts only what the model deserializes; if the two ever
                // disagree, say where serde stopped rather than nothing.
                problems.push(Diagnostic::whole_file(format!(
                    "the spec does not fit the model: {e}"
                )));
            }
            Err(_) => {}
        }
        problems.extend(shape_problems.into_iter().map(|(_, d)| d));
        problems.sort_by_key(|d| (d.line, d.column));
        let (spec, scope) = match loaded {
            Some(ok) if problems.is_empty() => ok,
            _ => return Err(problems),
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
            tree: Arc::new(tree),
        })
    }

    /// Narrow the scope after loading. Validation refuses a spec whose repos fall outside its
    /// own scope, but a server must still refuse a checkout that a narrower scope no longer
    /// allows (a spec narrowed after provisioning): tests build that case with this.
    pub fn with_scope(
        mut self,
        repositories: Option<&str>,
        branches: Option<&str>,
    ) -> Result<Self> {
        let compile = |what: &str, re: Option<&str>| {
            re.map(|r| {
                regex::Regex::new(r).map_err(|e| {
                    crate::error::Error::input(format!("scope.{what}: invalid regex: {e}"))
                })
            })
            .transpose()
        };
        self.scope = crate::scope::Scope::new(
            compile("repositories", repositories)?,
            compile("branches", branches)?,
        );
        self.spec.scope.repositories = repositories.map(str::to_string);
        self.spec.scope.branches = branches.map(str::to_string);
        Ok(self)
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
///
/// Draft-07, because that is what the YAML language server behind most editors validates
/// with; later drafts are only partly supported there.
pub fn json_schema() -> serde_json::Value {
    schema_ref().clone()
}

fn schema_ref() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema = schemars::generate::SchemaSettings::draft07()
            .into_generator()
            .into_root_schema_for::<Environment>();
        serde_json::to_value(schema).expect("a schema is plain JSON")
    })
}

/// The schema as committed: pretty JSON and a final newline.
pub fn schema_text() -> String {
    let text = serde_json::to_string_pretty(schema_ref()).expect("a schema is plain JSON");
    text + "\n"
}
