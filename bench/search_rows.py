#!/usr/bin/env python3
"""`search_code` against one `rg -n` process on the same checkout, side by side in one run:
inside a warm `agentenv serve` (per call, over stdio) and through `agentenv tool` (a whole
process). Prints markdown rows: median time of each side and the median of per-run ratios.

Usage: search_rows.py AGENTENV_BIN SPEC WORKDIR REPO [RUNS]

rg searches what search_code searches: --hidden (dotfiles), -g '!.git', --no-ignore-parent
(only the repository's own ignore files), -S (smart case), -F for literals. Both must report
the same number of matches first, and search_code must return every match (no truncation).
"""

import json
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ left in bench/
sys.path.insert(0, __file__.rsplit("/", 1)[0])
from serve_latency import Client  # noqa: E402

CASES = [
    # (label, query, regex)
    ("literal", "JoinHandle", False),
    ("regex", r"impl<T> [A-Z]", True),
]


def rg_cmd(query, regex, path):
    return ["rg", "--hidden", "--no-ignore-parent", "-g", "!.git", "-S", "-n", "--no-heading",
            *([] if regex else ["-F"]), "-e", query, path]


def wall(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def row(label, ours, theirs, ref, target):
    a, b = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    r = statistics.median(x / y for x, y in zip(ours, theirs))
    if target is None:
        goal = "—"
    else:
        goal = f"≤ {target:.1f}×" + ("" if r <= target else " **over**")
    print(f"| {label} | {a:.1f} ms | {ref} {b:.1f} ms | {r:.2f}× | {goal} |")


def main():
    binary, spec, workdir, repo = sys.argv[1:5]
    runs = int(sys.argv[5]) if len(sys.argv) > 5 else 21
    path = f"{workdir}/{repo}"
    client = Client.serve(binary, spec, workdir)
    rows = []
    for label, query, regex in CASES:
        args = {"repo": repo, "query": query, "regex": regex, "limit": 500}
        theirs_cmd = rg_cmd(query, regex, path)
        ours_cmd = [binary, "tool", spec, "search_code", "--workdir", workdir,
                    "--arg", f"repo={repo}", "--arg", f"query={query}",
                    "--arg", f"regex={'true' if regex else 'false'}", "--arg", "limit=500"]
        result = client.request("tools/call", {"name": "search_code", "arguments": args})
        found = json.loads(result["content"][0]["text"])
        rg_lines = subprocess.run(theirs_cmd, capture_output=True, text=True).stdout.count("\n")
        assert found["total_matches"] == rg_lines, \
            f"{label}: search_code found {found['total_matches']}, rg {rg_lines}"
        assert len(found["matches"]) == rg_lines, f"{label}: search_code truncated its answer"
        tool = json.loads(subprocess.run(ours_cmd, capture_output=True, text=True,
                                         check=True).stdout)
        assert tool["total_matches"] == rg_lines, f"{label}: agentenv tool disagrees"
        for _ in range(3):  # warm-up: page cache, the server's repository pool, rg's binary
            client.request("tools/call", {"name": "search_code", "arguments": args})
            wall(theirs_cmd)
            wall(ours_cmd)
        serve, rg_a, tool_t, rg_b = [], [], [], []
        for i in range(runs):
            # Alternate who goes first, so neither side always gets the warmer cache.
            pair = [("serve", None), ("rg", None)]
            for who, _ in (pair if i % 2 else pair[::-1]):
                if who == "serve":
                    start = time.perf_counter()
                    client.request("tools/call", {"name": "search_code", "arguments": args})
                    serve.append(time.perf_counter() - start)
                else:
                    rg_a.append(wall(theirs_cmd))
            if i % 2:
                tool_t.append(wall(ours_cmd))
                rg_b.append(wall(theirs_cmd))
            else:
                rg_b.append(wall(theirs_cmd))
                tool_t.append(wall(ours_cmd))
        n = rg_lines
        rows.append((f"`search_code` warm, inside `serve`, {label}, {n} hits", serve, rg_a,
                     "one `rg -n` process", 1.0))
        rows.append((f"`search_code` through `agentenv tool`, {label}, {n} hits", tool_t, rg_b,
                     "`rg -n`", None))
    client.close()
    for r in rows:
        row(*r)


if __name__ == "__main__":
    main()
