#!/usr/bin/env bash
# Warm `search_code` inside `agentenv serve` vs one `rg -n` process (issue 16 item 2), on a
# real repository and on one ten times larger (ten copies of its tree in one commit).
#
#   bench/search_warm.sh [RUNS] [REPO.git]   (default 21 runs, the tokio mirror; builds release;
#                                             needs git, rg, python3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-21}
src=${2:-/work/.mirror/tokio-rs+tokio/repo}
[ -d "$src" ] || { echo "no repository at $src (pass a git repository as the second argument)" >&2; exit 2; }
command -v rg >/dev/null || { echo "ripgrep is not installed (apt-get install -y ripgrep)" >&2; exit 2; }

echo "building release binary..." >&2
(cd "$root" && cargo build --release --quiet -p agentenv --bin agentenv)
bin="$root/target/release/agentenv"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q --depth 1 "file://$src" "$tmp/one"
# Ten copies of the tree, committed: the same files the committed-tree search reads.
mkdir "$tmp/ten"
git -C "$tmp/ten" init -q
for i in 0 1 2 3 4 5 6 7 8 9; do
  git -C "$tmp/one" archive --prefix="copy$i/" HEAD | tar -x -C "$tmp/ten"
done
git -C "$tmp/ten" add -A
git -C "$tmp/ten" -c user.name=bench -c user.email=bench@example.com commit -q -m ten

cat > "$tmp/spec.yaml" <<YAML
version: 1
name: search-warm
repos:
  - url: $tmp/one
    path: one
  - url: $tmp/ten
    path: ten
YAML
"$bin" provision "$tmp/spec.yaml" --workdir "$tmp/work" >/dev/null

echo "agentenv $("$bin" --version | cut -d' ' -f2), $(rg --version | sed -n 1p), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## $(basename "$src" .git): $(git -C "$tmp/one" ls-files | wc -l) files"
python3 "$root/bench/search_warm.py" "$bin" "$tmp/spec.yaml" "$tmp/work" one "$runs"
echo "## ten copies: $(git -C "$tmp/ten" ls-files | wc -l) files"
python3 "$root/bench/search_warm.py" "$bin" "$tmp/spec.yaml" "$tmp/work" ten "$runs"
