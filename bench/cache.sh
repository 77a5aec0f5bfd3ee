#!/usr/bin/env bash
# Side-by-side benchmark of the node-level clone cache and of `agentenv run`, on a real-sized
# repository served over plain http on loopback by the Bitbucket emulator (the real
# `git http-backend`).
#
#   bench/cache.sh BARE-REPO [RUNS]   (default 7 runs; release build; needs git)
#   bench/cache.sh /work/.mirror/tokio-rs+tokio/repo
#
# Prints the median wall time of each case and the median of the per-run ratios:
#   cached   cold provision, warm cache (--cache-dir)    vs  git clone --depth 1
#   copied   the same with the cache on another file system (/dev/shm), so its packs are
#            copied, not hard-linked: a Kubernetes pod's cache volume and workdir
#   plain    cold provision, no cache                    vs  git clone --depth 1
#   checkout `git checkout` in a `--no-checkout` clone:  the work tree alone, which every
#            side writes (the floor under any clone)   vs  git clone --depth 1
#   run      `agentenv run -- true`, checkout up to date vs  provision alone, same workdir
#   run-cold `agentenv run --cache-dir -- true`, fresh   vs  cold provision, warm cache
set -euo pipefail

. "$(dirname "$0")/lib.sh"
repo=${1:?usage: bench/cache.sh BARE-REPO [RUNS]}
repo=$(cd "$repo" && pwd)
runs=${2:-7}

build_release

# No ambient cache: each case says whether it uses one.
unset AGENTENV_CACHE_DIR AGENTENV_WORKDIR

start_emulator base --anonymous --cloud-repo bench/repo="$repo"
url=$base/bench/repo.git
branch=$(git -C "$repo" symbolic-ref --short HEAD)
echo "serving $url ($(du -sh "$repo" | cut -f1), $(git -C "$repo" for-each-ref | wc -l) refs, $(git -C "$repo" ls-tree -r HEAD | wc -l) files at $branch)" >&2

cat > "$work/spec.yaml" <<YAML
version: 1
name: bench-cache
repos:
  - url: $url
    path: repo
YAML

cache=$work/cache
# On another file system the packs cannot be hard-linked: the Kubernetes case.
shm=$(mktemp -d -p /dev/shm agentenv-bench.XXXXXX)
copied=$shm/cache
bench_remove+=("$shm")
# Warm-up, not measured: the page cache, the emulator's first spawn, and the cache's mirror
# (the "Nth cold provision on a node" is what the cached case measures).
git clone -q --depth 1 "$url" "$work/warmup" && rm -rf "$work/warmup"
"$agentenv" provision "$work/spec.yaml" --workdir "$work/prime" --cache-dir "$cache" >/dev/null 2>&1
rm -rf "$work/prime"
"$agentenv" provision "$work/spec.yaml" --workdir "$work/prime" --cache-dir "$copied" >/dev/null 2>&1
rm -rf "$work/prime"

