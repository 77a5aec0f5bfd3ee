//! Semantic checks: what the schema cannot say. Each problem points at its node in the YAML
//! and says how to fix it; all of them are collected, not just the first.

use std::collections::BTreeMap;

use super::diagnostic::{Diagnostic, backticked, closest};
use super::model::{Auth, Environment, Provider, ProviderKind, looks_like_url};
use super::yaml::{KeyPath, Node};
use crate::scope::Scope;

/// Where provision keeps its state inside the workdir; no checkout may live there.
const STATE_DIR: &str = ".agentenv";

/// Every problem, with the path of the node it is about.
///
/// `providers_known` is false when the `providers` section had to be set aside for shape
/// problems: references to providers are then not checked, as they would all look missing.
pub fn check(
    env: &Environment,
    tree: &Node,
    providers_known: bool,
) -> (Scope, Vec<(KeyPath, Diagnostic)>) {
    let mut c = Checker {
        tree,
        providers_known,
        out: Vec::new(),
    };
    c.version(env);
    for (name, provider) in &env.providers {
        c.provider(name, provider);
    }
    let scope = c.scope(env);
    c.repos(env, &scope);
    c.secrets(env);
    c.setup(env);
    (scope, c.out)
}

struct Checker<'t> {
    tree: &'t Node,
    providers_known: bool,
    out: Vec<(KeyPath, Diagnostic)>,
}

fn root() -> KeyPath {
    KeyPath::root()
}

