#!/usr/bin/env python3
"""Seven questions an agent asks of Bitbucket, through the official MCP Python client
(`pip install mcp`), against `agentenv serve` at its default settings: calls and bytes per
question, whether each answer is complete, and the size of `tools/list`.

Usage: questions.py AGENTENV_BIN EMULATOR_BIN [ROOT]     (bench/questions.sh builds both)
       BENCH_SHOW=1 also prints every answer's text on stderr.

The repository is this one (its `main`, cloned bare into ROOT, default a temporary folder),
with 24 extra branches, served by the loopback Bitbucket emulator as Cloud `acme/agentenv`,
with pull requests and pipelines seeded through `--fixtures`: two of today's runs failed, each
with a ~600-line cargo log whose error lines sit ~550 lines from the end (behind cache and
artifact chatter, `Compiling thiserror` and `0 errors`), as in real Pipelines logs.

The questions, the calls an agent makes for them, and what a complete answer must hold
(checked against git and the seeded fixtures, not against agentenv's own answers):

1. recent commits          list_commits                     the subjects of the latest commits shown
2. what changed in commit  get_commit                       every path `git diff-tree --numstat` lists
3. read a line range       read_file 60 lines               every line of `git show` in that range
4. find usages             search_code (limit 500)          every line `git grep -F` finds
5. open PRs for review     list_pull_requests OPEN          every open PR's title and reviewers
6. failed pipelines today  list_pipelines + a log per run   every failed run and its error lines
7. list branches           list_branches                    every branch name

Bytes are the UTF-8 size of what the model reads (the text content) and of the whole result as
the client receives it (text + structuredContent, compact JSON). The best of three Bitbucket
MCP servers from npm, measured on the same questions (issue 13), is printed alongside.
"""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "ATATT-bench-questions-token"
EMAIL = "bot@example.com"
SCOPES = "read:repository:bitbucket,read:pullrequest:bitbucket,read:pipeline:bitbucket"

# Best of the three npm servers per question (calls, KB), from issue 13.
PEERS = {
    "recent commits": (1, 3.4),
    "what changed in a commit": (1, 5.2),
    "read a line range": (1, 3.0),
    "find usages": (1, 21.9),
    "open PRs waiting for review": (1, 1.3),
    "failed pipelines today and why": (5, 19.1),
    "list branches": (1, 4.4),
}
PEER_TOOLS_LIST_KB = 16.5  # the smallest peer's tools/list (20 tools)

USAGE_QUERY = "Result<"
READ_PATH, READ_START, READ_END = "src/tools/mod.rs", 150, 209


def git(*args, cwd=None):
    env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True).stdout


def cargo_log(build: int, failure: list[str]) -> tuple[str, list[str]]:
    """A failed `cargo test` step's log: setup, ~600 lines of compiling (with decoys), the
    failure, then cache and artifact upload chatter; the error lines come back as well."""
    lines = ["+ umask 000", "+ git clone --branch main --depth 50 $BITBUCKET_GIT_HTTP_ORIGIN",
             "+ cargo build --locked && cargo test --locked"]
    crates = ["thiserror", "error-chain", "serde", "tokio", "regex", "anyhow", "git2", "rustls"]
    for i in range(40):
        lines.append(f"  Downloaded {crates[i % len(crates)]}-dep{i} v0.{i}.0")
    for i in range(520):
        lines.append(f"   Compiling {crates[i % len(crates)]}{'' if i < 8 else f'-{i}'} v1.{i % 40}.{i % 7}")
        if i % 97 == 13:
            lines.append("lint: 0 errors, 2 warnings")
    lines += failure
    lines += ["", "Searching for files matching artifact pattern target/debug/*.log",
              "Cache \"cargo\": Skipping upload for existing cache"]
    for i in range(10):
        lines.append(f"Uploading artifact {i}: found 0 vulnerabilities")
    errors = [l for l in failure if re.match(r"^(error|test .* FAILED|thread )", l)]
    return "\n".join(lines) + "\n", errors


