#!/usr/bin/env python3
"""`agentenv tool … search_code` vs `rg` on the same checkout and pattern, side by side in one
run: whole-process wall time, median of N alternating runs, and the ratio (target ≤ 1.5×).

Usage: search_vs_rg.py AGENTENV_BIN SPEC WORKDIR [RUNS]

Both search the same files: rg gets --hidden (agentenv searches dotfiles), -g '!.git',
--no-ignore-parent (agentenv reads only the repository's own ignore files), -S (smart case,
agentenv's default) and -F for literal queries.
"""

import json
import statistics
import subprocess
import sys
import time

CASES = [
    # (label, query, regex)
    ("rare literal", "FIXME(bench)", False),
    ("common literal", "payment", False),
    ("regex", r"fn [a-z]+_refund\(", True),
    ("no match", "zebra_does_not_occur", False),
]


def wall(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main():
    binary, spec, workdir = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 15
    repo = f"{workdir}/bigrepo"
    print(f"{'case':<16} {'agentenv ms':>12} {'rg ms':>8} {'ratio':>6}")
    worst = 0.0
    for label, query, regex in CASES:
        ours = [binary, "tool", spec, "search_code", "--workdir", workdir,
                "--arg", f"query={query}", "--arg", f"regex={'true' if regex else 'false'}"]
        theirs = ["rg", "--hidden", "--no-ignore-parent", "-g", "!.git", "-S", "-n",
                  "--no-heading", *([] if regex else ["-F"]), "-e", query, repo]
        # Same answer count first: a fast wrong answer is not a result.
        out = subprocess.run(ours, capture_output=True, text=True, check=True).stdout
        total = json.loads(out)["total_matches"]
        rg_lines = subprocess.run(theirs, capture_output=True, text=True).stdout.count("\n")
        assert total == rg_lines, f"{label}: agentenv found {total} matches, rg {rg_lines}"
        wall(ours), wall(theirs)  # warm the page cache for both
        a, b = [], []
        for _ in range(runs):
            a.append(wall(ours))
            b.append(wall(theirs))
        ma, mb = statistics.median(a) * 1000, statistics.median(b) * 1000
        worst = max(worst, ma / mb)
        print(f"{label:<16} {ma:>12.1f} {mb:>8.1f} {ma / mb:>5.2f}x   ({total} matches)")
    print(f"worst ratio {worst:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
