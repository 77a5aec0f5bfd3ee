//! `agentenv secret create|update|remove|list|rekey` and resolution, against real files.

use crate::support::secrets::*;
use crate::support::skip_or_fail_in_ci;

const TEAM_VALUE: &str = "team-canary-7f3a9c";
const OTHER_VALUE: &str = "other-canary-2b8e1d";
const PERSONAL_VALUE: &str = "personal-canary-5d0c4e";

#[test]
fn team_secret_round_trip_and_list_shows_no_values() {
    let sb = Sandbox::new();
    let key = sb.key("keys/alice.txt");
    sb.write_spec(&[&key.public], &[]);
    let kf = key.file.to_str().unwrap();

    sb.secret(
        "create",
        &["--team", "BB_TOKEN"],
        &format!("{TEAM_VALUE}\n"),
        &[],
    )
    .ok()
    .says("created team secret BB_TOKEN")
    .hides(&[TEAM_VALUE]);
    let text = std::fs::read_to_string(sb.team_file()).unwrap();
    assert!(!text.contains(TEAM_VALUE));
    assert!(
        text.contains(&key.public),
        "recipients are recorded:\n{text}"
    );

    // One trailing newline from stdin is not part of the value.
    let got = sb.resolve(&[("AGENTENV_AGE_KEY_FILE", kf)]).unwrap();
    assert_eq!(got.get("BB_TOKEN"), Some(TEAM_VALUE));
    assert_eq!(
        got.env_vars().collect::<Vec<_>>(),
        vec![("BB_TOKEN", TEAM_VALUE)]
    );

    let list = sb.secret("list", &[], "", &[]);
    list.ok()
        .says("BB_TOKEN")
        .says("team")
        .says("providers.bb.auth.token")
        .says(&key.public)
        .hides(&[TEAM_VALUE]);
    let json = sb.secret("list", &["--json"], "", &[]);
    json.ok().hides(&[TEAM_VALUE]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["secrets"][0]["name"], "BB_TOKEN");
    assert_eq!(v["secrets"][0]["source"], "team");
    assert_eq!(v["team"]["recipients"][0], key.public.as_str());
    assert_eq!(v["team"]["rekey_needed"], false);
}

#[test]
fn update_changes_only_its_own_lines_and_names_stay_sorted() {
    let sb = Sandbox::new();
    let key = sb.key("keys/alice.txt");
    sb.write_spec(&[&key.public], &[]);
    for (name, value) in [
        ("ZED_TOKEN", OTHER_VALUE),
        ("BB_TOKEN", TEAM_VALUE),
        ("MID", "middle-value"),
    ] {
        sb.secret("create", &["--team", name], value, &[]).ok();
    }
    let before = std::fs::read_to_string(sb.team_file()).unwrap();
    let order: Vec<&str> = before.lines().filter(|l| l.ends_with(": |")).collect();
    assert_eq!(order, ["BB_TOKEN: |", "MID: |", "ZED_TOKEN: |"]);
    let mid_before = armored(&sb.team_file(), "MID");

    sb.secret("update", &["--team", "MID"], "middle-value-2", &[])
        .ok()
        .says("updated team secret MID");
    let after = std::fs::read_to_string(sb.team_file()).unwrap();
    assert_ne!(armored(&sb.team_file(), "MID"), mid_before);
    assert_eq!(
        armored(&sb.team_file(), "BB_TOKEN"),
        armored_in(&before, "BB_TOKEN")
    );
    assert_eq!(
        armored(&sb.team_file(), "ZED_TOKEN"),
        armored_in(&before, "ZED_TOKEN")
    );
    // Only MID's lines differ: without its block, the files are identical.
    let without_mid = |text: &str, block: &str| {
        let indented: String = block.lines().map(|l| format!("  {l}\n")).collect();
        text.replacen(&indented, "", 1)
    };
    assert_eq!(
        without_mid(&before, &mid_before),
        without_mid(&after, &armored(&sb.team_file(), "MID"))
    );

    let got = sb
        .resolve(&[("AGENTENV_AGE_KEY_FILE", key.file.to_str().unwrap())])
        .unwrap();
    assert_eq!(got.get("MID"), Some("middle-value-2"));

    sb.secret("remove", &["--team", "MID"], "", &[])
        .ok()
        .says("removed team secret MID");
    let text = std::fs::read_to_string(sb.team_file()).unwrap();
    assert!(!text.contains("MID:"));
    assert!(text.contains("BB_TOKEN:") && text.contains("ZED_TOKEN:"));
}

