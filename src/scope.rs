//! The one scope rule: which repositories and which branches an environment may touch.
//!
//! `validate`, `provision` and every tool decide through [`Scope::repo`] and [`Scope::branch`]
//! and nothing else, so a spec that validates is provisioned and answered by the same rule.
//! Scope is decided from names alone, before anything is looked up, so a refusal never tells
//! whether an out-of-scope thing exists.

use regex::Regex;

/// `scope:` of a spec, its regexes compiled. An absent regex allows everything.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    repositories: Option<Regex>,
    branches: Option<Regex>,
}

impl Scope {
    pub fn new(repositories: Option<Regex>, branches: Option<Regex>) -> Scope {
        Scope {
            repositories,
            branches,
        }
    }

    /// A repository is in scope when `scope.repositories` matches its slug or its full name
    /// (`owner/slug` on Cloud, `PROJECT/slug` on Data Center).
    pub fn repo(&self, slug: &str, full_name: Option<&str>) -> bool {
        match &self.repositories {
            None => true,
            Some(re) => re.is_match(slug) || full_name.is_some_and(|f| re.is_match(f)),
        }
    }

    /// A branch is in scope when `scope.branches` matches its name (without `refs/heads/`).
    pub fn branch(&self, name: &str) -> bool {
        self.branches.as_ref().is_none_or(|re| re.is_match(name))
    }

    /// The `scope.repositories` regex as written, for messages.
    pub fn repositories_rule(&self) -> Option<&str> {
        self.repositories.as_ref().map(Regex::as_str)
    }

    /// The `scope.branches` regex as written, for messages.
    pub fn branches_rule(&self) -> Option<&str> {
        self.branches.as_ref().map(Regex::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_rules_allow_everything_and_present_ones_match_names() {
        assert!(Scope::default().repo("x", None) && Scope::default().branch("any/thing"));
        let s = Scope::new(
            Some(Regex::new("^acme/pay-").unwrap()),
            Some(Regex::new("^(main|release/.*)$").unwrap()),
        );
        assert!(!s.repo("pay-api", None));
        assert!(s.repo("pay-api", Some("acme/pay-api")));
        assert!(s.branch("release/1.0") && !s.branch("feature/x"));
        assert_eq!(s.branches_rule(), Some("^(main|release/.*)$"));
    }
}
