/**
 * action/inert.ts: what a receiver, a proxy or the network sends is shown as inert text. Each row
 * is an attack a hostile receiver can make (see hostile-receiver.test.ts) or a character class the
 * rules name; generated text, read back by runner-model.ts as the runner reads it, makes no
 * command of any CI the sender runs in.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { guardLine, inert, inertLines, summaryCell } from "../../action/inert";
import { readAsRunner } from "./runner-model";

/** Invisible format characters and the default-ignorable ones .NET's culture-aware search skips. */
const INVISIBLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/u;
/** What starts a section in Buildkite's log: at the start of a line. */
const BUILDKITE_MARKER = /^\s*(---|\+\+\+|~~~|\^\^\^ \+\+\+)/;

describe("inert: one line, every unsafe character escaped", () => {
  test.each([
    ["a line break starting a workflow command", "ok\n::stop-commands::x", "ok\\n::stop-commands::x"],
    ["CR, as a terminal returns to the line start", "ok\r::error::forged", "ok\\r::error::forged"],
    ["an ANSI colour and an erase-line", "\x1b[31mred\x1b[2K", "\\x1b[31mred\\x1b[2K"],
    ["NEL, a C1 control", "a\u0085b", "a\\x85b"],
    ["the Unicode line and paragraph separators", "a\u2028b\u2029c", "a\\u{2028}b\\u{2029}c"],
    ["bidi overrides that reorder what is read", "a\u202egnp.exe", "a\\u{202e}gnp.exe"],
    ["NUL, DEL and a tab", "\0\x7f\t", "\\x00\\x7f\\t"],
    ["plain text, unchanged", "Applied revision: main@sha1:abc (ü, 日本)", "Applied revision: main@sha1:abc (ü, 日本)"],
    [
      "the runner's legacy command, anywhere in a line",
      "ok ##[set-output name=revision;]main@sha1:0$(id)",
      "ok #\\x23[set-output name=revision;]main@sha1:0$(id)",
    ],
    ["a legacy command after a run of #", "###[error]x", "##\\x23[error]x"],
    [
      "Azure Pipelines' logging command",
      "x ##vso[task.setvariable variable=a]b",
      "x #\\x23vso[task.setvariable variable=a]b",
    ],
    ["TeamCity's service message", "x ##teamcity[buildStatus text='x']", "x #\\x23teamcity[buildStatus text='x']"],
    ["# and [ apart, unchanged", "issue #12 [closed] ## notes", "issue #12 [closed] ## notes"],
    ["a zero-width space splitting a command", "#\u200b#[error]x", "#\\u{200b}#[error]x"],
    ["a soft hyphen and a word joiner", "a\u00adb\u2060c", "a\\xadb\\u{2060}c"],
    ["zero-width joiner and non-joiner", "a\u200db\u200cc", "a\\u{200d}b\\u{200c}c"],
    ["a variation selector", "\u2764\ufe0f", "\u2764\\u{fe0f}"],
    ["interlinear annotation characters", "\ufff9a\ufffab\ufffb", "\\u{fff9}a\\u{fffa}b\\u{fffb}"],
    ["the Mongolian vowel separator", "a\u180eb", "a\\u{180e}b"],
    ["tag characters, one escape per code point", "a\u{e0041}\u{e007f}", "a\\u{e0041}\\u{e007f}"],
  ])("%s", (_name, text, want) => {
    expect(inert(text)).toBe(want);
  });

  test("nothing is dropped: a secret split by a control character stays split", () => {
    expect(inert("tok\x1ben")).not.toContain("token");
  });
});

describe("inertLines: a received block as log lines", () => {
  test("each line is inert and none starts a workflow command", () => {
    const body = 'ok\n::add-mask::x\r\n  ::stop-commands::y\u2028##[error]z\u0085\x1b[1mbold\n{"a":1}';
    expect(inertLines(body)).toEqual([
      "ok",
      "> ::add-mask::x",
      ">   ::stop-commands::y",
      "#\\x23[error]z",
      "\\x1b[1mbold",
      '{"a":1}',
    ]);
  });

  test("guardLine leaves other lines alone", () => {
    expect(guardLine("Poll 1: x ::error::y")).toBe("Poll 1: x ::error::y");
    expect(guardLine(":: at the start")).toBe("> :: at the start");
    expect(guardLine("a --- b")).toBe("a --- b");
  });

  test.each([["--- Deploy"], ["+++ Deploy"], ["~~~ Deploy"], ["^^^ +++"], ["  --- indented"], ["---"]])(
    "a Buildkite section marker is quoted: %p",
    (line) => {
      expect(guardLine(line)).toBe(`> ${line}`);
    },
  );

  test("no generated text makes a line any CI reads as a command or a section", () => {
    const pieces = fc.constantFrom(
      "::",
      ":",
      "##[",
      "##",
      "#",
      "[",
      "]",
      "vso[",
      "teamcity[",
      "\n",
      "\r",
      "\r\n",
      " ",
      "\t",
      "\u2003",
      "\u200b",
      "\u00ad",
      "\ufeff",
      "\u2028",
      "\x85",
      "\x1b",
      "%0A",
      "%5D",
      "%3B",
      "set-output name=x;",
      "error",
      "stop-commands",
      "add-mask",
      "warning",
      "=",
      ",",
      ";",
      "--- ",
      "+++ ",
      "~~~ ",
      "^^^ +++",
      "a",
    );
    fc.assert(
      fc.property(
        fc.array(pieces, { maxLength: 24 }).map((parts) => parts.join("")),
        (text) => {
          const lines = inertLines(text);
          const view = readAsRunner({ stdout: lines.map((line) => `${line}\n`).join("") });
          expect(view.commands).toEqual([]);
          for (const line of [...lines, inert(text), summaryCell(text)]) {
            expect(line).not.toMatch(INVISIBLE);
            expect(line).not.toContain("##vso[");
            expect(line).not.toContain("##teamcity[");
          }
          for (const line of lines) expect(line).not.toMatch(BUILDKITE_MARKER);
          expect(readAsRunner({ stdout: `${inert(text)}\n` }).commands.filter((c) => c.form === "##[")).toEqual([]);
        },
      ),
      { numRuns: 3_000 },
    );
  });
});

describe("summaryCell: no HTML or Markdown, one line", () => {
  test.each([
    ["HTML", `<img src=x onerror="a">&'`, "&#60;img src=x onerror=&#34;a&#34;&#62;&#38;&#39;"],
    [
      "a blank line, then a heading, a link and an image",
      "msg\n\n# Injected\n[link](https://evil.example) ![i](https://evil.example/x.png)",
      "msg&#92;n&#92;n&#35; Injected&#92;n&#91;link&#93;&#40;https://evil.example&#41; &#33;&#91;i&#93;&#40;https://evil.example/x.png&#41;",
    ],
    ["a table pipe and code", "a | `b`", "a &#124; &#96;b&#96;"],
  ])("%s", (_name, text, want) => {
    const cell = summaryCell(text);
    expect(cell).toBe(want);
    expect(cell).not.toMatch(/[\n\r<>[\]()]/);
  });
});
