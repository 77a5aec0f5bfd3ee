//! `agentenv export kubernetes`: the committed example stays equal to the export of its spec,
//! every variant validates offline against the schemas of the three newest Kubernetes minor
//! versions (the `kubernetes-validate` package), and the pod gets what the design promises.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

use crate::support::provision::spec;
use crate::support::{Out, agentenv_cmd};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CANARY: &str = "CANARY-export-5d1e9a7c";

fn export(args: &[&str]) -> Out {
    let mut all = vec!["export", "kubernetes"];
    all.extend_from_slice(args);
    agentenv_cmd(&all)
        .current_dir(ROOT)
        .env("SENTRY_DSN", CANARY)
        .env("BB_TOKEN", CANARY)
        .output()
        .expect("agentenv runs")
        .into()
}

fn docs(yaml: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{e}:\n{yaml}")))
        .filter(|d| !d.is_null())
        .collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn the_committed_example_is_the_export_of_its_spec() {
    let out = export(&["environments/payments-cloud.yaml"]);
    out.ok();
    let committed =
        std::fs::read_to_string(Path::new(ROOT).join("deploy/payments-cloud.k8s.yaml")).unwrap();
    assert!(
        out.stdout == committed,
        "deploy/payments-cloud.k8s.yaml is stale: regenerate it with\n  cargo run -q -- export kubernetes environments/payments-cloud.yaml > deploy/payments-cloud.k8s.yaml"
    );
}

/// A spec with a provider token from the environment, a team file and an agent command.
fn fixture(dir: &Path, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::write(dir.join("secrets/team.yaml"), "recipients: []\n").unwrap();
    spec(
        dir,
        &format!(
            "providers:\n  bb:\n    kind: cloud\n    workspace: acme\n    auth: {{type: access-token, token: BB_TOKEN}}\nrepos:\n  - {{provider: bb, slug: api}}\nsecrets:\n  team: secrets/team.yaml\n  from_env: [BB_TOKEN, SENTRY_DSN]\nagent:\n  command: [my-agent, --fix]\n{extra}"
        ),
    )
}

#[test]
fn the_pod_runs_agentenv_with_secrets_referenced_and_a_locked_down_container() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixture(dir.path(), "");
    let out = export(&[spec.to_str().unwrap(), "--schedule", "*/30 * * * *"]);
    out.ok().hides(&[CANARY]);
    let d = docs(&out.stdout);
    let config = kind(&d, "ConfigMap");
    assert_eq!(config["metadata"]["name"], "test-spec");
    assert_eq!(config["data"]["team.yaml"], "recipients: []\n");
    let cron = kind(&d, "CronJob");
    assert_eq!(cron["spec"]["schedule"], "*/30 * * * *");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let job = &cron["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["backoffLimit"], 0);
    assert_eq!(job["activeDeadlineSeconds"], 3600);
    let pod = &job["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["runAsUser"],
        agentenv::export::kubernetes::RUN_AS
    );
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["command"][0], agentenv::export::kubernetes::BINARY);
    let args: Vec<&str> = c["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "run",
            "/etc/agentenv/env/env.yaml",
            "--workdir",
            "/work",
            "--cache-dir",
            "/var/cache/agentenv",
            "--",
            "my-agent",
            "--fix"
        ]
    );
    let env = c["env"].as_sequence().unwrap();
    let var = |n: &str| env.iter().find(|e| e["name"] == n).cloned();
    assert_eq!(
        var("AGENTENV_AGE_KEY_FILE").unwrap()["value"],
        "/var/run/secrets/agentenv/age/key.txt"
    );
    for name in ["BB_TOKEN", "SENTRY_DSN"] {
        let v = var(name).unwrap();
        assert_eq!(v["valueFrom"]["secretKeyRef"]["name"], "test-secrets");
        assert_eq!(v["valueFrom"]["secretKeyRef"]["key"], name);
        assert!(v.get("value").is_none(), "never inlined");
    }
    assert!(var("AGENTENV_AGE_KEY").is_none());
    let volumes = pod["volumes"].as_sequence().unwrap();
    let volume = |n: &str| volumes.iter().find(|v| v["name"] == n).unwrap().clone();
    for scratch in ["work", "home", "tmp"] {
        assert!(volume(scratch)["emptyDir"].is_mapping(), "{scratch}");
    }
    assert_eq!(volume("age-key")["secret"]["secretName"], "test-age-key");
    assert_eq!(
        volume("age-key")["secret"]["defaultMode"],
        0o440,
        "root-owned, group fsGroup: readable by the pod's user through the group only"
    );
    assert_eq!(
        volume("cache")["hostPath"]["path"],
        "/var/cache/agentenv/test",
        "one cache directory per environment"
    );
    assert_eq!(
        volume("spec")["configMap"]["items"][1]["path"],
        "secrets/team.yaml",
        "the team file where the spec looks for it"
    );
    for k in ["requests", "limits"] {
        assert!(c["resources"][k]["cpu"].is_string() && c["resources"][k]["memory"].is_string());
    }

    // Without a schedule: a Job; a PVC cache; the spec from the image: no ConfigMap.
    let out = export(&[
        spec.to_str().unwrap(),
        "--cache",
        "pvc:agent-cache",
        "--spec-in-image",
        "--image",
        "registry.example/agentenv:1",
        "--",
        "other-agent",
    ]);
    out.ok();
    let d = docs(&out.stdout);
    assert_eq!(d.len(), 1, "{}", out.stdout);
    let job = kind(&d, "Job");
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["image"], "registry.example/agentenv:1");
    assert_eq!(pod["containers"][0]["args"][7], "other-agent");
    let volumes = pod["volumes"].as_sequence().unwrap();
    assert!(volumes.iter().all(|v| v["name"] != "spec"));
    let cache = volumes.iter().find(|v| v["name"] == "cache").unwrap();
    assert_eq!(cache["persistentVolumeClaim"]["claimName"], "agent-cache");
}

