//! Kubernetes manifests for scheduled agent runs: a CronJob (or, without a schedule, a Job)
//! whose pod runs `agentenv run`, and the ConfigMap that carries the spec (and its team
//! secrets file, which is age-encrypted).
//!
//! What the pod gets, and from where:
//! - the spec: the ConfigMap `NAME-spec` mounted at [`SPEC_DIR`], or with `--spec-in-image`
//!   the same path inside the image;
//! - the age identity: the Kubernetes Secret `schedule.age_key_secret` (default
//!   `NAME-age-key`, key `key.txt`) mounted as a file, named by `AGENTENV_AGE_KEY_FILE` —
//!   referenced, never inlined; only when the spec has encrypted secrets;
//! - each `secrets.from_env` value: an environment variable from the Secret
//!   `schedule.env_secret` (default `NAME-secrets`) by `secretKeyRef`, key = the name;
//! - the workdir, `HOME` and `TMPDIR` on `emptyDir`s, as the root file system is read-only;
//! - the clone cache on a node-level volume: `hostPath` (default
//!   `/var/cache/agentenv/NAME`: one directory per environment, as a cache is readable by
//!   every pod that mounts it) or a PersistentVolumeClaim;
//! - a non-root user ([`RUN_AS`], the image's `USER`), no privilege escalation, no
//!   capabilities, the runtime's default seccomp profile, no service account token;
//! - resource requests and limits, `concurrencyPolicy: Forbid`, `backoffLimit`,
//!   `activeDeadlineSeconds`.
//!
//! Flags override the spec's `schedule:` block, which overrides the defaults here.

use std::path::PathBuf;

use serde_yaml::{Mapping, Value};

use crate::error::{Error, Result};
use crate::spec::{LoadedEnv, ResourceAmounts, Resources};

/// Where the spec (and its team file) is mounted, or found in the image.
pub const SPEC_DIR: &str = "/etc/agentenv/env";
/// The image's agentenv (the Containerfile's `COPY` target and `ENTRYPOINT`).
pub const BINARY: &str = "/usr/local/bin/agentenv";
/// The image's non-root user and group (the Containerfile's `USER`).
pub const RUN_AS: i64 = 10001;
/// Where the workdir, the clone cache and the age key are mounted.
pub const WORKDIR: &str = "/work";
pub const CACHE_DIR: &str = "/var/cache/agentenv";
pub const AGE_KEY_DIR: &str = "/var/run/secrets/agentenv/age";
const HOME: &str = "/home/agentenv";
/// The hostPath below which each environment gets its own cache directory by default.
pub const DEFAULT_HOST_CACHE: &str = "/var/cache/agentenv";
/// A run that takes longer than this is stopped, unless the spec or a flag says otherwise.
const DEFAULT_DEADLINE_SECS: u64 = 3600;

/// What to export, from the command line; `None` falls back to the spec's `schedule:`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub env: PathBuf,
    pub schedule: Option<String>,
    pub image: Option<String>,
    pub spec_in_image: bool,
    pub cache: Option<String>,
    pub agent: Vec<String>,
}

/// The manifests, and what the user should know before applying them.
#[derive(Debug)]
pub struct Export {
    /// Multi-document YAML.
    pub yaml: String,
    pub warnings: Vec<String>,
}

/// Where the clone cache lives on the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheVolume {
    HostPath(String),
    Claim(String),
}

impl CacheVolume {
    /// `hostpath:/abs/path` or `pvc:NAME`.
    pub fn parse(text: &str) -> Result<CacheVolume> {
        let bad = || {
            Error::input(format!("--cache `{text}` is not a cache volume")).with_hint(
                "write hostpath:/var/cache/agentenv (a directory on each node) or pvc:CLAIM-NAME",
            )
        };
        if let Some(path) = text.strip_prefix("hostpath:") {
            let ok = path.starts_with('/')
                && path.len() > 1
                && !path.split('/').any(|p| p == "..")
                && !path.contains(char::is_whitespace);
            return ok
                .then(|| CacheVolume::HostPath(path.trim_end_matches('/').to_string()))
                .ok_or_else(bad);
        }
        if let Some(name) = text.strip_prefix("pvc:") {
            return dns_subdomain(name)
                .then(|| CacheVolume::Claim(name.to_string()))
                .ok_or_else(bad);
        }
        Err(bad())
    }
}