impl Checker<'_> {
    fn error(&mut self, path: &KeyPath, message: impl Into<String>, hint: impl Into<String>) {
        let pos = self.tree.locate(path);
        let d = Diagnostic::new(pos, path, message).with_hint(hint);
        self.out.push((path.clone(), d));
    }

    fn version(&mut self, env: &Environment) {
        if env.version != 1 {
            self.error(
                &root().key("version"),
                format!(
                    "spec version {} is not supported; this agentenv reads version 1",
                    env.version
                ),
                "write `version: 1`, or upgrade agentenv if the spec was written for a newer one",
            );
        }
    }

    fn provider(&mut self, name: &str, p: &Provider) {
        let at = root().key("providers").key(name);
        // (key, present) pairs: what this kind needs, and what belongs to the other kind.
        type Keys<'a> = &'a [(&'a str, bool)];
        let (needs, foreign): (Keys, Keys) = match p.kind {
            ProviderKind::Cloud => (
                &[("workspace", p.workspace.is_some())],
                &[
                    ("base_url", p.base_url.is_some()),
                    ("project", p.project.is_some()),
                ],
            ),
            ProviderKind::Datacenter => (
                &[
                    ("base_url", p.base_url.is_some()),
                    ("project", p.project.is_some()),
                ],
                &[("workspace", p.workspace.is_some())],
            ),
        };
        let kind = match p.kind {
            ProviderKind::Cloud => "cloud",
            ProviderKind::Datacenter => "datacenter",
        };
        for (key, present) in needs {
            if !present {
                let hint = match *key {
                    "workspace" => "add `workspace: SLUG`, the workspace in bitbucket.org/SLUG/…",
                    "base_url" => {
                        "add `base_url: https://bitbucket.example.com`, the server's address"
                    }
                    _ => "add `project: KEY`, the key of the project that holds the repositories",
                };
                self.error(&at, format!("a `{kind}` provider needs `{key}`"), hint);
            }
        }
        for (key, present) in foreign {
            if *present {
                let hint = match p.kind {
                    ProviderKind::Cloud => {
                        "remove it; a cloud provider is located by `workspace` (and `api_url`/`git_url` to override the endpoints), or set `kind: datacenter`"
                    }
                    ProviderKind::Datacenter => {
                        "remove it; a datacenter provider is located by `base_url` and `project`, or set `kind: cloud`"
                    }
                };
                self.error(
                    &at.key(key),
                    format!("`{key}` is not used by a `{kind}` provider"),
                    hint,
                );
            }
        }
        for (key, value) in [("workspace", &p.workspace), ("project", &p.project)] {
            if let Some(v) = value.as_deref()
                && (v.trim().is_empty() || v.contains(['/', ' ', ':']))
            {
                self.error(
                    &at.key(key),
                    format!("`{v}` is not a {key} key"),
                    format!("write the {key}'s key alone, e.g. `acme` — not a URL or a path"),
                );
            }
        }
        for (key, value) in [
            ("base_url", &p.base_url),
            ("api_url", &p.api_url),
            ("git_url", &p.git_url),
        ] {
            if let Some(v) = value.as_deref()
                && let Err((message, hint)) = check_http_url(v)
            {
                self.error(&at.key(key), message, hint);
            }
        }
        if let Some(auth) = &p.auth {
            self.auth(&at.key("auth"), p.kind, auth);
        }
    }

    fn auth(&mut self, at: &KeyPath, kind: ProviderKind, auth: &Auth) {
        let t = auth.kind;
        // The same table git and the REST client read: what validates is what they can use.
        let rule = match crate::providers::rule(kind, t) {
            Ok(rule) => rule,
            Err(refusal) => return self.error(&at.key("type"), refusal.message, refusal.hint),
        };
        let fields: [(&str, bool); 5] = [
            ("email", auth.email.is_some()),
            ("username", auth.username.is_some()),
            ("token", auth.token.is_some()),
            ("client_id", auth.client_id.is_some()),
            ("client_secret", auth.client_secret.is_some()),
        ];
        let (required, optional) = (rule.required, rule.optional);
        for (field, present) in fields {
            if required.contains(&field) && !present {
                let what = match field {
                    "email" => {
                        "the Atlassian account's email address (REST uses it with the token)"
                    }
                    "token" => "the NAME of the secret holding the token, e.g. `BITBUCKET_TOKEN`",
                    "client_id" => "the NAME of the secret holding the OAuth consumer key",
                    _ => "the NAME of the secret holding the OAuth consumer secret",
                };
                self.error(
                    at,
                    format!("`type: {}` needs `{field}`", crate::providers::auth_name(t)),
                    format!("add `{field}:` — {what}"),
                );
            } else if present && !required.contains(&field) && !optional.contains(&field) {
                self.error(
                    &at.key(field),
                    format!(
                        "`{field}` is not used by `type: {}`",
                        crate::providers::auth_name(t)
                    ),
                    "remove it",
                );
            }
        }
        if let Some(email) = auth.email.as_deref() {
            let parts: Vec<&str> = email.split('@').collect();
            let ok = parts.len() == 2
                && parts.iter().all(|p| !p.is_empty())
                && !email.contains(char::is_whitespace);
            if !ok {
                self.error(
                    &at.key("email"),
                    format!("`{email}` is not an email address"),
                    "write the Atlassian account's address itself (it is not a secret), e.g. `bot@acme.example`",
                );
            }
        }
    }

    fn scope(&mut self, env: &Environment) -> Scope {
        let mut compile = |what: &str, re: &Option<String>| {
            let re = re.as_deref()?;
            match regex::Regex::new(re) {
                Ok(re) => Some(re),
                Err(e) => {
                    let detail = e.to_string();
                    let detail = detail
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim_start_matches("error: ");
                    self.error(
                        &root().key("scope").key(what),
                        format!("invalid regex `{re}`: {detail}"),
                        "it is a Rust regex (docs.rs/regex): escape `.`, `(`, `[` and friends with `\\`, and in YAML quote it with single quotes",
                    );
                    None
                }
            }
        };
        Scope::new(
            compile("repositories", &env.scope.repositories),
            compile("branches", &env.scope.branches),
        )
    }

    fn repos(&mut self, env: &Environment, scope: &Scope) {
        // (normalized path components, index) of every checkout so far.
        let mut paths: Vec<(Vec<String>, usize)> = Vec::new();
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        for (i, repo) in env.repos.iter().enumerate() {
            let at = root().key("repos").index(i);
            let source_key = match (&repo.slug, &repo.url) {
                (Some(_), Some(_)) => {
                    self.error(
                        &at.key("url"),
                        "give `slug` or `url`, not both",
                        "keep `slug` (with `provider`) for a repository on a provider, or `url` for a clone URL or local path",
                    );
                    continue;
                }
                (None, None) => {
                    self.error(
                        &at,
                        "a repository needs `slug` or `url`",
                        "add `slug: NAME` with `provider: …` for a repository on a provider, or `url:` for a clone URL or local path",
                    );
                    continue;
                }
                (Some(_), None) => "slug",
                (None, Some(_)) => "url",
            };
            let source = repo.slug.as_deref().or(repo.url.as_deref()).unwrap_or("");
            if source.contains(char::is_whitespace) {
                self.error(
                    &at.key(source_key),
                    format!("`{source}` contains spaces"),
                    "write the URL or slug alone, without other `git clone` arguments",
                );
                continue;
            }
            if let Some(slug) = repo.slug.as_deref()
                && !looks_like_url(slug)
            {
                if slug.contains('/') {
                    self.error(
                        &at.key("slug"),
                        format!("`{slug}` is not a repository slug"),
                        "write the slug alone, e.g. `payments-api` (the workspace or project comes from the provider), or a full clone URL",
                    );
                } else if !slug
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    self.error(
                        &at.key("slug"),
                        format!("`{slug}` is not a repository slug"),
                        "slugs are letters, digits, `-`, `_` and `.`; copy it from the repository's URL",
                    );
                }
            }
            match repo.provider.as_deref() {
                None if repo.slug.is_some() => self.error(
                    &at.key("slug"),
                    "`slug` needs `provider`, the provider the repository lives on",
                    provider_hint(&env.providers, None),
                ),
                Some(p) if self.providers_known && !env.providers.contains_key(p) => self.error(
                    &at.key("provider"),
                    format!("no provider named `{p}`"),
                    provider_hint(&env.providers, Some(p)),
                ),
                _ => {}
            }

            let name = repo.name();
            if name.is_empty() || name == "." || name == ".." {
                self.error(
                    &at.key(source_key),
                    format!("cannot tell the repository's name from `{source}`"),
                    "add `path: NAME`: the checkout goes there and the tools call the repository NAME",
                );
                continue;
            }
            if let Some(first) = names.get(&name) {
                self.error(
                    &at.key(source_key),
                    format!("a second repository named `{name}` (the first is repos[{first}])"),
                    "the tools name repositories by slug or the URL's last segment, so each must be different; remove one",
                );
            } else {
                names.insert(name.clone(), i);
            }

            let (path_at, path) = match &repo.path {
                Some(p) => (at.key("path"), p.clone()),
                None => (at.key(source_key), name.clone()),
            };
            match relative_path(&path, false) {
                Err((message, hint)) => {
                    let message = if repo.path.is_some() {
                        message
                    } else {
                        format!("the checkout path taken from the name: {message}")
                    };
                    self.error(&path_at, message, hint);
                }
                Ok(parts) if parts[0] == STATE_DIR => self.error(
                    &path_at,
                    format!("`{path}` is inside `{STATE_DIR}`, where agentenv keeps its state"),
                    "choose another path",
                ),
                Ok(parts) => {
                    let clash = paths
                        .iter()
                        .find(|(other, _)| other.starts_with(&parts) || parts.starts_with(other));
                    match clash {
                        Some((other, j)) if *other == parts => self.error(
                            &path_at,
                            format!("repos[{j}] is already checked out at `{path}`"),
                            "give each repository its own `path`",
                        ),
                        Some((other, j)) => self.error(
                            &path_at,
                            format!(
                                "`{path}` and repos[{j}]'s `{}` are one inside the other",
                                other.join("/")
                            ),
                            "checkouts must not nest; give them side-by-side paths",
                        ),
                        None => paths.push((parts, i)),
                    }
                }
            }

            if let Some(branch) = repo.branch.as_deref()
                && !git2::Branch::name_is_valid(branch).unwrap_or(false)
            {
                let hint = match branch.strip_prefix("refs/heads/") {
                    Some(short) => format!("write the branch name alone: `{short}`"),
                    None => "branch names cannot contain spaces, `..`, `~`, `^`, `:`, `?`, `*`, `[` or `\\`".to_string(),
                };
                self.error(
                    &at.key("branch"),
                    format!("`{branch}` is not a valid branch name"),
                    hint,
                );
                continue;
            }

            let full_name = repo.full_name(&env.providers);
            if let Some(re) = scope.repositories_rule()
                && !scope.repo(&name, full_name.as_deref())
            {
                self.error(
                    &at.key(source_key),
                    format!(
                        "repository `{name}` is outside the scope: it does not match `scope.repositories` (`{re}`)"
                    ),
                    "remove the repository, or widen `scope.repositories` (a regex on the slug or `owner/slug`)",
                );
            }
            if let (Some(re), Some(branch)) = (scope.branches_rule(), repo.branch.as_deref())
                && !scope.branch(branch)
            {
                self.error(
                    &at.key("branch"),
                    format!(
                        "branch `{branch}` is outside the scope: it does not match `scope.branches` (`{re}`)"
                    ),
                    "pick a branch that matches (`agentenv branches ENV REPO` lists them), or widen `scope.branches`",
                );
            }
        }
    }

    fn secrets(&mut self, env: &Environment) {
        let Some(secrets) = &env.secrets else {
            return;
        };
        let at = root().key("secrets");
        for (i, r) in secrets.recipients.iter().enumerate() {
            if let Err(why) = parse_recipient(r) {
                self.error(
                    &at.key("recipients").index(i),
                    why,
                    "use an age recipient (`age1…`, printed by `age-keygen -y KEYFILE`) or an SSH public key line (`ssh-ed25519 AAAA…`, the `.pub` file)",
                );
            }
        }
        if let Some(team) = secrets.team.as_deref()
            && team.trim().is_empty()
        {
            self.error(
                &at.key("team"),
                "the team secrets file is empty",
                "write its path relative to the spec file, e.g. `secrets/payments.team.yaml`, or remove the key",
            );
        }
    }

    fn setup(&mut self, env: &Environment) {
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, step) in env.setup.iter().enumerate() {
            let at = root().key("setup").index(i);
            if let Some(first) = names.get(step.name.as_str()) {
                self.error(
                    &at.key("name"),
                    format!(
                        "a second step named `{}` (the first is setup[{first}])",
                        step.name
                    ),
                    "step names name their log files and state entries; make them unique",
                );
            } else {
                names.insert(&step.name, i);
            }
            if let Some(dir) = step.dir.as_deref()
                && let Err((message, hint)) = relative_path(dir, true)
            {
                self.error(&at.key("dir"), message, hint);
            }
            if let Some(creates) = step.creates.as_deref()
                && let Err((message, hint)) = relative_path(creates, false)
            {
                self.error(&at.key("creates"), message, hint);
            }
        }
    }
}

