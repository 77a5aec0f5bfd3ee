//! Where the secrets are not: `provision` stops before anything runs, at the line that names
//! the secret.

use crate::support::secrets::Sandbox;

#[test]
fn provision_points_at_the_line_that_names_an_unresolved_secret() {
    let sb = Sandbox::new();
    let key = sb.key("keys/alice.txt");
    sb.write_spec(&[&key.public], &["BB_TOKEN"]);
    let work = sb.path("work");
    let spec = sb.spec.to_str().unwrap();
    sb.run(&["provision", spec, "--workdir", work.to_str().unwrap()], "", &[])
        .failed(2)
        .says(&format!(
            "{spec}:7:61: providers.bb.auth.token: secret BB_TOKEN is listed in `secrets.from_env`, but the environment variable BB_TOKEN is not set"
        ))
        .says("hint: set BB_TOKEN in the environment agentenv runs in");
    assert!(!work.exists(), "nothing was created");
}
