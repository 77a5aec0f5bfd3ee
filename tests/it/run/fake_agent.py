"""A stand-in for an AI agent under `agentenv run`: it reads AGENTENV_MCP_CONFIG as Claude
Code, Codex and Cursor do, talks to the server it names, and records what it saw.

    fake_agent.py OUT_DIR stdio|http|env [EXIT_CODE]

Writes OUT_DIR/result.json: its working directory and environment, the configuration, and
what the server answered (stdio: initialize + one API tool call over a server it starts
itself; http: initialize with and without the bearer token). Also reads the handoff socket
directly, as a process agentenv did not configure, to show it gets nothing.
"""

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

out_dir, mode = sys.argv[1], sys.argv[2]
code = int(sys.argv[3]) if len(sys.argv) > 3 else 0
result = {"cwd": os.getcwd(), "env": dict(os.environ)}
config = json.load(open(os.environ["AGENTENV_MCP_CONFIG"]))
result["config"] = config

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "fake-agent", "version": "0"},
    },
}

if mode == "stdio":
    server = config["mcpServers"]["agentenv"]
    env = dict(os.environ)
    env.update(server.get("env", {}))
    proc = subprocess.Popen(
        [server["command"], *server["args"]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )

    def send(message):
        proc.stdin.write((json.dumps(message) + "\n").encode())
        proc.stdin.flush()

    send(INIT)
    result["initialize"] = json.loads(proc.stdout.readline())
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    send(
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "list_repositories",
                "arguments": {},
            },
        }
    )
    result["call"] = json.loads(proc.stdout.readline())
    proc.stdin.close()
    proc.wait(timeout=20)
    result["server_stderr"] = proc.stderr.read().decode()
    handoff = os.environ.get("AGENTENV_RUN_HANDOFF")
    if handoff:
        s = socket.socket(socket.AF_UNIX)
        s.connect(handoff)
        s.settimeout(5)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        result["direct_handoff"] = data.decode()
elif mode == "http":
    server = config["mcpServers"]["agentenv-http"]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    body = json.dumps(INIT).encode()
    base = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    with opener.open(
        urllib.request.Request(server["url"], data=body, headers={**base, **server["headers"]}),
        timeout=10,
    ) as r:
        result["http_status"] = r.status
    try:
        opener.open(urllib.request.Request(server["url"], data=body, headers=base), timeout=10)
        result["without_token"] = 200
    except urllib.error.HTTPError as e:
        result["without_token"] = e.code

with open(os.path.join(out_dir, "result.json"), "w") as f:
    json.dump(result, f)
sys.exit(code)