def fixtures(head: str, today: datetime) -> tuple[dict, dict]:
    """Pull requests and pipelines for acme/agentenv, and what a complete answer names."""
    people = ["carol", "dave", "erin", "frank"]
    prs = []
    for i in range(1, 13):
        state = "OPEN" if i <= 8 else ("MERGED" if i <= 11 else "DECLINED")
        prs.append({"workspace": "acme", "slug": "agentenv", "id": i,
                    "title": f"Change {i}: {['tidy the cache', 'faster search', 'log region', 'retry budget'][i % 4]}",
                    "state": state, "source_branch": f"feature/f{i:02}", "destination_branch": "main",
                    "author": people[i % 4], "reviewers": [people[(i + 1) % 4], people[(i + 2) % 4]],
                    "created_on": (today - timedelta(days=i)).strftime("%Y-%m-%dT%H:%M:%S.000000+00:00"),
                    "updated_on": (today - timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%S.000000+00:00")})
    pipelines, failed = [], {}
    failures = {
        3: ["   Compiling agentenv v0.1.0 (/opt/atlassian/pipelines/agent/build)",
            "error[E0308]: mismatched types",
            "  --> src/tools/paging.rs:42:22",
            "   |",
            "42 |     let total: u32 = amounts.iter().sum::<u64>();",
            "   |                ---   ^^^^^^^^^^^^^^^^^^^^^^^^^ expected `u32`, found `u64`",
            "error: could not compile `agentenv` (lib) due to 1 previous error"],
        6: ["     Running unittests src/lib.rs (target/debug/deps/agentenv-1f2e)",
            "running 74 tests",
            "test tools::paging::tests::cursors_round_trip ... FAILED",
            "failures:",
            "---- tools::paging::tests::cursors_round_trip stdout ----",
            "thread 'tools::paging::tests::cursors_round_trip' panicked at src/tools/paging.rs:88:9:",
            "assertion `left == right` failed",
            "test result: FAILED. 73 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out"],
    }
    for n in range(1, 9):
        created = today.replace(hour=0, minute=0, second=0) + timedelta(minutes=5 * n)
        uuid = f"{{{n:08x}-2222-4333-8444-555555555555}}"
        result = "FAILED" if n in failures else "SUCCESSFUL"
        steps = [{"uuid": f"{{{n:08x}-bbbb-4ccc-8ddd-eeeeeeeeeeee}}", "name": "Build and test",
                  "result": result}]
        if n in failures:
            log, errors = cargo_log(n, failures[n])
            steps[0]["log"] = log
            failed[uuid] = errors
        pipelines.append({"workspace": "acme", "slug": "agentenv", "uuid": uuid, "build_number": n,
                          "result": result, "ref_name": "main", "commit": head,
                          "created_on": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                          "completed_on": (created + timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                          "duration_in_seconds": 360, "steps": steps})
    # Yesterday's failure is not today's question.
    old = today - timedelta(days=1, hours=2)
    pipelines.append({"workspace": "acme", "slug": "agentenv", "uuid": "{00000000-2222-4333-8444-555555555555}",
                      "build_number": 0, "result": "FAILED", "ref_name": "main", "commit": head,
                      "created_on": old.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                      "completed_on": old.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                      "steps": [{"name": "Build and test", "result": "FAILED", "log": "error: old\n"}]})
    open_prs = {p["title"]: p["reviewers"] for p in prs if p["state"] == "OPEN"}
    return {"pull_requests": prs, "pipelines": pipelines}, {"open_prs": open_prs, "failed": failed}


def field(obj, *names):
    """The SDK renamed fields between major versions (isError → is_error, …)."""
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


def structured(result):
    return field(result, "structured_content", "structuredContent")


def text_of(result) -> str:
    return "".join(b.text for b in result.content or [] if getattr(b, "text", None) is not None)


def size(model) -> int:
    return len(json.dumps(model.model_dump(by_alias=True, exclude_none=True, mode="json"),
                          separators=(",", ":"), ensure_ascii=False).encode())


class Asker:
    def __init__(self, session):
        self.session = session
        self.calls = 0
        self.text_bytes = 0
        self.result_bytes = 0
        self.texts = []

    async def call(self, tool, args):
        result = await self.session.call_tool(tool, args)
        self.calls += 1
        text = text_of(result)
        self.text_bytes += len(text.encode())
        self.result_bytes += size(result)
        self.texts.append(text)
        if field(result, "is_error", "isError"):
            raise RuntimeError(f"{tool} {args}: {text}")
        return result


def missing(text: str, facts) -> list[str]:
    return [f for f in facts if f not in text]


async def questions(session, truth):
    """Each question: (name, coroutine asking it, facts a complete answer holds)."""
    out = []

    async def ask(name, fn):
        a = Asker(session)
        facts = await fn(a)
        lost = missing("\n".join(a.texts), facts)
        out.append((name, a, len(facts), lost))

    async def commits(a):
        r = await a.call("list_commits", {"repo": "agentenv"})
        shown = len(structured(r)["commits"])
        return truth["subjects"][:shown]

    async def commit(a):
        await a.call("get_commit", {"repo": "agentenv", "commit": truth["commit"]})
        return truth["commit_paths"]

    async def read(a):
        await a.call("read_file", {"repo": "agentenv", "path": READ_PATH,
                                   "start_line": READ_START, "end_line": READ_END})
        return [l.strip() for l in truth["range"] if l.strip()]

    async def usages(a):
        await a.call("search_code", {"repo": "agentenv", "query": USAGE_QUERY, "limit": 500})
        return truth["usages"]

    async def prs(a):
        await a.call("list_pull_requests", {"repo": "agentenv", "state": "OPEN"})
        return [t for t in truth["open_prs"]] + sorted({r for rs in truth["open_prs"].values() for r in rs})

    async def pipelines(a):
        r = await a.call("list_pipelines", {"repo": "agentenv", "state": "FAILED", "since": truth["today"]})
        for p in structured(r)["pipelines"]:
            await a.call("get_pipeline_log", {"repo": "agentenv", "pipeline": p["uuid"]})
        return [e for errors in truth["failed"].values() for e in errors] + list(truth["failed"])

    async def branches(a):
        await a.call("list_branches", {"repo": "agentenv"})
        return truth["branches"]

    await ask("recent commits", commits)
    await ask("what changed in a commit", commit)
    await ask("read a line range", read)
    await ask("find usages", usages)
    await ask("open PRs waiting for review", prs)
    await ask("failed pipelines today and why", pipelines)
    await ask("list branches", branches)
    return out


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    agentenv, emulator = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    root = sys.argv[3] if len(sys.argv) > 3 else tempfile.mkdtemp(prefix="agentenv-questions-")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    try:
        asyncio.run(run(agentenv, emulator, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def run(agentenv, emulator, root):
    bare = os.path.join(root, "agentenv.git")
    git("clone", "-q", "--bare", "--single-branch", "--branch", "main", REPO_ROOT, bare)
    head = git("rev-parse", "HEAD", cwd=bare).strip()
    revs = git("rev-list", "--max-count=48", "HEAD", cwd=bare).split()
    for i in range(24):
        git("branch", f"feature/f{i + 1:02}", revs[i * 2], cwd=bare)
    # The commit asked about: the latest one that changes several files.
    commit = next(r for r in revs if 3 <= len(git("diff-tree", "--no-commit-id", "-r", "--name-only", r, cwd=bare).split()) <= 12)
    today = datetime.now(timezone.utc).replace(microsecond=0)
    seed, seeded = fixtures(head, today)
    with open(os.path.join(root, "fixtures.json"), "w") as f:
        json.dump(seed, f)
    truth = {
        "subjects": git("log", "--format=%s", "-100", "HEAD", cwd=bare).splitlines(),
        "commit": commit,
        "commit_paths": [l.split("\t")[-1] for l in git("diff-tree", "--no-commit-id", "-r", "-M", "--numstat", commit, cwd=bare).splitlines()],
        "range": git("show", f"HEAD:{READ_PATH}", cwd=bare).splitlines()[READ_START - 1:READ_END],
        "usages": [],
        "branches": git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=bare).split(),
        "today": today.strftime("%Y-%m-%d"),
        **seeded,
    }
    grep = subprocess.run(["git", "grep", "-F", "-n", "-I", USAGE_QUERY, "HEAD"], cwd=bare,
                          capture_output=True, text=True).stdout.splitlines()
    # `HEAD:path:line:text` → each hit's path and its line as `line:text`.
    for hit in grep:
        _, path, line, text = hit.split(":", 3)
        truth["usages"] += [path, f"{line}:{text}"]

    emu = subprocess.Popen([emulator, "--cloud-repo", f"acme/agentenv={bare}",
                            "--token", f"cloud-api:{EMAIL}:bot:{TOKEN}:{SCOPES}",
                            "--fixtures", os.path.join(root, "fixtures.json")],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        base = emu.stdout.readline().strip()
        spec = os.path.join(root, "questions.yaml")
        with open(spec, "w") as f:
            f.write(f"""version: 1
name: questions
providers:
  bb:
    kind: cloud
    workspace: acme
    api_url: {base}/2.0
    git_url: {base}
    auth: {{ type: api-token, email: {EMAIL}, token: BENCH_TOKEN }}
secrets:
  from_env: [BENCH_TOKEN]
repos:
  - provider: bb
    slug: agentenv
    depth: 0
""")
        env = dict(os.environ, BENCH_TOKEN=TOKEN,
                   AGENTENV_PERSONAL_FILE=os.path.join(root, "no-personal.yaml"))
        env = {k: v for k, v in env.items() if not k.startswith("AGENTENV_") or k == "AGENTENV_PERSONAL_FILE"}
        workdir = os.path.join(root, "work")
        subprocess.run([agentenv, "provision", spec, "--workdir", workdir], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        params = StdioServerParameters(command=agentenv, args=["serve", spec, "--workdir", workdir], env=env)
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                list_bytes = size(listed)
                answers = await questions(session, truth)
    finally:
        emu.stdin.close()
        emu.wait(timeout=10)

    if os.environ.get("BENCH_SHOW"):  # the answers themselves, to read what an agent reads
        for name, a, _, _ in answers:
            print(f"===== {name}\n" + "\n-----\n".join(a.texts), file=sys.stderr)
    print(f"tools/list: {len(listed.tools)} tools, {list_bytes / 1000:.1f} KB "
          f"(smallest peer: {PEER_TOOLS_LIST_KB} KB for 20 tools)")
    print(f"the usages question: `{USAGE_QUERY}`, {len(truth['usages']) // 2} lines by git grep")
    print()
    print(f"| question | calls | text KB | result KB | complete | best peer (calls / KB) |")
    print(f"| --- | ---: | ---: | ---: | --- | --- |")
    worse = []
    for name, a, n, lost in answers:
        peer_calls, peer_kb = PEERS[name]
        complete = "yes" if not lost else f"NO: {len(lost)} of {n} facts missing"
        print(f"| {name} | {a.calls} | {a.text_bytes / 1000:.1f} | {a.result_bytes / 1000:.1f} | {complete} | {peer_calls} / {peer_kb} |")
        if lost:
            print(f"    missing: {lost[:5]}", file=sys.stderr)
        if a.calls > peer_calls or a.text_bytes / 1000 > peer_kb:
            worse.append(name)
    print()
    print("text KB: what the model reads; result KB: text + structuredContent as received.")
    if worse:
        print(f"more calls or text bytes than the best peer: {', '.join(worse)}")


if __name__ == "__main__":
    main()
