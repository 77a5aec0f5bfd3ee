#!/usr/bin/env bash
# Side-by-side benchmark: `agentenv provision` against the git CLI, one repository served over
# plain http on loopback by the Bitbucket emulator (the real `git http-backend`).
#
#   bench/provision.sh [RUNS]        (default 11; release build; needs git and python3)
#
# Prints the median wall time of each side and the median of the per-run ratios agentenv / git:
#   cold    provision (defaults: one branch, depth 1)   vs  git clone --depth 1
#   full    provision with depth: 0                      vs  git clone
#   warm    provision again, nothing changed, 1 step     vs  git fetch in the existing clone
set -euo pipefail

. "$(dirname "$0")/lib.sh"
runs=${1:-11}
commits=${BENCH_COMMITS:-2000}
files=${BENCH_FILES:-1200}
branches=${BENCH_BRANCHES:-60}

build_release

echo "building the test repository ($commits commits, $branches branches, $files files)..." >&2
git init -q --bare "$work/big.git"
python3 - "$commits" "$files" "$branches" <<'PY' | git -C "$work/big.git" fast-import --quiet
import random, sys
commits, files, branches = (int(a) for a in sys.argv[1:4])
rng = random.Random(42)
words = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(2, 9)))
         for _ in range(4000)]
def text(n):
    return ''.join(' '.join(rng.choice(words) for _ in range(10)) + '\n' for _ in range(n)).encode()
out = sys.stdout.buffer
def blob(data):
    out.write(b'data %d\n' % len(data) + data + b'\n')
def commit(ref, mark, parent, msg, changes):
    out.write(b'commit %s\nmark :%d\n' % (ref.encode(), mark))
    out.write(b'committer bench <bench@example.com> %d +0000\n' % (1700000000 + mark))
    m = msg.encode()
    out.write(b'data %d\n%s\n' % (len(m), m))
    if parent:
        out.write(b'from :%d\n' % parent)
    for path, data in changes:
        out.write(b'M 100644 inline %s\n' % path.encode())
        blob(data)
paths = ['src/mod%02d/file%04d.txt' % (i % 40, i) for i in range(files)]
commit('refs/heads/main', 1, None, 'initial', [(p, text(40)) for p in paths])
for c in range(2, commits + 1):
    commit('refs/heads/main', c, c - 1, 'change %d' % c,
           [(rng.choice(paths), text(40)) for _ in range(3)])
for b in range(branches):
    base = commits - b * (commits // (branches + 1))
    commit('refs/heads/topic-%02d' % b, commits + 1 + b, base, 'topic %d' % b,
           [(rng.choice(paths), text(40)) for _ in range(2)])
PY
git -C "$work/big.git" symbolic-ref HEAD refs/heads/main
git -C "$work/big.git" repack -adq

start_emulator base --anonymous --cloud-repo bench/big="$work/big.git"
url=$base/bench/big.git
echo "serving $url" >&2

spec() { # spec NAME DEPTH
    cat > "$work/$1.yaml" <<YAML
version: 1
name: bench-$1
repos:
  - url: $url
    path: big
    depth: $2
setup:
  - name: inventory
    run: git ls-files | wc -l > ../inventory.txt
    dir: big
YAML
}
spec shallow 1
spec full 0

# now_us: wall clock in microseconds.

# Warm-up (page cache, emulator's first spawn) is not measured.
git clone -q --depth 1 "$url" "$work/warmup" && rm -rf "$work/warmup"

for i in $(seq "$runs"); do
    echo "run $i/$runs" >&2
    d=$work/run$i; mkdir -p "$d"
    # Alternate who goes first, so neither side always gets the warmer cache.
    if (( i % 2 )); then order="git agentenv"; else order="agentenv git"; fi
    for who in $order; do
        if [ "$who" = git ]; then
            add cold_git "$(timed git clone -q --depth 1 "$url" "$d/git-shallow")"
            add full_git "$(timed git clone -q "$url" "$d/git-full")"
            add warm_git "$(timed git -C "$d/git-shallow" fetch -q)"
        else
            add cold_agentenv "$(timed "$agentenv" provision "$work/shallow.yaml" --workdir "$d/ae-shallow")"
            add full_agentenv "$(timed "$agentenv" provision "$work/full.yaml" --workdir "$d/ae-full")"
            add warm_agentenv "$(timed "$agentenv" provision "$work/shallow.yaml" --workdir "$d/ae-shallow" --json)"
            tail -n 1 "$work/last.out" | grep -q '"action":"up-to-date"' \
                || { echo "warm run did not find the checkout up to date" >&2; exit 1; }
            tail -n 1 "$work/last.out" | grep -q '"name":"inventory","action":"skipped"' \
                || { echo "warm run did not skip the step" >&2; exit 1; }
        fi
    done
    # Both sides produced the same checkout.
    [ "$(git -C "$d/git-shallow" rev-parse HEAD)" = "$(git -C "$d/ae-shallow/big" rev-parse HEAD)" ]
    [ "$(git -C "$d/ae-shallow/big" rev-parse --is-shallow-repository)" = true ]
    [ "$(git -C "$d/git-full" rev-list --count HEAD)" = "$(git -C "$d/ae-full/big" rev-list --count HEAD)" ]
    rm -rf "$d"
done

printf '\n%-6s %15s %10s %13s  %s\n' case "agentenv (ms)" "git (ms)" "median ratio" "target <= 1.20"
for c in cold full warm; do
    a=$(printf '%s' "${samples[${c}_agentenv]}" | median)
    g=$(printf '%s' "${samples[${c}_git]}" | median)
    # The ratio of each run's pair, then their median: a pair shares the machine's load of the
    # moment, which a ratio of two medians would not.
    r=$(paste <(printf '%s' "${samples[${c}_agentenv]}") <(printf '%s' "${samples[${c}_git]}") \
        | awk '{ printf "%.6f\n", $1 / $2 }' | median)
    awk -v c="$c" -v a="$a" -v g="$g" -v r="$r" 'BEGIN {
        printf "%-6s %15.1f %10.1f %12.2fx  %s\n", c, a / 1000, g / 1000, r, (r <= 1.2) ? "ok" : "OVER" }'
done
echo "($runs runs; times are medians; $(git --version); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg))"