for i in $(seq "$runs"); do
    echo "run $i/$runs" >&2
    d=$work/run$i; mkdir -p "$d"
    # Rotate who goes first, so no side always gets the warmest machine.
    case $(( i % 4 )) in
        0) order="git cached plain copied" ;;
        1) order="cached plain copied git" ;;
        2) order="plain copied git cached" ;;
        3) order="copied git cached plain" ;;
    esac
    for who in $order; do
        case $who in
            git) add git "$(timed git clone -q --depth 1 "$url" "$d/git")" ;;
            cached) add cached "$(timed "$agentenv" provision "$work/spec.yaml" --workdir "$d/cached" --cache-dir "$cache")" ;;
            copied) add copied "$(timed "$agentenv" provision "$work/spec.yaml" --workdir "$d/copied" --cache-dir "$copied")" ;;
            plain) add plain "$(timed "$agentenv" provision "$work/spec.yaml" --workdir "$d/plain")" ;;
        esac
    done
    # The floor: writing the work tree, which no cache saves.
    git clone -q --depth 1 --no-checkout "$url" "$d/nc"
    add checkout "$(timed git -C "$d/nc" checkout -q "$branch")"
    # run's own cost: on an up-to-date workdir provision is a tip check, so what is left is
    # the MCP configuration, the child process and the clean-up.
    if (( i % 2 )); then order="provision run"; else order="run provision"; fi
    for who in $order; do
        case $who in
            provision) add warm_provision "$(timed "$agentenv" provision "$work/spec.yaml" --workdir "$d/plain")" ;;
            run) add warm_run "$(timed "$agentenv" run "$work/spec.yaml" --workdir "$d/plain" -- true)" ;;
        esac
    done
    add cold_run "$(timed "$agentenv" run "$work/spec.yaml" --workdir "$d/run" --cache-dir "$cache" -- true)"
    # The same checkout on every side.
    head=$(git -C "$d/git" rev-parse HEAD)
    for w in cached/repo copied/repo plain/repo run/repo; do
        [ "$(git -C "$d/$w" rev-parse HEAD)" = "$head" ] || { echo "$w is not at $head" >&2; exit 1; }
    done
    [ ! -e "$d/cached/repo/.git/objects/info/alternates" ]
    for w in cached copied; do
        [ -z "$(git -C "$d/$w/repo" status --porcelain)" ] || { echo "$w: work tree not clean" >&2; exit 1; }
    done
    # Hard links on one file system, copies across.
    pack=$(ls "$d/cached/repo/.git/objects/pack/"*.pack | head -n 1)
    [ "$(stat -c %h "$pack")" -gt 1 ] || { echo "cached: packs not hard-linked" >&2; exit 1; }
    pack=$(ls "$d/copied/repo/.git/objects/pack/"*.pack | head -n 1)
    [ "$(stat -c %h "$pack")" -eq 1 ] || { echo "copied: packs not copied" >&2; exit 1; }
    rm -rf "$d"
done
# The last cached checkout is sound on its own (checked once: fsck of a full repository is slow).
"$agentenv" provision "$work/spec.yaml" --workdir "$work/check" --cache-dir "$cache" >/dev/null 2>&1
rm -rf "$cache"
git -C "$work/check/repo" fsck --no-progress --connectivity-only >/dev/null
echo "a checkout from the cache passes git fsck after the cache is deleted" >&2

ratio() { # ratio A B: median of the per-run ratios A / B
    paste <(printf '%s' "${samples[$1]}") <(printf '%s' "${samples[$2]}") \
        | awk '{ printf "%.6f\n", $1 / $2 }' | median
}
ms() { printf '%s' "${samples[$1]}" | median | awk '{ printf "%.0f", $1 / 1000 }'; }
row() { # row LABEL A B TARGET
    local r; r=$(ratio "$2" "$3")
    awk -v l="$1" -v a="$(ms "$2")" -v b="$(ms "$3")" -v r="$r" -v t="$4" 'BEGIN {
        printf "%-44s %8d %8d %8.2fx  %s\n", l, a, b, r, t }'
}
printf '\n%-44s %8s %8s %9s  %s\n' case "A (ms)" "B (ms)" "A/B" target
row "cold provision, warm cache / git clone -d1" cached git "<= 0.50"
row "  cache on another fs (copied) / git clone" copied git "<= 0.50"
row "cold provision, no cache / git clone -d1" plain git "-"
row "git checkout alone (work tree) / git clone" checkout git "-"
row "cold provision, warm cache / no cache" cached plain "-"
row "run -- true / provision, up to date" warm_run warm_provision "-"
row "run -- true, cold, warm cache / provision" cold_run cached "-"
printf '%-44s %8s ms\n' "run -- true overhead, up to date (median A-B)" \
    "$(paste <(printf '%s' "${samples[warm_run]}") <(printf '%s' "${samples[warm_provision]}") \
        | awk '{ printf "%.1f\n", ($1 - $2) / 1000 }' | median)"
echo "($runs runs; times are medians; $(git --version); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg))"
