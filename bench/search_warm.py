#!/usr/bin/env python3
"""Warm `search_code` inside one `agentenv serve` (stdio JSON-RPC) against one `rg -n` process
on the same checkout, side by side in one run: per-case medians of alternating runs and the
median of the paired ratios agentenv / rg (target <= 1.0x; <= 1.2x on the 10x repository).

Usage: search_warm.py AGENTENV_BIN SPEC WORKDIR REPO_NAME [RUNS]

Both sides search the same files (the committed tree of a clean checkout, which is what
`search_code` searches by default): rg gets --hidden -g '!.git' --no-ignore-parent -S, and -F
for literal queries. Each case first checks that both find the same number of matches.
"""

import json
import statistics
import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from serve_latency import Client  # noqa: E402

CASES = [
    # (label, query, regex)
    ("literal", "poll_ready", False),
    ("literal, rare", "DEFAULT_MAX_FRAME", False),
    ("literal, smart case", "waker", False),
    ("regex", r"fn [a-z_]+_mut\(", True),
    ("regex, alternation", r"(Arc|Rc)<Mutex<", True),
]


def main():
    binary, spec, workdir, name = sys.argv[1:5]
    runs = int(sys.argv[5]) if len(sys.argv) > 5 else 21
    repo = f"{workdir}/{name}"
    client = Client.serve(binary, spec, workdir)

    def ours(query, regex):
        start = time.perf_counter()
        res = client.request("tools/call", {"name": "search_code", "arguments": {
            "query": query, "regex": regex, "repo": name, "limit": 500}})
        return time.perf_counter() - start, res

    print(f"{'case':<22} {'matches':>7} {'serve ms':>9} {'rg ms':>7} {'ratio':>6}")
    ratios_all = []
    for label, query, regex in CASES:
        theirs = ["rg", "--hidden", "--no-ignore-parent", "-g", "!.git", "-S", "-n",
                  "--no-heading", *([] if regex else ["-F"]), "-e", query, repo]
        _, res = ours(query, regex)
        if res.get("isError"):
            raise SystemExit(f"{label}: {res}")
        total = res["structuredContent"]["total_matches"]
        rg_out = subprocess.run(theirs, capture_output=True, text=True).stdout
        rg_lines = rg_out.count("\n")
        assert total == rg_lines, f"{label}: agentenv found {total} matches, rg {rg_lines}"
        a, b, ratios = [], [], []
        for i in range(runs):
            # Alternate which side goes first.
            order = [0, 1] if i % 2 == 0 else [1, 0]
            pair = [0.0, 0.0]
            for side in order:
                if side == 0:
                    pair[0] = ours(query, regex)[0]
                else:
                    start = time.perf_counter()
                    subprocess.run(theirs, stdout=subprocess.DEVNULL, check=False)
                    pair[1] = time.perf_counter() - start
            a.append(pair[0])
            b.append(pair[1])
            ratios.append(pair[0] / pair[1])
        r = statistics.median(ratios)
        ratios_all.append(r)
        print(f"{label:<22} {total:>7} {statistics.median(a) * 1000:>9.1f} "
              f"{statistics.median(b) * 1000:>7.1f} {r:>5.2f}x")
    print(f"worst median ratio {max(ratios_all):.2f}x")
    client.close()


if __name__ == "__main__":
    main()
