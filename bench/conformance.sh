#!/usr/bin/env bash
# agentenv::git against the git CLI on a real repository: every commit's
# `git diff-tree -r -M --numstat` and `git log` for a sample of paths, field by field, with
# timings side by side. Usage:
#   bench/conformance.sh REPO [REF]      # e.g. /work/.mirror/tokio-rs+tokio/repo master
# Environment: GIT_SEMANTICS_MAX_COMMITS, GIT_SEMANTICS_PATCH_EVERY, GIT_SEMANTICS_TIMED_PATHS,
# GIT_SEMANTICS_RUNS
# (see real_repository_conformance in tests/it/git_semantics.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="${1:?usage: bench/conformance.sh REPO [REF]}"
export GIT_SEMANTICS_REPO="$(cd "$repo" && pwd)"
export GIT_SEMANTICS_REF="${2:-master}"
# The git CLI side runs without the user's or the system's config, as the tests do.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
git --version
cargo test --release --quiet --test it git_semantics::real_repository_conformance \
  -- --ignored --nocapture