#[test]
fn the_spec_schedule_block_is_the_default_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixture(
        dir.path(),
        "schedule:\n  cron: '0 3 * * *'\n  image: img:2\n  deadline: 10m\n  backoff_limit: 2\n  cache: pvc:shared\n  resources: {requests: {cpu: 250m, memory: 512Mi}}\n",
    );
    let out = export(&[spec.to_str().unwrap()]);
    out.ok();
    let d = docs(&out.stdout);
    let cron = kind(&d, "CronJob");
    assert_eq!(cron["spec"]["schedule"], "0 3 * * *");
    let job = &cron["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["activeDeadlineSeconds"], 600);
    assert_eq!(job["backoffLimit"], 2);
    let c = &job["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "img:2");
    assert_eq!(c["resources"]["requests"]["cpu"], "250m");
    let out = export(&[
        spec.to_str().unwrap(),
        "--schedule",
        "@hourly",
        "--image",
        "img:3",
    ]);
    let d = docs(&out.stdout);
    let cron = kind(&d, "CronJob");
    assert_eq!(cron["spec"]["schedule"], "@hourly");
    assert_eq!(
        cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
        "img:3"
    );
}

#[test]
fn what_cannot_run_on_a_cluster_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = fixture(dir.path(), "");
    let s = spec_path.to_str().unwrap();
    export(&[s, "--schedule", "every morning"])
        .failed(2)
        .says("--schedule");
    export(&[s, "--cache", "nfs:/x"])
        .failed(2)
        .says("hostpath:");
    let local = spec(
        dir.path(),
        "repos:\n  - url: ../somewhere\n    path: x\nagent:\n  command: [a]\n",
    );
    export(&[local.to_str().unwrap()])
        .failed(2)
        .says("local path");
    // A file:// URL is a local path too; an scp-like `host:repo.git` is a network URL.
    let file = spec(
        dir.path(),
        "repos:\n  - url: file:///srv/repo.git\n    path: x\nagent:\n  command: [a]\n",
    );
    export(&[file.to_str().unwrap()])
        .failed(2)
        .says("local path");
    let scp = spec(
        dir.path(),
        "repos:\n  - url: git.example:team/repo.git\n    path: x\nagent:\n  command: [a]\n",
    );
    export(&[scp.to_str().unwrap()]).ok();
    let bare = spec(dir.path(), "repos: []\n");
    export(&[bare.to_str().unwrap()])
        .failed(2)
        .says("agent.command");
}

/// `kubernetes-validate` and the newest three Kubernetes minor versions it bundles.
fn validator() -> Option<(PathBuf, Vec<String>)> {
    let exe = which("kubernetes-validate")?;
    let out = Command::new("python3")
        .args([
            "-c",
            "import kubernetes_validate, os; d = os.path.join(os.path.dirname(kubernetes_validate.__file__), 'kubernetes-json-schema'); print('\\n'.join(os.listdir(d)))",
        ])
        .output()
        .ok()?;
    let mut versions: Vec<(u32, u32, u32)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.strip_prefix('v')?
                .strip_suffix("-local-strict")
                .map(str::to_string)
        })
        .filter_map(|v| {
            let mut p = v.split('.').map(|n| n.parse::<u32>().ok());
            Some((p.next()??, p.next()??, p.next()??))
        })
        .collect();
    versions.sort();
    versions.dedup_by_key(|v| (v.0, v.1));
    let newest: Vec<String> = versions
        .iter()
        .rev()
        .take(3)
        .map(|(a, b, c)| format!("{a}.{b}.{c}"))
        .collect();
    (newest.len() == 3).then_some((exe, newest))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

#[test]
fn the_manifests_validate_against_the_three_newest_kubernetes_versions() {
    let Some((exe, versions)) = validator() else {
        return crate::support::skip_or_fail_in_ci(
            "kubernetes-validate is not installed (pip install kubernetes-validate)",
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let spec_path = fixture(dir.path(), "");
    let s = spec_path.to_str().unwrap();
    let with_schedule = fixture(
        &dir.path().join("scheduled"),
        "schedule:\n  cron: '0 6 * * 1-5'\n  time_zone: Europe/Berlin\n  resources: {limits: {ephemeral_storage: 4Gi}}\n",
    );
    let variants: Vec<(&str, Vec<&str>)> = vec![
        ("example", vec!["environments/payments-cloud.yaml"]),
        ("cronjob", vec![s, "--schedule", "*/30 * * * *"]),
        ("job with a pvc", vec![s, "--cache", "pvc:agent-cache"]),
        (
            "spec in image",
            vec![s, "--spec-in-image", "--schedule", "@daily"],
        ),
        ("schedule block", vec![with_schedule.to_str().unwrap()]),
    ];
    for (what, args) in variants {
        let out = export(&args);
        out.ok();
        let file = dir.path().join(format!("{}.yaml", what.replace(' ', "-")));
        std::fs::write(&file, &out.stdout).unwrap();
        for v in &versions {
            let check: Out = Command::new(&exe)
                .args(["--strict", "--kubernetes-version", v])
                .arg(&file)
                .output()
                .unwrap()
                .into();
            assert_eq!(
                check.code,
                0,
                "{what} does not validate against Kubernetes {v}:\n{}\n{}",
                check.all(),
                out.stdout
            );
            assert!(check.stdout.contains("passed"), "{}", check.all());
        }
    }
}
