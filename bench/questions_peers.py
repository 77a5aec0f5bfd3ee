"""The npm Bitbucket MCP servers issue 13 compared against, asked the same seven questions as
agentenv in the same run, against the same loopback emulator (`questions.py --peers DIR`).

DIR is a folder where they are installed side by side (not in this repository, and never
needed by CI):

    mkdir DIR && cd DIR && npm init -y && \\
      npm install @aashari/mcp-server-atlassian-bitbucket@3.1.0 bitbucket-mcp@5.0.6

Each peer is asked as an agent at its default settings would ask: the calls its tools offer for
the question, no output filters (`jq`, `fields`) an agent would have to know the answer's shape
to write. A question a peer has no tool for, or that the emulator cannot serve for it, is
reported as such, not scored.
"""

import json
import os
import re
from contextlib import AsyncExitStack

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

WS, SLUG = "acme", "agentenv"

# @aashari/mcp-server-atlassian-bitbucket sends every request to the hard-coded
# https://api.bitbucket.org; this preload points its `fetch` at the emulator instead. Only the
# transport changes: what the server asks and how it renders the answer are its own.
REDIRECT = """
const base = process.env.BENCH_API_BASE;
const real = globalThis.fetch;
globalThis.fetch = (url, opts) => {
  const s = typeof url === "string" ? url : url instanceof URL ? url.href : null;
  if (s && s.startsWith("https://api.bitbucket.org")) {
    url = base + s.slice("https://api.bitbucket.org".length);
  }
  return real(url, opts);
};
"""


class NotAsked(Exception):
    """The peer cannot answer this question here; the message says why."""


class Peer:
    name = ""
    package = ""
    bin = ""

    def __init__(self, peers_dir, base, email, token, root):
        self.dir, self.base, self.email, self.token, self.root = peers_dir, base, email, token, root

    def installed(self):
        return os.path.exists(self.script())

    def script(self):
        return os.path.join(self.dir, "node_modules", *self.package.split("/"), self.bin)

    def params(self):
        raise NotImplementedError


class Aashari(Peer):
    """@aashari/mcp-server-atlassian-bitbucket 3.1.0: `bb_get` on any API path (TOON output)."""

    name = "aashari"
    package = "@aashari/mcp-server-atlassian-bitbucket"
    bin = "dist/index.js"

    def params(self):
        shim = os.path.join(self.root, "redirect-bitbucket-api.cjs")
        with open(shim, "w") as f:
            f.write(REDIRECT)
        env = dict(os.environ, BENCH_API_BASE=self.base, ATLASSIAN_SITE_NAME="bench",
                   ATLASSIAN_USER_EMAIL=self.email, ATLASSIAN_API_TOKEN=self.token,
                   BITBUCKET_DEFAULT_WORKSPACE=WS, NODE_OPTIONS=f"--require {shim}",
                   HOME=self.root)
        return StdioServerParameters(command="node", args=[self.script()], env=env, cwd=self.root)

    # No `jq` filter: the answer as the server renders it by default.
    JQ = {}

    async def get(self, a, path, jq=None, **query):
        args = {"path": f"/2.0/repositories/{WS}/{SLUG}{path}"}
        if query:
            args["queryParams"] = {k: str(v) for k, v in query.items()}
        if jq and self.JQ:
            args["jq"] = self.JQ[jq]
        return await a.text("bb_get", args)

    async def pages(self, a, path, jq=None, **query):
        """A list and its further pages, as an agent follows `next`."""
        texts = [await self.get(a, path, jq, **query)]
        while (m := re.search(r"next\W+\S*[?&]page=(\w+)", texts[-1])) and len(texts) < 10:
            texts.append(await self.get(a, path, jq, **dict(query, page=m.group(1))))
        return "\n".join(texts)

    async def commits(self, a, t):
        await self.get(a, "/commits/main", "commits")

    async def commit(self, a, t):
        await self.get(a, f"/diffstat/{t['commit']}", "diffstat")

    async def read(self, a, t):
        # Cloud's src endpoint has no line range: the whole file comes back.
        await self.get(a, f"/src/{t['head']}/{t['read_path']}")

    async def usages(self, a, t):
        raise NotAsked("needs Bitbucket's code search (/workspaces/…/search/code), which the emulator does not serve")

    async def prs(self, a, t):
        await self.pages(a, "/pullrequests", "prs", state="OPEN")
        # Cloud's list omits reviewers: one call per open pull request (the ids the list
        # shows) for them.
        for pr_id in t["open_pr_ids"]:
            await self.get(a, f"/pullrequests/{pr_id}", "pr")

    async def pipelines(self, a, t):
        await self.get(a, "/pipelines", "pipelines", sort="-created_on")
        for uuid, step in t["failed_steps"]:
            await self.get(a, f"/pipelines/{uuid}/steps", "steps")
            await self.get(a, f"/pipelines/{uuid}/steps/{step}/log")

    async def branches(self, a, t):
        await self.pages(a, "/refs/branches", "branches")


class AashariJq(Aashari):
    """The same server with the `jq` (JMESPath) filter its tool description tells agents to
    always write, picking the fields each question needs: its best case, which needs an agent
    that knows the API's field names."""

    name = "aashari+jq"
    JQ = {
        "commits": "{next: next, values: values[*].{hash: hash, date: date, author: author.raw, message: message}}",
        "diffstat": "values[*].{status: status, old: old.path, new: new.path, added: lines_added, removed: lines_removed}",
        "prs": "{next: next, values: values[*].{id: id, title: title, author: author.display_name, source: source.branch.name, destination: destination.branch.name}}",
        "pr": "{id: id, title: title, state: state, reviewers: reviewers[*].display_name, approved: participants[?approved].user.display_name}",
        "pipelines": "values[*].{uuid: uuid, build: build_number, result: state.result.name, ref: target.ref_name, created: created_on}",
        "steps": "values[*].{uuid: uuid, name: name, result: state.result.name}",
        "branches": "{next: next, values: values[*].{name: name, hash: target.hash, date: target.date}}",
    }