fn armored_in(text: &str, name: &str) -> String {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    armored(f.path(), name)
}

#[test]
fn create_refuses_existing_update_and_remove_refuse_missing() {
    let sb = Sandbox::new();
    let key = sb.key("keys/alice.txt");
    sb.write_spec(&[&key.public], &[]);
    sb.secret("create", &["--team", "BB_TOKEN"], TEAM_VALUE, &[])
        .ok();
    let snap = sb.snapshot();
    sb.secret("create", &["--team", "BB_TOKEN"], OTHER_VALUE, &[])
        .failed(2)
        .says("already exists")
        .says("update")
        .hides(&[OTHER_VALUE, TEAM_VALUE]);
    sb.secret("update", &["--team", "NOPE"], OTHER_VALUE, &[])
        .failed(4)
        .says("NOPE is not in");
    sb.secret("remove", &["--personal", "NOPE"], "", &[])
        .failed(4)
        .says("NOPE is not in");
    assert_eq!(sb.snapshot(), snap);
}

#[test]
fn personal_secret_generates_a_private_key_and_wins_over_team() {
    let sb = Sandbox::new();
    let team = sb.key("keys/team.txt");
    sb.write_spec(&[&team.public], &[]);
    sb.secret("create", &["--team", "BB_TOKEN"], TEAM_VALUE, &[])
        .ok();

    // No key anywhere: one is generated at the default place, 0600, and the user is told.
    sb.secret("create", &["--personal", "BB_TOKEN"], PERSONAL_VALUE, &[])
        .ok()
        .says("generated a new age key at")
        .says(sb.default_key_file().to_str().unwrap())
        .hides(&[PERSONAL_VALUE]);
    assert_eq!(mode(&sb.default_key_file()), 0o600);
    assert_eq!(mode(&sb.personal_file()), 0o600);
    assert_eq!(mode(sb.personal_file().parent().unwrap()), 0o700);

    // The default key decrypts the personal value; the team value is shadowed, so the team
    // key is not even needed.
    let got = sb.resolve(&[]).unwrap();
    assert_eq!(got.get("BB_TOKEN"), Some(PERSONAL_VALUE));

    sb.secret("list", &[], "", &[])
        .ok()
        .says("personal (overrides team")
        .hides(&[PERSONAL_VALUE, TEAM_VALUE]);

    // A second personal secret reuses the key: no new key. (The spec declares them: it
    // passes only the names it uses to its steps.)
    let spec = std::fs::read_to_string(&sb.spec).unwrap();
    sb.write_spec_text(&format!("{spec}  personal: [MY_OTHER, MY_THIRD]\n"));
    sb.secret("create", &["--personal", "MY_OTHER"], OTHER_VALUE, &[])
        .ok()
        .says("created personal secret MY_OTHER");
    let out = sb.secret("create", &["--personal", "MY_THIRD"], "third-value", &[]);
    assert!(!out.all().contains("generated"), "{}", out.all());
}

#[test]
fn personal_file_location_can_be_overridden() {
    let sb = Sandbox::new();
    let key = sb.key("keys/me.txt");
    sb.write_spec(&[&key.public], &[]);
    let elsewhere = sb.path("elsewhere/mine.yaml");
    let vars = [
        ("AGENTENV_PERSONAL_FILE", elsewhere.to_str().unwrap()),
        ("AGENTENV_AGE_KEY", key.secret.as_str()),
    ];
    sb.secret("create", &["--personal", "BB_TOKEN"], PERSONAL_VALUE, &vars)
        .ok()
        .says("elsewhere/mine.yaml");
    assert!(elsewhere.exists());
    assert!(!sb.personal_file().exists());
    assert!(!sb.default_key_file().exists(), "AGENTENV_AGE_KEY was used");
    let got = sb.resolve(&vars).unwrap();
    assert_eq!(got.get("BB_TOKEN"), Some(PERSONAL_VALUE));
}

