#!/usr/bin/env python3
"""Interop smoke test: the official MCP Python SDK (`pip install mcp`) drives `agentenv serve`.

Usage: mcp_smoke.py AGENTENV_BIN ENV_SPEC WORKDIR REPO COMMIT

Spawns `AGENTENV_BIN serve ENV_SPEC --workdir WORKDIR` over stdio, checks the server's
identity, lists the tools (each with input and output schemas), calls every one with valid
arguments for REPO (COMMIT for get_commit) and fails on any error result. Exits 0 on success.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def args_for(tool: str, repo: str, commit: str) -> dict:
    known = {
        "search_code": {"query": "TODO", "repo": repo},
        "list_branches": {"repo": repo},
        "browse": {"repo": repo},
        "read_file": {"repo": repo, "path": "README.md"},
        "list_commits": {"repo": repo},
        "get_commit": {"repo": repo, "commit": commit},
    }
    return known.get(tool, {"repo": repo})


def field(obj, *names):
    """The SDK renamed fields between major versions (isError → is_error, …)."""
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


async def main(binary: str, spec: str, workdir: str, repo: str, commit: str) -> int:
    params = StdioServerParameters(command=binary, args=["serve", spec, "--workdir", workdir])
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
                output = field(tool, "output_schema", "outputSchema")
                assert schema and schema.get("type") == "object", f"{tool.name}: input schema {schema}"
                assert output and output.get("type") == "object", f"{tool.name}: no output schema"

            failures = []
            for tool in tools:
                result = await session.call_tool(tool.name, args_for(tool.name, repo, commit))
                is_error = field(result, "is_error", "isError")
                structured = field(result, "structured_content", "structuredContent")
                text = result.content[0].text if result.content else ""
                if is_error or structured is None or json.loads(text) != structured:
                    failures.append(f"{tool.name}: error={is_error} text={text[:300]}")
                else:
                    print(f"ok {tool.name}")
            # A typed tool error comes back as an error result, not a protocol failure.
            bad = await session.call_tool("search_code", {"query": "(", "regex": True})
            bad_structured = field(bad, "structured_content", "structuredContent")
            if not field(bad, "is_error", "isError") or bad_structured.get("kind") != "invalid_argument":
                failures.append(f"invalid regex did not give an invalid_argument error: {bad}")
            for failure in failures:
                print(f"FAIL {failure}", file=sys.stderr)
            return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(*sys.argv[1:])))
