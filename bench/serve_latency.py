#!/usr/bin/env python3
"""A warm `agentenv serve` over stdio: median per-call latency of read_file, get_commit and
search_code (target < 5 ms for read_file/get_commit), and the server's resident memory
(VmRSS after the calls and the VmHWM peak; target < 50 MB).

Usage: serve_latency.py AGENTENV_BIN SPEC WORKDIR [CALLS]

Speaks newline-delimited JSON-RPC directly (no SDK), so the figures are the server's and the
pipe's, not a client library's. A tool the server does not list is reported as skipped.
"""

import json
import statistics
import subprocess
import sys
import time


class Client:
    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.next_id = 0

    @classmethod
    def serve(cls, binary, spec, workdir):
        """`agentenv serve` on stdio, initialized."""
        client = cls([binary, "serve", spec, "--workdir", workdir])
        client.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                      "clientInfo": {"name": "bench", "version": "0"}})
        client.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return client

    def send(self, msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            msg = json.loads(self.proc.stdout.readline())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def memory_kb(self):
        fields = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def main():
    binary, spec, workdir = sys.argv[1:4]
    calls = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    head = subprocess.run(["git", "-C", f"{workdir}/bigrepo", "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    client = Client.serve(binary, spec, workdir)
    listed = {t["name"] for t in client.request("tools/list", {})["tools"]}
    cases = [
        ("read_file", {"repo": "bigrepo", "path": "mod07/sub7/file7.rs"}),
        ("get_commit", {"repo": "bigrepo", "commit": head}),
        ("search_code", {"repo": "bigrepo", "query": "FIXME(bench)", "include": "mod0*/**"}),
        ("search_code", {"repo": "bigrepo", "query": "FIXME(bench)"}),
    ]
    print(f"{'tool':<12} {'arguments':<48} {'median ms':>9} {'p90 ms':>7}")
    for name, args in cases:
        if name not in listed:
            print(f"{name:<12} skipped: the server does not serve it yet")
            continue
        n = calls if name != "search_code" else max(20, calls // 10)
        for _ in range(5):  # warm-up
            client.request("tools/call", {"name": name, "arguments": args})
        times = []
        for _ in range(n):
            start = time.perf_counter()
            result = client.request("tools/call", {"name": name, "arguments": args})
            times.append((time.perf_counter() - start) * 1000)
            if result.get("isError"):
                raise RuntimeError(f"{name} failed: {result['content'][0]['text']}")
        times.sort()
        p90 = times[int(len(times) * 0.9) - 1]
        print(f"{name:<12} {json.dumps(args)[:48]:<48} {statistics.median(times):>9.2f} {p90:>7.2f}")
    rss, hwm = client.memory_kb()
    print(f"server memory: VmRSS {rss / 1024:.1f} MB, peak VmHWM {hwm / 1024:.1f} MB (target < 50 MB)")
    client.close()


if __name__ == "__main__":
    main()