/// Export the spec at `opts.env` as Kubernetes manifests.
pub fn export(opts: &Options) -> Result<Export> {
    let env = LoadedEnv::load(&opts.env)?;
    let schedule = env.spec.schedule.clone().unwrap_or_default();
    let agent_spec = env.spec.agent.clone().unwrap_or_default();
    let name = object_name(&env.spec.name)?;
    let mut warnings = Vec::new();

    let cron = opts.schedule.clone().or(schedule.cron.clone());
    if let Some(c) = &cron {
        crate::spec::check_cron(c).map_err(|why| {
            Error::input(format!("--schedule: {why}"))
                .with_hint("five fields — minute hour day-of-month month day-of-week — e.g. `0 6 * * 1-5`, or @hourly, @daily")
        })?;
    }
    let image = opts
        .image
        .clone()
        .or(schedule.image.clone())
        .unwrap_or_else(|| format!("agentenv:{}", env!("CARGO_PKG_VERSION")));
    let cache = match opts.cache.as_deref().or(schedule.cache.as_deref()) {
        Some(text) => match CacheVolume::parse(text)? {
            // A bare root gets the environment's own directory below it.
            CacheVolume::HostPath(p) if p == DEFAULT_HOST_CACHE => {
                CacheVolume::HostPath(format!("{p}/{name}"))
            }
            other => other,
        },
        None => CacheVolume::HostPath(format!("{DEFAULT_HOST_CACHE}/{name}")),
    };
    let agent = if opts.agent.is_empty() {
        agent_spec.command.clone()
    } else {
        opts.agent.clone()
    };
    if agent.is_empty() {
        return Err(Error::input("no agent command to run in the pod").with_hint(
            "give it after `--` (`agentenv export kubernetes ENV -- claude -p …`), or set `agent.command` in the spec",
        ));
    }
    let deadline = schedule
        .deadline
        .map(|d| d.0.as_secs().max(1))
        .unwrap_or(DEFAULT_DEADLINE_SECS);
    let backoff = schedule.backoff_limit.unwrap_or(0);

    let spec_file = opts
        .env
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "environment.yaml".into());
    let mut files: Vec<(String, String, String)> = Vec::new(); // (key, path, content)
    if !opts.spec_in_image {
        for repo in &env.spec.repos {
            let url = repo.url.as_deref().unwrap_or_default();
            // What provision clones from the file system (paths, `file://`), as it decides.
            if repo.slug.is_none() && crate::provision::plan::local_path(url, &env.dir).is_some() {
                return Err(Error::input(format!(
                    "{}: repository {} is a local path ({url}), which a pod cannot reach",
                    env.path.display(),
                    repo.name()
                ))
                .with_hint(
                    "use a provider `slug:` or a clone URL, or build the image with the repository and pass --spec-in-image",
                ));
            }
        }
        let text = std::fs::read_to_string(&opts.env)?;
        files.push(("spec.yaml".into(), spec_file.clone(), text));
        if let Some(team) = env.spec.secrets.as_ref().and_then(|s| s.team.as_deref()) {
            let rel = crate::provision::plan::normalize(team);
            if rel.is_empty() || team.starts_with('/') || rel.split('/').any(|c| c == "..") {
                return Err(Error::input(format!(
                    "{}: secrets.team `{team}` is outside the spec's directory, which the ConfigMap cannot hold",
                    env.path.display()
                ))
                .with_hint("move the team file next to the spec, or pass --spec-in-image"));
            }
            let path = env.dir.join(team);
            match std::fs::read_to_string(&path) {
                Ok(text) => files.push(("team.yaml".into(), rel, text)),
                Err(_) => warnings.push(format!(
                    "{} does not exist yet: the ConfigMap carries the spec only; create the team secrets (`agentenv secret create {} --team NAME`) and export again before applying",
                    path.display(),
                    opts.env.display()
                )),
            }
        }
    }
    let needs_identity = env.spec.secrets.as_ref().is_some_and(|s| s.team.is_some());
    let from_env: Vec<String> = env
        .spec
        .secrets
        .as_ref()
        .map(|s| s.from_env.clone())
        .unwrap_or_default();
    let age_secret = schedule
        .age_key_secret
        .clone()
        .unwrap_or_else(|| format!("{name}-age-key"));
    let env_secret = schedule
        .env_secret
        .clone()
        .unwrap_or_else(|| format!("{name}-secrets"));

    let spec_path = format!("{SPEC_DIR}/{spec_file}");
    let mut args: Vec<Value> = vec![
        "run".into(),
        spec_path.into(),
        "--workdir".into(),
        WORKDIR.into(),
        "--cache-dir".into(),
        CACHE_DIR.into(),
        "--".into(),
    ];
    args.extend(agent.iter().map(|a| Value::from(a.as_str())));

    let mut env_vars: Vec<Value> = vec![
        map([("name", "HOME".into()), ("value", HOME.into())]),
        map([("name", "TMPDIR".into()), ("value", "/tmp".into())]),
    ];
    if needs_identity {
        env_vars.push(map([
            ("name", "AGENTENV_AGE_KEY_FILE".into()),
            ("value", format!("{AGE_KEY_DIR}/key.txt").into()),
        ]));
    }
    for n in &from_env {
        env_vars.push(map([
            ("name", n.as_str().into()),
            (
                "valueFrom",
                map([(
                    "secretKeyRef",
                    map([
                        ("name", env_secret.as_str().into()),
                        ("key", n.as_str().into()),
                    ]),
                )]),
            ),
        ]));
    }

    let mut mounts = Vec::new();
    let mut volumes = Vec::new();
    if !files.is_empty() {
        mounts.push(mount("spec", SPEC_DIR, true));
        let items: Vec<Value> = files
            .iter()
            .map(|(key, path, _)| {
                map([("key", key.as_str().into()), ("path", path.as_str().into())])
            })
            .collect();
        volumes.push(map([
            ("name", "spec".into()),
            (
                "configMap",
                map([
                    ("name", format!("{name}-spec").into()),
                    ("items", Value::Sequence(items)),
                ]),
            ),
        ]));
    }
    if needs_identity {
        mounts.push(mount("age-key", AGE_KEY_DIR, true));
        volumes.push(map([
            ("name", "age-key".into()),
            (
                "secret",
                map([
                    ("secretName", age_secret.as_str().into()),
                    // Owned by root, group fsGroup: the group bit is what lets the non-root user read it.
                    ("defaultMode", 0o440.into()),
                    (
                        "items",
                        Value::Sequence(vec![map([
                            ("key", "key.txt".into()),
                            ("path", "key.txt".into()),
                        ])]),
                    ),
                ]),
            ),
        ]));
    }
    let scratch = schedule
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.ephemeral_storage.clone());
    for (vol, path) in [("work", WORKDIR), ("home", HOME), ("tmp", "/tmp")] {
        mounts.push(mount(vol, path, false));
        let empty = match (&scratch, vol) {
            (Some(size), "work") => map([("sizeLimit", size.as_str().into())]),
            _ => Value::Mapping(Mapping::new()),
        };
        volumes.push(map([("name", vol.into()), ("emptyDir", empty)]));
    }
    mounts.push(mount("cache", CACHE_DIR, false));
    volumes.push(match &cache {
        CacheVolume::HostPath(p) => map([
            ("name", "cache".into()),
            (
                "hostPath",
                map([
                    ("path", p.as_str().into()),
                    ("type", "DirectoryOrCreate".into()),
                ]),
            ),
        ]),
        CacheVolume::Claim(c) => map([
            ("name", "cache".into()),
            (
                "persistentVolumeClaim",
                map([("claimName", c.as_str().into())]),
            ),
        ]),
    });

    let container = map([
        ("name", "agent".into()),
        ("image", image.as_str().into()),
        ("imagePullPolicy", "IfNotPresent".into()),
        ("command", Value::Sequence(vec![BINARY.into()])),
        ("args", Value::Sequence(args)),
        ("workingDir", WORKDIR.into()),
        ("env", Value::Sequence(env_vars)),
        ("resources", resources(schedule.resources.as_ref())),
        (
            "securityContext",
            map([
                ("allowPrivilegeEscalation", false.into()),
                ("readOnlyRootFilesystem", true.into()),
                ("runAsNonRoot", true.into()),
                (
                    "capabilities",
                    map([("drop", Value::Sequence(vec!["ALL".into()]))]),
                ),
            ]),
        ),
        ("volumeMounts", Value::Sequence(mounts)),
    ]);
    let labels = map([
        ("app.kubernetes.io/name", "agentenv".into()),
        ("app.kubernetes.io/instance", name.as_str().into()),
        ("app.kubernetes.io/managed-by", "agentenv".into()),
    ]);
    let pod = map([
        ("metadata", map([("labels", labels.clone())])),
        (
            "spec",
            map([
                ("restartPolicy", "Never".into()),
                ("automountServiceAccountToken", false.into()),
                (
                    "securityContext",
                    map([
                        ("runAsNonRoot", true.into()),
                        ("runAsUser", RUN_AS.into()),
                        ("runAsGroup", RUN_AS.into()),
                        ("fsGroup", RUN_AS.into()),
                        ("seccompProfile", map([("type", "RuntimeDefault".into())])),
                    ]),
                ),
                ("containers", Value::Sequence(vec![container])),
                ("volumes", Value::Sequence(volumes)),
            ]),
        ),
    ]);
    let job_spec = map([
        ("backoffLimit", backoff.into()),
        ("activeDeadlineSeconds", deadline.into()),
        ("template", pod),
    ]);
    let metadata = map([("name", name.as_str().into()), ("labels", labels.clone())]);
    let workload = match &cron {
        Some(cron) => {
            let mut spec = map([("schedule", cron.as_str().into())]);
            if let (Some(tz), Value::Mapping(m)) = (&schedule.time_zone, &mut spec) {
                m.insert("timeZone".into(), tz.as_str().into());
            }
            if let Value::Mapping(m) = &mut spec {
                // A run still going when the next is due: skip the next, never run two at once.
                m.insert("concurrencyPolicy".into(), "Forbid".into());
                m.insert("startingDeadlineSeconds".into(), 600.into());
                m.insert("successfulJobsHistoryLimit".into(), 3.into());
                m.insert("failedJobsHistoryLimit".into(), 3.into());
                m.insert("jobTemplate".into(), map([("spec", job_spec)]));
            }
            map([
                ("apiVersion", "batch/v1".into()),
                ("kind", "CronJob".into()),
                ("metadata", metadata),
                ("spec", spec),
            ])
        }
        None => map([
            ("apiVersion", "batch/v1".into()),
            ("kind", "Job".into()),
            ("metadata", metadata),
            ("spec", job_spec),
        ]),
    };

    let mut docs = Vec::new();
    if !files.is_empty() {
        let data: Mapping = files
            .iter()
            .map(|(key, _, text)| (Value::from(key.as_str()), Value::from(text.as_str())))
            .collect();
        docs.push(map([
            ("apiVersion", "v1".into()),
            ("kind", "ConfigMap".into()),
            (
                "metadata",
                map([
                    ("name", format!("{name}-spec").into()),
                    ("labels", labels.clone()),
                ]),
            ),
            ("data", Value::Mapping(data)),
        ]));
    }
    docs.push(workload);

    let mut yaml = header(
        opts,
        needs_identity,
        &age_secret,
        &from_env,
        &env_secret,
        &cache,
    );
    for doc in docs {
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml::to_string(&doc).expect("plain YAML"));
    }
    Ok(Export { yaml, warnings })
}

