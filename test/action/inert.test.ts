/**
 * action/inert.ts: what a receiver, a proxy or the network sends is shown as inert text. Each row
 * is an attack a hostile receiver can make (see hostile-receiver.test.ts) or a character class the
 * rules name.
 */
import { describe, expect, test } from "bun:test";
import { guardLine, inert, inertLines, summaryCell } from "../../action/inert";

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
      "> ##[error]z",
      "\\x1b[1mbold",
      '{"a":1}',
    ]);
  });

  test("guardLine leaves other lines alone", () => {
    expect(guardLine("Poll 1: x ::error::y")).toBe("Poll 1: x ::error::y");
    expect(guardLine(":: at the start")).toBe("> :: at the start");
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
