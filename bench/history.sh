#!/usr/bin/env bash
# Side-by-side benchmark of history on demand: on a depth-1 provision of a real repository,
# what the checkout tools pay to fetch the history an answer needs, against the git CLI doing
# the same with `git fetch --deepen` on a `git clone --depth 1`, with the same credentials.
#
#   bench/history.sh [RUNS] [REPO.git]   (default 5 runs, the tokio mirror; release build;
#                                         needs git)
#
# The repository is served by the Bitbucket emulator (real `git http-backend`, Cloud API
# token). Each run provisions (agentenv) and clones (git) fresh, untimed, then times, in
# alternating order:
#   list100   `agentenv tool … list_commits limit=100`
#             vs `git fetch --deepen=99` + `git log -n 100`
#   get_id    `agentenv tool … get_commit COMMIT` with the id of the commit 1,000 back on the
#             default branch (the checkout does not know where it is: it searches)
#             vs `git fetch --deepen=1000` + `git show --numstat COMMIT` (git is told how deep)
#   get_tilde `agentenv tool … get_commit BRANCH~1000`
#             vs the same git commands
# and checks that both sides name the same commits. Reported: medians of each side and the
# median of per-run ratios agentenv / git.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
runs=${1:-5}
repo=${2:-/work/.mirror/tokio-rs+tokio/repo}
token=bench-token-history-5a4b3c
[ -d "$repo" ] || { echo "no repository at $repo (pass a bare repository as the second argument)" >&2; exit 2; }

build_release

export BB_TOKEN=$token AGENTENV_PERSONAL_FILE=$work/none.yaml

start_emulator base \
    --token "cloud-api:bench@example.com:bench:$token:read:repository:bitbucket" \
    --cloud-repo bench/repo="$repo"
echo "serving $repo at $base" >&2

printf 'version: 1\nname: bench-history\nproviders:\n  bb:\n    kind: cloud\n    workspace: bench\n    api_url: %s/2.0\n    git_url: %s\n    auth: { type: api-token, email: bench@example.com, token: BB_TOKEN }\nsecrets:\n  from_env: [BB_TOKEN]\nrepos:\n  - { provider: bb, slug: repo }\n' \
    "$base" "$base" > "$work/spec.yaml"

git_auth() {
    GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=credential.helper \
    GIT_CONFIG_VALUE_0='!f() { echo username=x-bitbucket-api-token-auth; echo "password=$BB_TOKEN"; }; f' \
        git "$@"
}
branch=$(git --git-dir="$repo" symbolic-ref --short HEAD)
target=$(git --git-dir="$repo" rev-parse "$branch~1000")
echo "default branch $branch; the commit 1,000 back: $target" >&2

tool() { # tool WORKDIR NAME ARGS…
    local w=$1 name=$2; shift 2
    local args=()
    for a in "$@"; do args+=(--arg "$a"); done
    "$agentenv" tool "$work/spec.yaml" "$name" --workdir "$w" "${args[@]}"
}
git_list() { git -C "$1" fetch -q --deepen=99 && git -C "$1" log -n 100 --format='%H %s' > "$1.log"; }
git_get() { git -C "$1" fetch -q --deepen=1000 && git -C "$1" show --numstat --format='%H %P' "$2"; }
fresh() { # fresh NAME: a provisioned workdir and a git clone, both depth 1
    "$agentenv" provision "$work/spec.yaml" --workdir "$work/ae-$1" > /dev/null
    git_auth clone -q --depth 1 "$base/bench/repo.git" "$work/git-$1"
    git_auth -C "$work/git-$1" config credential.helper \
        '!f() { echo username=x-bitbucket-api-token-auth; echo "password=$BB_TOKEN"; }; f'
}

for i in $(seq "$runs"); do
    echo "run $i/$runs" >&2
    for c in list id tilde; do fresh "$c"; done
    if (( i % 2 )); then order="git agentenv"; else order="agentenv git"; fi
    for who in $order; do
        if [ "$who" = git ]; then
            add list100_git "$(timed git_list "$work/git-list")"
            add get_id_git "$(timed git_get "$work/git-id" "$target")"
            add get_tilde_git "$(timed git_get "$work/git-tilde" "$target")"
        else
            add list100_agentenv "$(timed tool "$work/ae-list" list_commits repo=repo limit=100)"
            cp "$work/last.out" "$work/list.json"
            add get_id_agentenv "$(timed tool "$work/ae-id" get_commit repo=repo "commit=$target")"
            cp "$work/last.out" "$work/id.json"
            add get_tilde_agentenv "$(timed tool "$work/ae-tilde" get_commit repo=repo "commit=$branch~1000")"
            cp "$work/last.out" "$work/tilde.json"
        fi
    done
    # Both sides answered the same question.
    ours=$(grep -o '"hash": *"[0-9a-f]*"' "$work/list.json" | grep -o '[0-9a-f]\{40\}')
    theirs=$(cut -d' ' -f1 "$work/git-list.log")
    [ "$ours" = "$theirs" ] || { echo "list_commits differs from git log" >&2; exit 1; }
    grep -Eq "\"hash\": *\"$target\"" "$work/id.json" || { echo "get_commit by id: wrong commit" >&2; exit 1; }
    grep -Eq "\"hash\": *\"$target\"" "$work/tilde.json" || { echo "get_commit ~1000: wrong commit" >&2; exit 1; }
    [ "$i" = 1 ] && for f in list id tilde; do
        echo "  $f: $(grep -o '"note": *"[^"]*"' "$work/$f.json" | head -c 200)" >&2
    done
    rm -rf "$work"/ae-* "$work"/git-*
done

printf '\n%-10s %16s %16s %13s\n' case "agentenv (ms)" "git (ms)" "median ratio"
row() { # row CASE A-KEY B-KEY
    a=$(printf '%s' "${samples[$2]}" | median)
    b=$(printf '%s' "${samples[$3]}" | median)
    # The ratio of each run's pair, then their median: a pair shares the machine's load.
    r=$(paste <(printf '%s' "${samples[$2]}") <(printf '%s' "${samples[$3]}") | awk '{ print $1 / $2 }' | median)
    awk -v c="$1" -v a="$a" -v b="$b" -v r="$r" 'BEGIN {
        printf "%-10s %16.1f %16.1f %12.2fx\n", c, a / 1000, b / 1000, r }'
}
row list100 list100_agentenv list100_git
row get_id get_id_agentenv get_id_git
row get_tilde get_tilde_agentenv get_tilde_git
echo "(reference: git fetch --deepen on a git clone --depth 1, same credentials; get_id: agentenv"
echo " searches for the id, git is told the depth)"
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "($runs runs of $repo; $(git --version); $(nproc) cores)"
