#!/usr/bin/env bash
# search_code and serve benchmarks, side by side with ripgrep, on a generated checkout of
# ≥ 10,000 files. Usage: bench/search.sh [RUNS|--serve-only]   (BENCH_DIR overrides the
# scratch folder; --serve-only runs only the warm-serve latency and memory part)
set -euo pipefail
cd "$(dirname "$0")/.."
serve_only=false
if [ "${1:-}" = "--serve-only" ]; then serve_only=true; shift; fi
runs="${1:-15}"
root="${BENCH_DIR:-${TMPDIR:-/tmp}/agentenv-bench-search}"

if ! command -v rg >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y ripgrep >/dev/null || true
  fi
fi

cargo build --release --quiet
bin="$PWD/target/release/agentenv"
spec="$(python3 bench/search_fixture.py "$root" 12000)"
workdir="$root/work"
echo "checkout: $(git -C "$workdir/bigrepo" ls-files | wc -l) files, $(du -sh --exclude=.git "$workdir/bigrepo" | cut -f1)"
echo "agentenv $("$bin" --version | cut -d' ' -f2), $(command -v rg >/dev/null && rg --version | sed -n 1p || echo "rg missing")"
echo

if $serve_only; then
  :
elif command -v rg >/dev/null; then
  echo "## search_code vs rg (whole process, median of $runs)"
  python3 bench/search_vs_rg.py "$bin" "$spec" "$workdir" "$runs"
else
  echo "## search_code vs rg: SKIPPED — ripgrep is not installed (apt-get install -y ripgrep)"
fi
echo
echo "## warm serve over stdio"
python3 bench/serve_latency.py "$bin" "$spec" "$workdir"
