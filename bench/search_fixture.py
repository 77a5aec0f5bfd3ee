#!/usr/bin/env python3
"""Generate the benchmark checkout: a git repository of FILES source-like files (default
12,000), cloned into WORKDIR/bigrepo, and a spec naming it. Re-used when already there.

Usage: search_fixture.py ROOT [FILES]    → prints the spec path
"""

import os
import random
import subprocess
import sys

WORDS = (
    "account amount balance buffer cache client config context cursor decode encode error "
    "event handler index ledger limit merchant message offset payment queue record refund "
    "request response result retry schema session status stream token transfer value"
).split()


def git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com",
               GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)


def line(rng):
    a, b, c = rng.choice(WORDS), rng.choice(WORDS), rng.choice(WORDS)
    kind = rng.random()
    if kind < 0.3:
        return f"    let {a}_{b} = {c}.{a}({rng.randint(0, 999)})?;"
    if kind < 0.5:
        return f"    // {a} the {b} before the {c} is read"
    if kind < 0.7:
        return f"fn {a}_{b}({c}: &{b.capitalize()}) -> Result<{a.capitalize()}, Error> {{"
    return f"    if {a}.{b}_{c} > {rng.randint(0, 99)} {{ return Err(Error::{c.capitalize()}); }}"


def main():
    root = os.path.abspath(sys.argv[1])
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 12000
    origin = os.path.join(root, "origin", "bigrepo")
    workdir = os.path.join(root, "work")
    spec = os.path.join(root, "bench.yaml")
    marker = os.path.join(root, f".ready-{files}")
    if not os.path.exists(marker):
        subprocess.run(["rm", "-rf", root], check=True)
        os.makedirs(origin)
        rng = random.Random(42)
        for i in range(files):
            d = os.path.join(origin, f"mod{i % 97:02d}", f"sub{i % 13}")
            os.makedirs(d, exist_ok=True)
            body = [line(rng) for _ in range(rng.randint(20, 120))]
            if i % 1000 == 7:
                body.insert(rng.randrange(len(body)), "    // FIXME(bench): rare marker")
            with open(os.path.join(d, f"file{i}.rs"), "w") as f:
                f.write("\n".join(body) + "\n")
        with open(os.path.join(origin, ".gitignore"), "w") as f:
            f.write("target/\n")
        with open(os.path.join(origin, "README.md"), "w") as f:
            f.write("# bigrepo\nGenerated for agentenv's search and serve benchmarks.\n")
        git(origin, "init", "-q", "-b", "main")
        git(origin, "add", "-A")
        git(origin, "commit", "-q", "-m", "generated")
        git(origin, "commit", "-q", "--allow-empty", "-m", "second commit")
        os.makedirs(workdir)
        git(root, "clone", "-q", "--no-local", origin, os.path.join(workdir, "bigrepo"))
        with open(spec, "w") as f:
            f.write("version: 1\nname: bench\nrepos:\n  - url: ./origin/bigrepo\n")
        open(marker, "w").close()
    print(spec)


if __name__ == "__main__":
    main()
