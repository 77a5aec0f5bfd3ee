//! Personal secrets reach a spec only when it uses them (a provider's auth field or
//! `secrets.personal`): the personal file serves every spec one runs. Storing a personal value
//! that a spec does not use is refused, and a step that expands a secret-like variable nothing
//! provides is warned about.

use crate::support::secrets::Sandbox;

const VALUE: &str = "personal-canary-81ab3c";

const STEP: &str =
    "setup:\n  - name: use\n    run: echo \"token [$MY_TOKEN] has ${#MY_TOKEN} characters\"\n";

#[test]
fn a_personal_secret_the_spec_does_not_use_is_refused_at_create() {
    let sb = Sandbox::new();
    // No `secrets:` block at all: the case that used to say "created" and then ignore it.
    sb.write_spec_text(&format!("version: 1\nname: plain\n{STEP}"));
    let before = sb.snapshot();
    sb.secret("create", &["--personal", "MY_TOKEN"], VALUE, &[])
        .failed(2)
        .says("does not use MY_TOKEN")
        .says("add `personal: [MY_TOKEN]` under `secrets:`")
        .hides(&[VALUE]);
    assert_eq!(sb.snapshot(), before, "no key, no personal file");
}

#[test]
fn a_declared_personal_secret_reaches_the_steps_masked() {
    let sb = Sandbox::new();
    sb.write_spec_text(&format!(
        "version: 1\nname: plain\nsecrets:\n  personal: [MY_TOKEN]\n{STEP}"
    ));
    sb.secret("create", &["--personal", "MY_TOKEN"], VALUE, &[])
        .ok()
        .says("created personal secret MY_TOKEN")
        .hides(&[VALUE]);
    sb.secret("list", &[], "", &[])
        .ok()
        .says("MY_TOKEN")
        .says("personal")
        .hides(&[VALUE]);
    let work = sb.path("work");
    let spec = sb.spec.to_str().unwrap();
    let out = sb.run(
        &["provision", spec, "--workdir", work.to_str().unwrap()],
        "",
        &[],
    );
    out.ok()
        .says(&format!("token [***] has {} characters", VALUE.len()))
        .hides(&[VALUE]);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn an_undeclared_secret_like_variable_in_a_step_is_warned_about_by_provision() {
    let sb = Sandbox::new();
    sb.write_spec_text(&format!("version: 1\nname: plain\n{STEP}"));
    let work = sb.path("work");
    let spec = sb.spec.to_str().unwrap();
    for extra in [&[][..], &["--json"][..], &["--dry-run"][..]] {
        let mut args = vec!["provision", spec, "--workdir", work.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = sb.run(&args, "", &[]);
        // A warning, not a failure: the step runs and sees it empty.
        out.ok().says(&format!(
            "{spec}:5:10: warning: setup[0].run: step `use` uses $MY_TOKEN, which no secret of this spec provides"
        ));
        assert!(
            !out.stdout.contains("warning"),
            "warnings go to stderr, stdout stays parseable: {extra:?}\n{}",
            out.stdout
        );
    }
}
