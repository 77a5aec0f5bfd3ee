# Shared by the bench/*.sh scripts (source it after `set -euo pipefail`): the release binaries,
# a scratch directory removed on exit with every emulator started, git without the user's
# configuration, the loopback Bitbucket emulator, and the timing helpers.
#
#   root, agentenv, emulator, work    paths
#   build_release                     cargo build --release of both binaries (BENCH_NO_BUILD=1 skips)
#   start_emulator VAR ARGS...        run the emulator with ARGS, set VAR to its base URL
#   timed CMD...                      run CMD quietly, print its wall time in microseconds
#   median                            the median of numbers on stdin
#   add KEY VALUE / samples[KEY]      collect samples per case

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
agentenv=$root/target/release/agentenv
emulator=$root/target/release/bitbucket-emulator

build_release() {
    [ -z "${BENCH_NO_BUILD:-}" ] || return 0
    echo "building release binaries..." >&2
    (cd "$root" && cargo build --release --quiet -p agentenv --bin agentenv -p bitbucket-emulator --bin bitbucket-emulator)
}

work=$(mktemp -d)
bench_pids=()
bench_remove=() # more paths to remove on exit (a scratch dir on another file system)
bench_cleanup() {
    local pid
    for pid in "${bench_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work" "${bench_remove[@]}"
}
trap bench_cleanup EXIT

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

start_emulator() {
    local var=$1 out
    shift
    out=$(mktemp -p "$work" emu.XXXXXX)
    "$emulator" "$@" > "$out" 2> "$out.err" &
    bench_pids+=($!)
    for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
    [ -s "$out" ] || { echo "the emulator did not start:" >&2; cat "$out.err" >&2; exit 1; }
    printf -v "$var" '%s' "$(head -n 1 "$out")"
}

now_us() { echo $(( $(date +%s%N) / 1000 )); }
timed() {
    local s e
    s=$(now_us)
    "$@" > "$work/last.out" 2> "$work/last.err" || { echo "failed: $*" >&2; cat "$work/last.err" >&2; exit 1; }
    e=$(now_us)
    echo $(( e - s ))
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
declare -A samples
add() { samples[$1]+="$2"$'\n'; }