impl super::LoadedEnv {
    /// A problem found after loading (a secret that is not declared or does not resolve),
    /// pointed at the node `at` of this spec as `validate` points at its own problems.
    pub fn diagnostic(
        &self,
        at: &KeyPath,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::new(self.tree.locate(at), at, message).with_hint(hint)
    }
}

fn provider_hint(providers: &BTreeMap<String, Provider>, wrong: Option<&str>) -> String {
    if providers.is_empty() {
        return "define it under `providers:` (e.g. `bb: {kind: cloud, workspace: acme}`), or use `url:` for a plain clone URL".into();
    }
    let known = backticked(providers.keys().map(String::as_str));
    match wrong.and_then(|w| closest(w, providers.keys().map(String::as_str))) {
        Some(c) => format!("did you mean `{c}`? providers defined: {known}"),
        None => format!("use one of the providers defined: {known}"),
    }
}

/// A path inside the workdir, as its normalized components. `allow_root` lets `.` (the
/// workdir itself) through.
pub fn relative_path(path: &str, allow_root: bool) -> Result<Vec<String>, (String, String)> {
    let inside = "write it relative to the workdir, e.g. `payments-api`, without `..`";
    let p = path.trim();
    if p.is_empty() {
        return Err(("the path is empty".into(), inside.into()));
    }
    let drive = p.len() >= 2 && p.as_bytes()[1] == b':' && p.as_bytes()[0].is_ascii_alphabetic();
    if p.starts_with(['/', '\\']) || drive {
        return Err((format!("`{p}` is absolute"), inside.into()));
    }
    if p.starts_with('~') {
        return Err((
            format!("`{p}` starts with `~`, which is not expanded"),
            inside.into(),
        ));
    }
    let parts: Vec<&str> = p.split(['/', '\\']).collect();
    if parts.contains(&"..") {
        return Err((format!("`{p}` leaves the workdir (`..`)"), inside.into()));
    }
    let parts: Vec<String> = parts
        .into_iter()
        .filter(|c| !c.is_empty() && *c != ".")
        .map(String::from)
        .collect();
    if parts.is_empty() && !allow_root {
        return Err((
            format!("`{p}` is the workdir itself"),
            "name a directory inside the workdir".into(),
        ));
    }
    Ok(parts)
}