#[test]
fn from_env_is_used_only_for_listed_names_in_neither_file() {
    let sb = Sandbox::new();
    let key = sb.key("keys/alice.txt");
    sb.write_spec(&[&key.public], &["BB_TOKEN"]);
    // Not in any file, listed in from_env: the process environment supplies it, no key needed.
    let got = sb.resolve(&[("BB_TOKEN", "from-env-value")]).unwrap();
    assert_eq!(got.get("BB_TOKEN"), Some("from-env-value"));

    // Listed but not set: an error naming it and who uses it.
    let err = sb.resolve(&[]).unwrap_err();
    assert!(err.message.contains("BB_TOKEN"), "{err}");
    assert!(err.message.contains("providers.bb.auth.token"), "{err}");

    // Not listed in from_env: the environment variable is ignored.
    sb.write_spec(&[&key.public], &[]);
    let err = sb.resolve(&[("BB_TOKEN", "from-env-value")]).unwrap_err();
    assert!(
        err.message.contains("secret BB_TOKEN is in neither"),
        "{err}"
    );
    assert!(!err.to_string().contains("from-env-value"));

    // In the team file: the file wins over the environment.
    sb.write_spec(&[&key.public], &["BB_TOKEN"]);
    sb.secret("create", &["--team", "BB_TOKEN"], TEAM_VALUE, &[])
        .ok();
    let got = sb
        .resolve(&[
            ("BB_TOKEN", "from-env-value"),
            ("AGENTENV_AGE_KEY_FILE", key.file.to_str().unwrap()),
        ])
        .unwrap();
    assert_eq!(got.get("BB_TOKEN"), Some(TEAM_VALUE));
}

#[test]
fn no_secrets_block_and_no_auth_needs_no_identity() {
    let sb = Sandbox::new();
    sb.write_spec_text("version: 1\nname: plain\n");
    let got = sb.resolve(&[]).unwrap();
    assert_eq!(got.names().count(), 0);
    // A broken personal file is not even read.
    std::fs::create_dir_all(sb.personal_file().parent().unwrap()).unwrap();
    std::fs::write(sb.personal_file(), "not: [yaml").unwrap();
    assert!(sb.resolve(&[]).unwrap().is_empty());
}

#[test]
fn rekey_reencrypts_to_the_current_recipients() {
    let sb = Sandbox::new();
    let alice = sb.key("keys/alice.txt");
    let bob = sb.key("keys/bob.txt");
    sb.write_spec(&[&alice.public], &[]);
    sb.secret("create", &["--team", "BB_TOKEN"], TEAM_VALUE, &[])
        .ok();
    sb.secret("create", &["--team", "OTHER"], OTHER_VALUE, &[])
        .ok();
    let bob_vars = [("AGENTENV_AGE_KEY_FILE", bob.file.to_str().unwrap())];
    let alice_vars = [("AGENTENV_AGE_KEY_FILE", alice.file.to_str().unwrap())];
    assert_eq!(
        sb.resolve(&bob_vars).unwrap_err().kind,
        agentenv::Kind::Auth
    );

    // Bob is added to the spec: adding a secret now would give values different readers.
    sb.write_spec(&[&alice.public, &bob.public], &[]);
    let snap = sb.snapshot();
    sb.secret("create", &["--team", "THIRD"], "third-value", &[])
        .failed(2)
        .says("rekey");
    sb.secret("list", &[], "", &[]).ok().says("rekey");
    // Bob cannot rekey: he cannot decrypt.
    sb.secret("rekey", &[], "", &bob_vars)
        .failed(3)
        .says(&alice.public)
        .hides(&[TEAM_VALUE, OTHER_VALUE]);
    assert_eq!(sb.snapshot(), snap);

    sb.secret("rekey", &[], "", &alice_vars)
        .ok()
        .says("re-encrypted 2 team secrets")
        .hides(&[TEAM_VALUE, OTHER_VALUE]);
    let got = sb.resolve(&bob_vars).unwrap();
    assert_eq!(got.get("BB_TOKEN"), Some(TEAM_VALUE));
    assert_eq!(got.get("OTHER"), Some(OTHER_VALUE));

    // Alice is removed: after rekey she can no longer decrypt, and is told to rotate.
    sb.write_spec(&[&bob.public], &[]);
    sb.secret("rekey", &[], "", &bob_vars).ok().says("rotate");
    assert_eq!(
        sb.resolve(&alice_vars).unwrap_err().kind,
        agentenv::Kind::Auth
    );
    sb.secret("create", &["--team", "THIRD"], "third-value", &[])
        .ok();
}

