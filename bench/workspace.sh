#!/usr/bin/env bash
# Workspace-wide `search_code` through the clone cache (issue 12 item 6), side by side with
# the git CLI and ripgrep, on 20 repositories served over http on loopback by the Bitbucket
# emulator (the real `git http-backend`), in the same run.
#
#   bench/workspace.sh [RUNS] [BARE-REPO]   (default 5 runs, the tokio mirror; release build;
#                                            needs git, rg)
#
# The emulator serves BARE-REPO as Cloud `bench/svc-01` … `bench/svc-20` (in scope) and
# `bench/legacy-1` … `legacy-5` (out of scope); the spec's `repos:` is empty, so every
# repository is reached through the clone cache. Each run, per side:
#   first   `agentenv tool … search_code` without `repo`, empty cache: lists the workspace,
#           clones 20 repositories (depth 1) into the cache, searches them
#           vs  `git clone --depth 1` of the same 20, then one `rg` over them
#   second  the same call again, warm cache: asks each remote for its tip, fetches nothing,
#           searches the mirrors
#           vs  `git fetch --depth 1` in each of the 20 clones (nothing new), then `rg`
#   rg      (for scale) `rg` over the 20 clones alone
# Printed: the median wall time of each case and the median of the per-run ratios.
# AGENTENV_SEARCH_MAX_CLONES=20 lets one call make all 20 clones (the default, 8, would
# answer with a cursor after 8 — the bound an agent sees; here the cost of the whole is
# measured), and the search and fetch budgets are raised so that nothing is cut.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
runs=${1:-5}
repo=${2:-/work/.mirror/tokio-rs+tokio/repo}
[ -d "$repo" ] || { echo "no repository at $repo (pass a bare git repository as the second argument)" >&2; exit 2; }
repo=$(cd "$repo" && pwd)
command -v rg >/dev/null || { echo "ripgrep is not installed (apt-get install -y ripgrep)" >&2; exit 2; }
query=${BENCH_QUERY:-spawn_blocking}
count=20

build_release

token=bench-workspace-token-$$
export BB_TOKEN=$token AGENTENV_PERSONAL_FILE=$work/none.yaml
unset AGENTENV_WORKDIR
export AGENTENV_CACHE_DIR=$work/cache
export AGENTENV_SEARCH_MAX_CLONES=$count AGENTENV_SEARCH_TIMEOUT=600
export AGENTENV_FETCH_BUDGET_SECS=600 AGENTENV_FETCH_BUDGET_MB=8192

slugs=()
for i in $(seq -w 1 $count); do slugs+=("svc-$i"); done
emu_args=(--token "cloud-api:bench@example.com:bench:$token:read:repository:bitbucket")
for s in "${slugs[@]}"; do emu_args+=(--cloud-repo "bench/$s=$repo"); done
for i in 1 2 3 4 5; do emu_args+=(--cloud-repo "bench/legacy-$i=$repo"); done
start_emulator base "${emu_args[@]}"
echo "serving $repo as ${#slugs[@]} repositories (+5 out of scope) at $base" >&2

cat > "$work/spec.yaml" <<YAML
version: 1
name: bench-workspace
providers:
  bb:
    kind: cloud
    workspace: bench
    api_url: $base/2.0
    git_url: $base
    auth: { type: api-token, email: bench@example.com, token: BB_TOKEN }
secrets:
  from_env: [BB_TOKEN]
scope:
  repositories: '^svc-'
repos: []
YAML
mkdir -p "$work/wd"

# The git CLI's credentials come from the environment, as agentenv's do; never from argv.
cloud_git() {
    GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=credential.helper \
    GIT_CONFIG_VALUE_0='!f() { echo username=x-bitbucket-api-token-auth; echo "password=$BB_TOKEN"; }; f' \
        git "$@"
}
search() {
    "$agentenv" tool "$work/spec.yaml" search_code --workdir "$work/wd" --arg "query=$query"
}
clone_all() {
    rm -rf "$work/clones" && mkdir "$work/clones"
    local s
    for s in "${slugs[@]}"; do cloud_git clone -q --depth 1 "$base/bench/$s.git" "$work/clones/$s"; done
}
fetch_all() {
    local s
    for s in "${slugs[@]}"; do cloud_git -C "$work/clones/$s" fetch -q --depth 1 origin; done
}
# What search_code searches: every committed file, hidden ones too, .git not.
rg_all() {
    (cd "$work/clones" && rg -n -F --hidden --glob '!.git' -- "$query" "${slugs[@]}" > "$work/rg.out" || [ $? = 1 ])
}

# Warm-up, not measured: the page cache and the emulator's first spawns, both sides.
rm -rf "$AGENTENV_CACHE_DIR"
search > "$work/first.json"
clone_all
rg_all
matches=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["total_matches"], len(d["searched"]), d.get("next_cursor") is None)' "$work/first.json")
echo "check: search_code total_matches, repositories searched, complete = $matches; rg lines = $(wc -l < "$work/rg.out")" >&2

for r in $(seq "$runs"); do
    rm -rf "$AGENTENV_CACHE_DIR"
    first=$(timed search)
    second=$(timed search)
    clone=$(timed clone_all)
    rg1=$(timed rg_all)
    fetch=$(timed fetch_all)
    rg2=$(timed rg_all)
    add first "$first"; add second "$second"
    add ref_first $(( clone + rg1 )); add ref_second $(( fetch + rg2 )); add rg "$rg2"
    add ratio_first "$(awk -v a="$first" -v b="$(( clone + rg1 ))" 'BEGIN { printf "%.3f", a / b }')"
    add ratio_second "$(awk -v a="$second" -v b="$(( fetch + rg2 ))" 'BEGIN { printf "%.3f", a / b }')"
    add ratio_rg "$(awk -v a="$second" -v b="$rg2" 'BEGIN { printf "%.3f", a / b }')"
    echo "run $r: first ${first}us (clone+rg $(( clone + rg1 ))us), second ${second}us (fetch+rg $(( fetch + rg2 ))us), rg ${rg2}us" >&2
done

ms() { awk -v u="$1" 'BEGIN { printf "%.0f ms", u / 1000 }'; }
m() { printf '%s' "${samples[$1]}" | median; }
echo "agentenv $("$agentenv" --version | cut -d' ' -f2), $(git --version), $(rg --version | sed -n 1p), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$count repositories of $(basename "$(dirname "$repo")") ($(git -C "$repo" ls-tree -r HEAD | wc -l) files each), query \`$query\`, $runs runs, medians"
echo
echo "| case | agentenv | git CLI + rg | ratio (median of per-run) |"
echo "| --- | --- | --- | --- |"
echo "| first search (empty cache) vs \`git clone --depth 1\` ×$count + \`rg\` | $(ms "$(m first)") | $(ms "$(m ref_first)") | $(m ratio_first) |"
echo "| second search (warm cache) vs \`git fetch --depth 1\` ×$count + \`rg\` | $(ms "$(m second)") | $(ms "$(m ref_second)") | $(m ratio_second) |"
echo "| second search vs \`rg\` alone over the $count clones | $(ms "$(m second)") | $(ms "$(m rg)") | $(m ratio_rg) |"
