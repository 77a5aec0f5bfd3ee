#!/usr/bin/env bash
# Issue 16's table, reproduced: agentenv against the tool it replaces, on a real repository
# (tokio by default) served over loopback by the Bitbucket emulator with Bitbucket auth.
#
#   bench/tokio.sh provision [RUNS]   cold provision (Cloud api-token, Data Center Bearer) vs
#                                     git clone --depth 1 --single-branch with the same
#                                     credentials; warm re-provision vs git fetch --depth 1
#   bench/tokio.sh search [RUNS]      search_code inside a warm `serve` and through
#                                     `agentenv tool`, vs one `rg -n` process
#   bench/tokio.sh all [RUNS]         both, as one table
#   bench/tokio.sh --readme all [RUNS]   …and write that table into README.md (## Performance)
#
# BENCH_REPO: the repository to serve (a bare git dir works; default the tokio mirror).
# BENCH_NO_BUILD=1: use the release binaries already in target/release.
# Every row runs both sides in the same run, alternating who goes first, and reports the median
# time of each side and the median of the per-run ratios, as a markdown table. Default 11 runs.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
readme=
if [ "${1:-}" = --readme ]; then readme=1; shift; fi
what=${1:-all}
runs=${2:-11}
repo=${BENCH_REPO:-/work/.mirror/tokio-rs+tokio/repo}
token=bench-token-0f1e2d3c4b5a

[ -d "$repo" ] || { echo "no repository at $repo (set BENCH_REPO)" >&2; exit 2; }
case $what in provision | search | all) ;; *) sed -n '2,18p' "$0" >&2; exit 2 ;; esac
[ -z "$readme" ] || [ "$what" = all ] || { echo "--readme needs all: the table has every row" >&2; exit 2; }

build_release

export BB_TOKEN=$token DC_TOKEN=$token-dc AGENTENV_PERSONAL_FILE=$work/none.yaml

start_emulator base \
    --token "cloud-api:bench@example.com:bench:$token:read:repository:bitbucket" \
    --token "dc-project:BENCH:$token-dc:REPO_READ" \
    --cloud-repo bench/tokio="$repo" --dc-repo BENCH/tokio="$repo"
echo "serving $repo at $base" >&2

cat > "$work/cloud.yaml" <<YAML
version: 1
name: bench-cloud
providers:
  bb:
    kind: cloud
    workspace: bench
    api_url: $base/2.0
    git_url: $base
    auth: { type: api-token, email: bench@example.com, token: BB_TOKEN }
secrets:
  from_env: [BB_TOKEN]
repos:
  - { provider: bb, slug: tokio }
YAML
cat > "$work/dc.yaml" <<YAML
version: 1
name: bench-dc
providers:
  dc:
    kind: datacenter
    base_url: $base
    project: BENCH
    auth: { type: http-access-token, token: DC_TOKEN }
secrets:
  from_env: [DC_TOKEN]
repos:
  - { provider: dc, slug: tokio }
YAML

# The git CLI's credentials come from the environment, as agentenv's do; never from argv.
cloud_git() { # cloud_git GIT-ARGS...
    GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=credential.helper \
    GIT_CONFIG_VALUE_0='!f() { echo username=x-bitbucket-api-token-auth; echo "password=$BB_TOKEN"; }; f' \
        git "$@"
}
dc_git() {
    GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader GIT_CONFIG_VALUE_0="Authorization: Bearer $DC_TOKEN" \
        git "$@"
}

# row LABEL AGENTENV-KEY REFERENCE-KEY REFERENCE-LABEL TARGET UNIT: one markdown row; samples
# in microseconds. The ratio is the median of each run's pair: a pair shares the machine's load
# of the moment, which a ratio of two medians would not.
row() {
    local a b r
    a=$(printf '%s' "${samples[$2]}" | median)
    b=$(printf '%s' "${samples[$3]}" | median)
    r=$(paste <(printf '%s' "${samples[$2]}") <(printf '%s' "${samples[$3]}") | awk '{ printf "%.6f\n", $1 / $2 }' | median)
    awk -v l="$1" -v a="$a" -v b="$b" -v ref="$4" -v r="$r" -v t="$5" -v u="$6" 'BEGIN {
        f = (u == "ms") ? "%.0f ms" : "%.1f ms"
        printf "| %s | " f " | %s " f " | %.2f× | ≤ %.1f×%s |\n", l, a / 1000, ref, b / 1000, r, t, (r <= t) ? "" : " **over**" }'
}
footer() {
    local name
    name=$(basename "$repo")
    [ "$name" != repo ] || name=$(basename "$(dirname "$repo")")
    echo "$1 runs, $(date -u +%Y-%m-%d); $(git --version | sed 's/ version//'), ripgrep $(rg --version 2>/dev/null | head -n 1 | cut -d' ' -f2); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $name at $(git -C "$repo" rev-parse --short HEAD), $(git -C "$repo" ls-tree -r HEAD | wc -l) files."
}