class MatanYemini(Peer):
    """bitbucket-mcp 5.0.6 (MatanYemini): pull request and pipeline tools, `BITBUCKET_URL`."""

    name = "bitbucket-mcp"
    package = "bitbucket-mcp"
    bin = "dist/index.js"

    def params(self):
        env = dict(os.environ, BITBUCKET_URL=f"{self.base}/2.0", BITBUCKET_USERNAME=self.email,
                   BITBUCKET_PASSWORD=self.token, BITBUCKET_WORKSPACE=WS,
                   BITBUCKET_LOG_DISABLE="1", HOME=self.root)
        return StdioServerParameters(command="node", args=[self.script()], env=env, cwd=self.root)

    def none(self, what):
        raise NotAsked(f"no tool for {what}")

    async def commits(self, a, t):
        self.none("a repository's commits")

    async def commit(self, a, t):
        self.none("a commit's changes")

    async def read(self, a, t):
        self.none("reading a file")

    async def usages(self, a, t):
        self.none("code search")

    async def prs(self, a, t):
        await a.call("getPullRequests", {"workspace": WS, "repo_slug": SLUG, "state": "OPEN"})

    async def pipelines(self, a, t):
        await a.call("listPipelineRuns", {"workspace": WS, "repo_slug": SLUG, "status": "FAILED"})
        for uuid, step in t["failed_steps"]:
            await a.call("getPipelineSteps", {"workspace": WS, "repo_slug": SLUG, "pipeline_uuid": uuid})
            await a.call("getPipelineStepLogs", {"workspace": WS, "repo_slug": SLUG,
                                                 "pipeline_uuid": uuid, "step_uuid": step})

    async def branches(self, a, t):
        self.none("branches")


PEERS = [Aashari, AashariJq, MatanYemini]

# Not measured here: @atlassian-dc-mcp/bitbucket 0.34.0 depends on @atlassian-dc-mcp/common,
# which the npm registry does not serve (404), so it does not install.
NOT_INSTALLABLE = {"@atlassian-dc-mcp/bitbucket": "its dependency @atlassian-dc-mcp/common is not on the npm registry (404)"}


def unescaped(text):
    """JSON and TOON escape quotes, backslashes and newlines inside strings (a whole file comes
    back as one string): the facts are looked for in the text as sent and decoded."""
    decoded = []
    for line in text.splitlines():
        body = line.strip()
        if ": " in body and not body.startswith('"'):
            body = body.split(": ", 1)[1]
        if body.startswith('"') and body.endswith('"'):
            try:
                decoded.append(json.loads(body))
                continue
            except ValueError:
                pass
        decoded.append(line)
    return text + "\n" + "\n".join(decoded)


async def ask_peers(peers_dir, base, email, token, root, truth, facts, asker, size):
    """Per peer: (name, tools/list bytes, tool count, [(question, Asker | reason, n, lost)])."""
    # aashari saves every raw response under this hard-coded folder: the files this run made
    # are removed afterwards.
    raw_dir = "/tmp/mcp/mcp-server-atlassian-bitbucket"
    before = set(os.listdir(raw_dir)) if os.path.isdir(raw_dir) else set()
    try:
        return await _ask_peers(peers_dir, base, email, token, root, truth, facts, asker, size)
    finally:
        if os.path.isdir(raw_dir):
            for f in set(os.listdir(raw_dir)) - before:
                os.remove(os.path.join(raw_dir, f))
            for d in (raw_dir, os.path.dirname(raw_dir)):
                if not os.listdir(d):
                    os.rmdir(d)


async def _ask_peers(peers_dir, base, email, token, root, truth, facts, asker, size):
    out = []
    for cls in PEERS:
        peer = cls(peers_dir, base, email, token, root)
        if not peer.installed():
            out.append((peer.name, None, None, f"not installed in {peers_dir}"))
            continue
        try:
            out.append(await _ask_peer(peer, truth, facts, asker, size))
        except Exception as e:  # a peer that does not start is reported, agentenv's table stands
            out.append((peer.name, None, None, f"did not answer: {str(e)[:160]}"))
    return out


async def _ask_peer(peer, truth, facts, asker, size):
    with open(os.devnull, "w") as devnull:
        async with AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(stdio_client(peer.params(), errlog=devnull))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            listed = await session.list_tools()
            rows = []
            for question, method in [("recent commits", peer.commits),
                                     ("what changed in a commit", peer.commit),
                                     ("read a line range", peer.read),
                                     ("find usages", peer.usages),
                                     ("open PRs waiting for review", peer.prs),
                                     ("failed pipelines today and why", peer.pipelines),
                                     ("list branches", peer.branches)]:
                a = asker(session)
                try:
                    await method(a, truth)
                except NotAsked as e:
                    rows.append((question, str(e), 0, []))
                    continue
                except Exception as e:  # a failed call: shown with what it said
                    rows.append((question, f"failed: {str(e)[:160]}", 0, []))
                    continue
                want = facts(question, truth)
                text = unescaped("\n".join(a.texts))
                rows.append((question, a, len(want), [f for f in want if f not in text]))
            return (peer.name, size(listed), len(listed.tools), rows)
