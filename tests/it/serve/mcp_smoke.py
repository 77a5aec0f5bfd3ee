#!/usr/bin/env python3
"""Interop smoke test: the official MCP Python SDK (`pip install mcp`) drives `agentenv serve`.

Usage: mcp_smoke.py AGENTENV_BIN ENV_SPEC WORKDIR CASES_JSON

Spawns `AGENTENV_BIN serve ENV_SPEC --workdir WORKDIR` over stdio (with this process's
environment, which holds the spec's `from_env` secrets), checks the server's identity, lists
the tools, and for every tool makes the successful call and the failing call CASES_JSON gives
(`{"tool": {"ok": {args}, "error": {args}}}`). The SDK must accept every result — it
validates them, so a rejected one raises — each success must carry text content and
`structuredContent`, each error `isError` with a text saying what failed and no structured
content. Arguments may be strings where the schema also takes them (`"2"`, `"true"`).
Exits 0 on success.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def field(obj, *names):
    """The SDK renamed fields between major versions (isError → is_error, …)."""
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


def text_of(result) -> str:
    blocks = result.content or []
    return blocks[0].text if blocks and getattr(blocks[0], "text", None) is not None else ""


async def main(binary: str, spec: str, workdir: str, cases_path: str) -> int:
    with open(cases_path) as f:
        cases = json.load(f)
    # The SDK passes a child only a safe subset of the environment unless given one.
    params = StdioServerParameters(
        command=binary, args=["serve", spec, "--workdir", workdir], env=dict(os.environ)
    )
    failures = []
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            server = field(init, "server_info", "serverInfo")
            assert server.name == "agentenv", f"server name is {server.name!r}"
            print(f"connected to {server.name} {server.version}")

            listed = await session.list_tools()
            tools = listed.tools
            assert tools, "the server lists no tools"
            for tool in tools:
                schema = field(tool, "input_schema", "inputSchema")
                assert schema and schema.get("type") == "object", f"{tool.name}: input schema {schema}"
                annotations = field(tool, "annotations")
                assert annotations is not None, f"{tool.name}: no annotations"
                if tool.name not in cases:
                    failures.append(f"{tool.name}: no case in {cases_path}")

            for tool in tools:
                case = cases.get(tool.name)
                if case is None:
                    continue
                try:
                    ok = await session.call_tool(tool.name, case["ok"])
                except Exception as e:  # the SDK refused the result
                    failures.append(f"{tool.name} ok: the SDK raised {type(e).__name__}: {e}")
                    continue
                structured = field(ok, "structured_content", "structuredContent")
                if field(ok, "is_error", "isError") or not text_of(ok) or structured is None:
                    failures.append(f"{tool.name} ok: {text_of(ok)[:300]}")
                else:
                    print(f"ok {tool.name}")
                try:
                    bad = await session.call_tool(tool.name, case["error"])
                except Exception as e:
                    failures.append(f"{tool.name} error: the SDK raised {type(e).__name__}: {e}")
                    continue
                structured = field(bad, "structured_content", "structuredContent")
                text = text_of(bad)
                if not field(bad, "is_error", "isError") or structured is not None or not text.startswith("error ("):
                    failures.append(f"{tool.name} error: not an error result: {text[:300]}")
                else:
                    print(f"error {tool.name}: {text.splitlines()[0][:120]}")
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(*sys.argv[1:])))
