#!/usr/bin/env node
// Interop smoke test: the official MCP TypeScript SDK (`@modelcontextprotocol/sdk`, the client
// most desktop agents use) drives `agentenv serve`.
//
// Usage: node ts_smoke.mjs AGENTENV_BIN ENV_SPEC WORKDIR CASES_JSON
//
// The same checks as ../mcp_smoke.py: spawn the server over stdio (with this process's
// environment, which holds the spec's `from_env` secrets), list the tools, and for every tool
// make the successful and the failing call of CASES_JSON. The SDK validates what it gets
// (results against a tool's output schema, with Ajv) and throws on what it rejects; a thrown
// call, an error result with structured content, or a success without text and structured
// content is a failure. Installed by .ci/run (`npm ci` in this folder). Exits 0 on success.

import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [binary, spec, workdir, casesPath] = process.argv.slice(2);
if (!casesPath) {
  console.error("usage: node ts_smoke.mjs AGENTENV_BIN ENV_SPEC WORKDIR CASES_JSON");
  process.exit(2);
}
const cases = JSON.parse(readFileSync(casesPath, "utf8"));
const failures = [];
const warnings = [];
// Ajv reports schema problems (unknown formats, …) through console.warn: count them.
const warn = console.warn;
console.warn = (...args) => {
  warnings.push(args.join(" "));
  warn(...args);
};

const transport = new StdioClientTransport({
  command: binary,
  args: ["serve", spec, "--workdir", workdir],
  env: process.env,
  stderr: "ignore",
});
const client = new Client({ name: "agentenv-ts-smoke", version: "0" });
await client.connect(transport);
const server = client.getServerVersion();
if (server?.name !== "agentenv") failures.push(`server name is ${server?.name}`);
console.log(`connected to ${server?.name} ${server?.version}`);

const { tools } = await client.listTools();
if (!tools.length) failures.push("the server lists no tools");
for (const tool of tools) {
  if (tool.inputSchema?.type !== "object") failures.push(`${tool.name}: input schema`);
  if (!tool.annotations) failures.push(`${tool.name}: no annotations`);
  if (!(tool.name in cases)) failures.push(`${tool.name}: no case in ${casesPath}`);
}

const textOf = (r) => (r.content?.[0]?.type === "text" ? r.content[0].text : "");
for (const tool of tools) {
  const c = cases[tool.name];
  if (!c) continue;
  try {
    const ok = await client.callTool({ name: tool.name, arguments: c.ok });
    if (ok.isError || !textOf(ok) || ok.structuredContent === undefined) {
      failures.push(`${tool.name} ok: ${textOf(ok).slice(0, 300)}`);
    } else {
      console.log(`ok ${tool.name}`);
    }
  } catch (e) {
    failures.push(`${tool.name} ok: the SDK threw ${e}`);
  }
  try {
    const bad = await client.callTool({ name: tool.name, arguments: c.error });
    const text = textOf(bad);
    if (!bad.isError || bad.structuredContent !== undefined || !text.startsWith("error (")) {
      failures.push(`${tool.name} error: not an error result: ${text.slice(0, 300)}`);
    } else {
      console.log(`error ${tool.name}: ${text.split("\n")[0].slice(0, 120)}`);
    }
  } catch (e) {
    failures.push(`${tool.name} error: the SDK threw ${e}`);
  }
}
await client.close();
for (const w of warnings) failures.push(`the SDK warned: ${w}`);
for (const f of failures) console.error(`FAIL ${f}`);
process.exit(failures.length ? 1 : 0);
