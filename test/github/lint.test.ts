/**
 * The GitHub files' lint (test/github/lint.ts, run by `npm test` before the type check): this
 * repository's workflows and action.yml are clean, and each check finds what it is there for.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  ACTION_METADATA,
  lintActionMetadata,
  lintRepository,
  lintWorkflow,
  outputsInRecipes,
  outputsInRun,
  WORKFLOWS,
} from "./lint";

const CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1";

/** A minimal clean workflow, with `top` as its top-level lines and `steps` as its one job's steps. */
const workflow = (top: string, steps: string, job = "") => `on: push
${top}
jobs:
  build:
    runs-on: ubuntu-24.04
${job}    steps:
${steps}
`;
const CLEAN_STEPS = `      - uses: ${CHECKOUT}\n      - run: echo ok`;

describe("this repository", () => {
  test("the workflows and action.yml lint clean", async () => {
    expect(await lintRepository()).toEqual([]);
  });

  test("ci.yml and release.yml exist and release.yml runs ci.yml first", () => {
    const release = readFileSync(join(WORKFLOWS, "release.yml"), "utf8");
    expect(release).toContain("uses: ./.github/workflows/ci.yml");
    expect(readFileSync(join(WORKFLOWS, "ci.yml"), "utf8")).toContain("workflow_call:");
  });
});

describe("each check finds its problem", () => {
  test("a clean workflow has no finding", async () => {
    expect(await lintWorkflow(join(WORKFLOWS, "x.yml"), workflow("permissions: {}", CLEAN_STEPS))).toEqual([]);
  });

  test.each<[string, string, string]>([
    [
      "actionlint: an unknown context property",
      workflow("permissions: {}", `${CLEAN_STEPS}\n      - run: echo \${{ github.nope }}`),
      "actionlint/expression",
    ],
    [
      "actionlint: untrusted input in a script",
      workflow("permissions: {}", `      - run: echo "\${{ github.event.head_commit.message }}"`),
      "actionlint/expression",
    ],
    [
      "actionlint: an unknown job key",
      workflow("permissions: {}", CLEAN_STEPS, "    run-on: x\n"),
      "actionlint/syntax-check",
    ],
    ["an action by tag", workflow("permissions: {}", "      - uses: actions/checkout@v5"), "pin"],
    ["an action by branch", workflow("permissions: {}", "      - uses: docker/login-action@main"), "pin"],
    ["an action by a short SHA", workflow("permissions: {}", "      - uses: actions/checkout@3d3c42e"), "pin"],
    ["a Docker action by tag", workflow("permissions: {}", "      - uses: docker://alpine:3"), "pin"],
    ["a job container by tag", workflow("permissions: {}", CLEAN_STEPS, "    container: node:24\n"), "pin"],
    ["no top-level permissions", workflow("", CLEAN_STEPS), "permissions"],
    ["a top-level write", workflow("permissions:\n  contents: write", CLEAN_STEPS), "permissions"],
    ["top-level read-all", workflow("permissions: read-all", CLEAN_STEPS), "permissions"],
    ["top-level write-all", workflow("permissions: write-all", CLEAN_STEPS), "permissions"],
    ["a job's write-all", workflow("permissions: {}", CLEAN_STEPS, "    permissions: write-all\n"), "permissions"],
  ])("%s", async (_name, text, kind) => {
    const findings = await lintWorkflow(join(WORKFLOWS, "x.yml"), text);
    expect(findings.map((f) => f.kind)).toContain(kind);
  });

  test("a job may write what it names; a digest-pinned container passes", async () => {
    const text = workflow(
      "permissions:\n  contents: read",
      CLEAN_STEPS,
      `    permissions:\n      packages: write\n    container:\n      image: node:24@sha256:${"a".repeat(64)}\n`,
    );
    expect(await lintWorkflow(join(WORKFLOWS, "x.yml"), text)).toEqual([]);
  });

  const action = readFileSync(ACTION_METADATA, "utf8");
  test.each<[string, string, string]>([
    ["a misspelt top-level key", `${action}\nbranded: {}\n`, "branded"],
    [
      "an input without a description",
      action.replace(/( {2}token:\n) {4}description: >-\n(( {6}.*\n)+)/, "$1"),
      "description",
    ],
    ["a retired runtime", action.replace("using: node24", "using: node16"), "/runs"],
    ["an unknown branding colour", action.replace("color: blue", "color: teal"), "/branding/color"],
  ])("action.yml: %s", (_name, text, expected) => {
    expect(text).not.toBe(action);
    const messages = lintActionMetadata(ACTION_METADATA, text).map((f) => f.message);
    expect(messages.join("\n")).toContain(expected);
  });
});

describe("outputs are never spliced into run:", () => {
  const recipe = (yaml: string) => `Some text.\n\n\`\`\`yaml\n${yaml}\n\`\`\`\n`;

  test.each([
    {
      name: "a revision output echoed in a run: script",
      markdown: recipe(
        `- id: flux\n  uses: OWNER/fluxhook@v1\n- run: echo "deployed \${{ steps.flux.outputs.revision }}"`,
      ),
      lines: [6],
    },
    {
      name: "a results output piped to jq",
      markdown: recipe(`- run: echo '\${{ steps.flux.outputs.results }}' | jq .`),
      lines: [4],
    },
    {
      name: "a block script, a job's outputs",
      markdown: recipe(`steps:\n  - run: |\n      echo ok\n      test \${{ needs.build.outputs.digest }} = x`),
      lines: [5],
    },
    {
      name: "a snippet that is not YAML on its own",
      markdown: recipe(`  with:\n    a: b\n - run: echo "\${{ steps.x.outputs.y }}"`),
      lines: [6],
    },
    {
      name: "wrapped in a function whose string holds a brace",
      markdown: recipe(`- run: echo "\${{ format('{0}', steps.flux.outputs.revision) }}"`),
      lines: [4],
    },
    {
      name: "an index instead of a dot",
      markdown: recipe(`- run: echo "\${{ steps['flux'].outputs.revision }}"`),
      lines: [4],
    },
    {
      name: "actions/github-script's JavaScript",
      markdown: recipe(
        `- uses: actions/github-script@v7\n  with:\n    script: core.info("\${{ steps.flux.outputs.response }}")`,
      ),
      lines: [6],
    },
    {
      name: "a fence indented in a list, with tildes, in capitals",
      markdown: `1. Add this step:\n\n   ~~~YAML\n   - run: echo "\${{ steps.flux.outputs.revision }}"\n   ~~~\n`,
      lines: [4],
    },
    {
      name: "through env: (the way to do it)",
      markdown: recipe(`- env:\n    REVISION: \${{ steps.flux.outputs.revision }}\n  run: echo "$REVISION"`),
      lines: [],
    },
    {
      name: "an output as another step's input",
      markdown: recipe(`- uses: ./\n  with:\n    url: \${{ steps.path.outputs.url }}`),
      lines: [],
    },
  ])("$name", ({ markdown, lines }) => {
    expect(outputsInRecipes("README.md", markdown).map((f) => f.line)).toEqual([...lines]);
  });

  test("in a workflow too, with the line of the script", () => {
    const text = workflow(
      "permissions: {}",
      `      - id: a\n        run: echo x\n      - run: echo "\${{ steps.a.outputs.x }}"`,
    );
    expect(outputsInRun(".github/workflows/x.yml", text)).toEqual([
      {
        file: ".github/workflows/x.yml",
        line: 9,
        kind: "outputs-in-run",
        message: `run: splices \${{ steps.a.outputs.x }} into the script; pass it through env: and use the variable`,
      },
    ]);
  });
});
