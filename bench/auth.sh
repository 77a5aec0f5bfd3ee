#!/usr/bin/env bash
# Side-by-side benchmark of authenticated provisioning against the git CLI with the same
# credentials, on the Bitbucket emulator (real `git http-backend`, real auth checks).
#
#   bench/auth.sh [RUNS]        (default 5; release build; needs git and python3)
#
# Prints medians and ratios for:
#   cloud   provision, Cloud api-token (Basic, first request)  vs  git clone --depth 1 with a
#           credential helper given through GIT_CONFIG_* env (never argv)
#   dc      provision, Data Center Bearer header               vs  git clone --depth 1 with
#           http.extraHeader given through GIT_CONFIG_* env
#   four    one provision of 4 repositories                    vs  the sum of 4 single provisions
#   auth    provision, Cloud api-token                         vs  the same provision anonymously
#           (a second emulator allows anonymous reads): what authentication itself costs
set -euo pipefail

. "$(dirname "$0")/lib.sh"
runs=${1:-5}
commits=${BENCH_COMMITS:-2000}
files=${BENCH_FILES:-1200}
branches=${BENCH_BRANCHES:-60}
token=bench-token-0f1e2d3c4b5a

build_release

export BB_TOKEN=$token AGENTENV_PERSONAL_FILE=$work/none.yaml

# The repository generator of bench/provision.sh, taken from there so the two benches measure
# the same repository shape.
sed -n "/<<'PY'/,/^PY\$/p" "$root/bench/provision.sh" | sed '1d;$d' > "$work/gen.py"
echo "building the test repository ($commits commits, $branches branches, $files files)..." >&2
git init -q --bare "$work/big.git"
python3 "$work/gen.py" "$commits" "$files" "$branches" | git -C "$work/big.git" fast-import --quiet
git -C "$work/big.git" symbolic-ref HEAD refs/heads/main
git -C "$work/big.git" repack -adq

start_emulator base \
    --token "cloud-api:bench@example.com:bench:$token:read:repository:bitbucket" \
    --token "dc-project:BENCH:$token-dc:REPO_READ" \
    --cloud-repo bench/big="$work/big.git" \
    --cloud-repo bench/big1="$work/big.git" --cloud-repo bench/big2="$work/big.git" \
    --cloud-repo bench/big3="$work/big.git" --cloud-repo bench/big4="$work/big.git" \
    --dc-repo BENCH/big="$work/big.git"
echo "serving $base" >&2
start_emulator anon_base --anonymous --cloud-repo bench/big="$work/big.git"

cloud_provider="  bb:
    kind: cloud
    workspace: bench
    api_url: $base/2.0
    git_url: $base
    auth: { type: api-token, email: bench@example.com, token: BB_TOKEN }"
dc_provider="  dc:
    kind: datacenter
    base_url: $base
    project: BENCH
    auth: { type: http-access-token, token: DC_TOKEN }"
spec() { # spec NAME PROVIDER-YAML REPOS-YAML
    printf 'version: 1\nname: bench-%s\nproviders:\n%s\nsecrets:\n  from_env: [BB_TOKEN, DC_TOKEN]\nrepos:\n%s\n' \
        "$1" "$2" "$3" > "$work/$1.yaml"
}
spec cloud "$cloud_provider" "  - { provider: bb, slug: big }"
spec dc "$dc_provider" "  - { provider: dc, slug: big }"
for n in 1 2 3 4; do spec "one$n" "$cloud_provider" "  - { provider: bb, slug: big$n }"; done
spec four "$cloud_provider" "$(for n in 1 2 3 4; do echo "  - { provider: bb, slug: big$n }"; done)"
printf 'version: 1\nname: bench-anon\nrepos:\n  - { url: %s, path: big }\n' "$anon_base/bench/big.git" > "$work/anon.yaml"
export DC_TOKEN=$token-dc

# The git CLI's credentials come from the environment, as agentenv's do.
cloud_git() {
    GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=credential.helper \
    GIT_CONFIG_VALUE_0='!f() { echo username=x-bitbucket-api-token-auth; echo "password=$BB_TOKEN"; }; f' \
        git clone -q --depth 1 "$base/bench/big.git" "$1"
}
dc_git() {
    GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader GIT_CONFIG_VALUE_0="Authorization: Bearer $DC_TOKEN" \
        git clone -q --depth 1 "$base/scm/bench/big.git" "$1"
}

provision() { "$agentenv" provision "$work/$1.yaml" --workdir "$2"; }

cloud_git "$work/warmup" && rm -rf "$work/warmup"

for i in $(seq "$runs"); do
    echo "run $i/$runs" >&2
    d=$work/run$i; mkdir -p "$d"
    if (( i % 2 )); then order="git agentenv"; else order="agentenv git"; fi
    for who in $order; do
        if [ "$who" = git ]; then
            add cloud_git "$(timed cloud_git "$d/git-cloud")"
            add dc_git "$(timed dc_git "$d/git-dc")"
        else
            add cloud_agentenv "$(timed provision cloud "$d/ae-cloud")"
            add anon_agentenv "$(timed provision anon "$d/ae-anon")"
            add dc_agentenv "$(timed provision dc "$d/ae-dc")"
        fi
    done
    sum=0
    for n in 1 2 3 4; do sum=$(( sum + $(timed provision "one$n" "$d/ae-one$n") )); done
    add four_sum "$sum"
    add four_agentenv "$(timed provision four "$d/ae-four")"
    [ "$(git -C "$d/git-cloud" rev-parse HEAD)" = "$(git -C "$d/ae-cloud/big" rev-parse HEAD)" ]
    [ "$(git -C "$d/git-dc" rev-parse HEAD)" = "$(git -C "$d/ae-dc/big" rev-parse HEAD)" ]
    ! grep -rq "$token" "$d/ae-cloud" "$d/ae-dc" "$d/ae-four" || { echo "token on disk" >&2; exit 1; }
    rm -rf "$d"
done

printf '\n%-6s %16s %16s %13s  %s\n' case "agentenv (ms)" "reference (ms)" "median ratio" target
row() { # row CASE A-KEY B-KEY TARGET
    a=$(printf '%s' "${samples[$2]}" | median)
    b=$(printf '%s' "${samples[$3]}" | median)
    # The ratio of each run's pair, then their median: a pair shares the machine's load of the
    # moment, which a ratio of two medians would not (their absolute times drift by tens of %).
    r=$(paste <(printf '%s' "${samples[$2]}") <(printf '%s' "${samples[$3]}") | awk '{ print $1 / $2 }' | median)
    awk -v c="$1" -v a="$a" -v b="$b" -v r="$r" -v t="$4" 'BEGIN {
        printf "%-6s %16.1f %16.1f %12.2fx  <= %.2f %s\n", c, a / 1000, b / 1000, r, t, (r <= t) ? "ok" : "OVER" }'
}
row cloud cloud_agentenv cloud_git 1.2
row dc dc_agentenv dc_git 1.2
row four four_agentenv four_sum 0.6
row auth cloud_agentenv anon_agentenv 1.05
echo "(reference: git clone --depth 1 with the same credentials; four: sum of 4 single provisions;"
echo " auth: the same provision without credentials)"
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "($runs runs; times are medians, ratios the median of per-run ratios; $(git --version); $(nproc) cores)"