bench_provision() {
    local i d who order
    cloud_git clone -q --depth 1 --single-branch "$base/bench/tokio.git" "$work/warmup" && rm -rf "$work/warmup"
    "$agentenv" provision "$work/cloud.yaml" --workdir "$work/warmup" > /dev/null && rm -rf "$work/warmup"
    for i in $(seq "$runs"); do
        echo "provision run $i/$runs" >&2
        d=$work/run$i; mkdir -p "$d"
        if (( i % 2 )); then order="git agentenv"; else order="agentenv git"; fi
        for who in $order; do
            if [ "$who" = git ]; then
                add cloud_git "$(timed cloud_git clone -q --depth 1 --single-branch "$base/bench/tokio.git" "$d/git-cloud")"
                add dc_git "$(timed dc_git clone -q --depth 1 --single-branch "$base/scm/bench/tokio.git" "$d/git-dc")"
                add warm_git "$(timed cloud_git -C "$d/git-cloud" fetch -q --depth 1)"
            else
                add cloud_ae "$(timed "$agentenv" provision "$work/cloud.yaml" --workdir "$d/ae-cloud")"
                add dc_ae "$(timed "$agentenv" provision "$work/dc.yaml" --workdir "$d/ae-dc")"
                add warm_ae "$(timed "$agentenv" provision "$work/cloud.yaml" --workdir "$d/ae-cloud" --json)"
                tail -n 1 "$work/last.out" | grep -q '"action":"up-to-date"' \
                    || { echo "warm run did not find the checkout up to date" >&2; exit 1; }
            fi
        done
        # Same checkout on both sides: same commit, shallow, same files; no token on disk.
        for s in cloud dc; do
            [ "$(git -C "$d/git-$s" rev-parse HEAD)" = "$(git -C "$d/ae-$s/tokio" rev-parse HEAD)" ]
            [ "$(git -C "$d/ae-$s/tokio" rev-parse --is-shallow-repository)" = true ]
            [ -z "$(git -C "$d/ae-$s/tokio" status --porcelain)" ]
        done
        ! grep -rqF "$token" "$d/ae-cloud" "$d/ae-dc" || { echo "token on disk" >&2; exit 1; }
        rm -rf "$d"
    done
    {
    row "cold provision, Cloud api-token, default depth" cloud_ae cloud_git "\`git clone --depth 1 --single-branch\`" 1.0 ms
    row "cold provision, Data Center Bearer" dc_ae dc_git "\`git -c http.extraHeader=… clone --depth 1 --single-branch\`" 1.0 ms
    row "warm re-provision, nothing changed" warm_ae warm_git "\`git fetch --depth 1\`" 1.0 ms
    } >> "$work/rows.md"
}

bench_search() {
    command -v rg > /dev/null || { echo "ripgrep is not installed (apt-get install -y ripgrep)" >&2; exit 2; }
    "$agentenv" provision "$work/cloud.yaml" --workdir "$work/search" > /dev/null
    echo "search_code vs rg on the checkout..." >&2
    python3 "$root/bench/search_rows.py" "$agentenv" "$work/cloud.yaml" "$work/search" tokio "$runs" >> "$work/rows.md"
}

touch "$work/rows.md"
case $what in
    provision) bench_provision ;;
    search) bench_search ;;
    all) bench_provision; bench_search ;;
esac
{
    echo "| work | agentenv | reference | ratio | target |"
    echo "| --- | --- | --- | --- | --- |"
    cat "$work/rows.md"
    echo
    footer "$runs"
} > "$work/table.md"
echo
cat "$work/table.md"
if [ -n "$readme" ]; then
    # Replace what lies between the two markers in README.md with the new table.
    python3 - "$root/README.md" "$work/table.md" <<'PY'
import sys
readme, table = sys.argv[1], open(sys.argv[2]).read()
begin, end = "<!-- bench/tokio.sh: begin -->\n", "<!-- bench/tokio.sh: end -->"
text = open(readme).read()
i, j = text.index(begin) + len(begin), text.index(end)
open(readme, "w").write(text[:i] + table + text[j:])
PY
    echo "README.md: performance table updated" >&2
fi