/// The comment at the top: where the manifests come from, and the Secrets to create first.
fn header(
    opts: &Options,
    needs_identity: bool,
    age_secret: &str,
    from_env: &[String],
    env_secret: &str,
    cache: &CacheVolume,
) -> String {
    let mut h = format!(
        "# Generated by `agentenv export kubernetes {}`; regenerate rather than edit.\n",
        opts.env.display()
    );
    h.push_str("# Secrets are referenced, never inlined. Create them before applying:\n");
    if needs_identity {
        h.push_str(&format!(
            "#   kubectl create secret generic {age_secret} --from-file=key.txt=PATH/TO/AGE-KEY\n"
        ));
    }
    if !from_env.is_empty() {
        let literals: Vec<String> = from_env
            .iter()
            .map(|n| format!("--from-literal={n}=…"))
            .collect();
        h.push_str(&format!(
            "#   kubectl create secret generic {env_secret} {}\n",
            literals.join(" ")
        ));
    }
    if !needs_identity && from_env.is_empty() {
        h.push_str("#   (none: this spec has no secrets)\n");
    }
    if let CacheVolume::HostPath(p) = cache {
        h.push_str(&format!(
            "# The clone cache is {p} on each node: it must be writable by uid {RUN_AS}\n# (kubelet creates a missing hostPath directory owned by root).\n"
        ));
    }
    h
}

fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Mapping(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

fn mount(name: &str, path: &str, read_only: bool) -> Value {
    let mut m = map([("name", name.into()), ("mountPath", path.into())]);
    if read_only && let Value::Mapping(m) = &mut m {
        m.insert("readOnly".into(), true.into());
    }
    m
}

/// Requests and limits: the spec's, else enough for git and a typical agent.
fn resources(spec: Option<&Resources>) -> Value {
    let amounts = |a: Option<&ResourceAmounts>, cpu: &str, memory: &str| {
        let a = a.cloned().unwrap_or_default();
        let mut m = Mapping::new();
        m.insert("cpu".into(), a.cpu.unwrap_or_else(|| cpu.into()).into());
        m.insert(
            "memory".into(),
            a.memory.unwrap_or_else(|| memory.into()).into(),
        );
        if let Some(s) = a.ephemeral_storage {
            m.insert("ephemeral-storage".into(), s.into());
        }
        Value::Mapping(m)
    };
    map([
        (
            "requests",
            amounts(spec.and_then(|r| r.requests.as_ref()), "500m", "1Gi"),
        ),
        (
            "limits",
            amounts(spec.and_then(|r| r.limits.as_ref()), "2", "4Gi"),
        ),
    ])
}

/// The objects' base name from the spec's `name`: a DNS label, short enough that
/// `NAME-age-key` and the Jobs a CronJob names after itself stay within Kubernetes' limits.
fn object_name(spec_name: &str) -> Result<String> {
    let mut n: String = spec_name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    n.truncate(44);
    let n = n.trim_matches('-').to_string();
    if n.is_empty() {
        return Err(Error::input(format!(
            "the spec's name `{spec_name}` gives no Kubernetes object name"
        ))
        .with_hint("start `name:` with a letter or digit"));
    }
    Ok(n)
}

/// A DNS-1123 subdomain (ConfigMap, Secret, PVC names).
fn dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_volumes_parse() {
        assert_eq!(
            CacheVolume::parse("hostpath:/var/cache/x/").unwrap(),
            CacheVolume::HostPath("/var/cache/x".into())
        );
        assert_eq!(
            CacheVolume::parse("pvc:agent-cache").unwrap(),
            CacheVolume::Claim("agent-cache".into())
        );
        for bad in [
            "hostpath:relative",
            "hostpath:/a/../b",
            "pvc:Bad_Name",
            "s3:x",
            "pvc:",
        ] {
            assert!(CacheVolume::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn object_names_are_dns_labels() {
        assert_eq!(
            object_name("Payments_Agent.v2").unwrap(),
            "payments-agent-v2"
        );
        assert!(object_name("___").is_err());
        assert!(object_name(&"a".repeat(80)).unwrap().len() <= 44);
    }
}