fn check_http_url(v: &str) -> Result<(), (String, String)> {
    let example = "write a full URL such as `https://bitbucket.example.com`";
    let url = reqwest::Url::parse(v)
        .map_err(|e| (format!("`{v}` is not a URL: {e}"), example.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err((format!("`{v}` is not an http(s) URL"), example.to_string()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err((
            "the URL contains credentials".to_string(),
            "remove them from the URL; credentials go in `auth`, as secret names".to_string(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err((
            format!("`{v}` has a query or fragment"),
            "give the base address only".to_string(),
        ));
    }
    Ok(())
}

fn parse_recipient(r: &str) -> Result<(), String> {
    use std::str::FromStr;
    let r = r.trim();
    if r.starts_with("ssh-") {
        age::ssh::Recipient::from_str(r)
            .map(|_| ())
            .map_err(|e| format!("invalid SSH recipient: {e:?}"))
    } else if r.starts_with("age1") {
        let ok = age::x25519::Recipient::from_str(r).is_ok()
            || age::tag::Recipient::from_str(r).is_ok()
            || age::tagpq::Recipient::from_str(r).is_ok();
        if ok {
            Ok(())
        } else {
            Err(format!("invalid age recipient: `{r}` does not decode"))
        }
    } else if r.to_ascii_uppercase().contains("SECRET-KEY") || r.contains("PRIVATE KEY") {
        // Never echoed: it is a key that decrypts everything.
        Err("this is a PRIVATE key, not a recipient: put its public key here \
             (`age-keygen -y KEYFILE`, or the `.pub` file of an SSH key) and keep the private key out of git"
            .to_string())
    } else {
        // Not echoed either: a string we cannot parse may be something pasted by mistake.
        Err("unknown recipient format: not an age recipient or SSH public key".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::relative_path;

    #[test]
    fn paths_stay_inside_the_workdir() {
        assert_eq!(relative_path("a/./b/", false).unwrap(), ["a", "b"]);
        assert!(relative_path("../x", false).is_err());
        assert!(relative_path("a/../../x", false).is_err());
        assert!(relative_path("/etc", false).is_err());
        assert!(relative_path("C:\\x", false).is_err());
        assert!(relative_path("~/x", false).is_err());
        assert!(relative_path(".", false).is_err());
        assert!(relative_path(".", true).unwrap().is_empty());
        assert!(relative_path(" ", true).is_err());
    }
}