#[test]
fn ssh_keys_work_as_recipients_and_identities() {
    let sb = Sandbox::new();
    let ssh_dir = sb.home.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let keyfile = ssh_dir.join("id_ed25519");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "dev@laptop", "-f"])
        .arg(&keyfile)
        .status();
    let Ok(status) = status else {
        return skip_or_fail_in_ci("ssh-keygen is not installed: `apt-get install openssh-client`");
    };
    assert!(status.success());
    let public = std::fs::read_to_string(ssh_dir.join("id_ed25519.pub")).unwrap();
    sb.write_spec(&[public.trim()], &[]);
    sb.secret("create", &["--team", "BB_TOKEN"], TEAM_VALUE, &[])
        .ok();
    // ~/.ssh/id_ed25519 is a default identity.
    let got = sb.resolve(&[]).unwrap();
    assert_eq!(got.get("BB_TOKEN"), Some(TEAM_VALUE));
    // The comment in the spec does not make the recipient list differ.
    sb.secret("create", &["--team", "OTHER"], OTHER_VALUE, &[])
        .ok();
}

#[test]
fn digest_is_keyed_and_changes_with_the_value() {
    use agentenv::secrets::ResolvedSecrets;
    let one = |v: &str| {
        ResolvedSecrets::from_values([("TOKEN".to_string(), v.to_string())].into_iter().collect())
    };
    let a = one("value-one").digest("TOKEN").unwrap();
    assert_eq!(a, one("value-one").digest("TOKEN").unwrap());
    assert_ne!(a, one("value-two").digest("TOKEN").unwrap());
    assert!(!a.contains("value-one"));
    let keyed = one("value-one").with_digest_key(b"0123456789abcdef0123456789abcdef");
    assert_ne!(keyed.digest("TOKEN").unwrap(), a);
    assert!(one("value-one").digest("NOPE").is_none());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".agentenv/fingerprint.key");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let k1 = agentenv::provision::state::fingerprint_key(dir.path()).unwrap();
    let k2 = agentenv::provision::state::fingerprint_key(dir.path()).unwrap();
    assert_eq!(k1, k2);
    assert_eq!(k1.len(), 32);
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn concurrent_creates_lose_nothing() {
    let sb = Sandbox::new();
    let key = sb.key("keys/alice.txt");
    sb.write_spec(&[&key.public], &[]);
    let names: Vec<String> = (0..6).map(|i| format!("PARALLEL_{i}")).collect();
    std::thread::scope(|s| {
        for name in &names {
            let sb = &sb;
            s.spawn(move || {
                sb.secret(
                    "create",
                    &["--team", name],
                    &format!("value-of-{name}"),
                    &[],
                )
                .ok();
                sb.secret(
                    "create",
                    &["--personal", name],
                    &format!("mine-{name}"),
                    &[],
                )
                .ok();
            });
        }
    });
    let team = std::fs::read_to_string(sb.team_file()).unwrap();
    let personal = std::fs::read_to_string(sb.personal_file()).unwrap();
    for name in &names {
        assert!(team.contains(&format!("{name}: |")), "{name} lost:\n{team}");
        assert!(
            personal.contains(&format!("{name}: |")),
            "{name} lost:\n{personal}"
        );
    }
}
