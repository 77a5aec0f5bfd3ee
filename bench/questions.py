#!/usr/bin/env python3
"""Seven questions an agent asks of Bitbucket, through the official MCP Python client
(`pip install mcp`), against `agentenv serve` at its default settings: calls and bytes per
question, whether each answer is complete, and the size of `tools/list`.

Usage: questions.py [--peers DIR] AGENTENV_BIN EMULATOR_BIN [ROOT]
       BENCH_SHOW=1 also prints every answer's text on stderr.
       --peers DIR also asks the npm Bitbucket MCP servers installed in DIR the same questions
       in the same run, against the same emulator (questions_peers.py says how to install
       them; nothing here or in CI needs them otherwise).

The repository is this one at a fixed commit (BENCH_REV, default the commit that added this
script, so that figures from different days describe the same data: the tree, the history and
the `Result<` hits), cloned bare into ROOT (default a temporary folder) as its `main`, with 24
extra branches, served by the loopback Bitbucket emulator as Cloud `acme/agentenv`,
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
MCP servers from npm as issue 13 published it is printed alongside; with --peers, the peers'
own answers from this run follow, with agentenv's text bytes as a ratio of the best complete
peer answer's.
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
# The repository as the questions see it: main when this script was added (427 `Result<` hits).
BENCH_REV = os.environ.get("BENCH_REV", "384f0ffb89882026dcaa2ddd0316ffa507f041e8")
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
    # Reviewers are not authors, so an answer without reviewers cannot pass for one with them.
    reviewers = ["grace", "heidi", "ivan", "judy"]
    prs = []
    for i in range(1, 13):
        state = "OPEN" if i <= 8 else ("MERGED" if i <= 11 else "DECLINED")
        prs.append({"workspace": "acme", "slug": "agentenv", "id": i,
                    "title": f"Change {i}: {['tidy the cache', 'faster search', 'log region', 'retry budget'][i % 4]}",
                    "state": state, "source_branch": f"feature/f{i:02}", "destination_branch": "main",
                    "author": people[i % 4], "reviewers": [reviewers[i % 4], reviewers[(i + 1) % 4]],
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

    async def text(self, tool, args) -> str:
        await self.call(tool, args)
        return self.texts[-1]


def missing(text: str, facts) -> list[str]:
    # A hit is the same fact with or without its indentation (agentenv leaves it out of lines
    # shown without context): compare `line:text` with the text's leading blanks removed.
    text = re.sub(r"^(\d+):[ \t]+", r"\1:", text, flags=re.M)
    return [f for f in facts if f not in text]


def facts(question, truth):
    """What a complete answer holds, for a server whose answer's shape we do not parse: the
    latest 15 commits (agentenv's default page), and the rest as for agentenv."""
    return {
        "recent commits": lambda: truth["subjects"][:15],
        "what changed in a commit": lambda: truth["commit_paths"],
        "read a line range": lambda: [l.strip() for l in truth["range"] if l.strip()],
        "find usages": lambda: truth["usages"],
        "open PRs waiting for review": lambda: list(truth["open_prs"]) + sorted({r for rs in truth["open_prs"].values() for r in rs}),
        "failed pipelines today and why": lambda: [e for errors in truth["failed"].values() for e in errors] + list(truth["failed"]),
        "list branches": lambda: truth["branches"],
    }[question]()


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
    argv = sys.argv[1:]
    peers = None
    if "--peers" in argv:
        i = argv.index("--peers")
        if i + 1 >= len(argv):
            sys.exit("--peers needs the folder the npm servers are installed in")
        peers = os.path.abspath(argv[i + 1])
        del argv[i:i + 2]
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    agentenv, emulator = os.path.abspath(argv[0]), os.path.abspath(argv[1])
    root = argv[2] if len(argv) > 2 else tempfile.mkdtemp(prefix="agentenv-questions-")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    try:
        asyncio.run(run(agentenv, emulator, root, peers))
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def run(agentenv, emulator, root, peers_dir=None):
    bare = os.path.join(root, "agentenv.git")
    git("clone", "-q", "--bare", "--single-branch", "--branch", "main", REPO_ROOT, bare)
    git("update-ref", "refs/heads/main", git("rev-parse", "--verify", BENCH_REV + "^{commit}", cwd=bare).strip(), cwd=bare)
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
        "head": head,
        "open_pr_ids": [p["id"] for p in seed["pull_requests"] if p["state"] == "OPEN"],
        "read_path": READ_PATH,
        "failed_steps": [(p["uuid"], p["steps"][0]["uuid"]) for p in seed["pipelines"]
                         if p["result"] == "FAILED" and p["uuid"] in seeded["failed"]],
        **seeded,
    }
    grep = subprocess.run(["git", "grep", "-F", "-n", "-I", USAGE_QUERY, "HEAD"], cwd=bare,
                          capture_output=True, text=True).stdout.splitlines()
    # `HEAD:path:line:text` → each hit's path and its line as `line:text`.
    for hit in grep:
        _, path, line, text = hit.split(":", 3)
        truth["usages"] += [path, f"{line}:{text.lstrip()}"]

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
        peer_answers = []
        if peers_dir:
            from questions_peers import ask_peers
            peer_answers = await ask_peers(peers_dir, base, EMAIL, TOKEN, root, truth, facts,
                                           Asker, size)
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
    if peer_answers:
        report_peers(answers, peer_answers)


def report_peers(answers, peer_answers):
    """The peers' answers to the same questions in the same run, and agentenv's text bytes as a
    ratio of each peer's (below 1: agentenv's answer is smaller)."""
    print()
    print("Peers, same run, same emulator and data:")
    for name, list_bytes, tools, rows in peer_answers:
        if list_bytes is None:
            print(f"  {name}: {rows}")
        else:
            print(f"  {name}: tools/list {list_bytes / 1000:.1f} KB for {tools} tools")
    names = [name for name, lb, _, _ in peer_answers if lb is not None]
    if not names:
        return
    print()
    print("| question | agentenv calls / text KB | " + " | ".join(f"{n} calls / text KB / complete" for n in names)
          + " | agentenv / best complete peer |")
    print("| --- | --- | " + " | ".join("---" for _ in names) + " | ---: |")
    ours = {name: a for name, a, _, _ in answers}
    for name, a, _, _ in answers:
        cells, best = [], None
        for _, lb, _, rows in peer_answers:
            if lb is None:
                continue
            _, pa, n, lost = next(r for r in rows if r[0] == name)
            if isinstance(pa, str):
                cells.append(pa)
                continue
            complete = "yes" if not lost else f"no ({len(lost)} of {n} missing)"
            cells.append(f"{pa.calls} / {pa.text_bytes / 1000:.1f} / {complete}")
            if not lost and (best is None or pa.text_bytes < best):
                best = pa.text_bytes
        ratio = f"{ours[name].text_bytes / best:.2f}×" if best else "—"
        print(f"| {name} | {a.calls} / {a.text_bytes / 1000:.1f} | " + " | ".join(cells) + f" | {ratio} |")
    if os.environ.get("BENCH_SHOW"):
        for pname, lb, _, rows in peer_answers:
            for q, pa, _, lost in rows:
                if not isinstance(pa, str):
                    print(f"===== {pname}: {q}\n" + "\n-----\n".join(pa.texts), file=sys.stderr)
                    if lost:
                        print(f"    missing: {lost[:5]}", file=sys.stderr)


if __name__ == "__main__":
    main()
