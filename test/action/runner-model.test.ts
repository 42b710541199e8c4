/**
 * runner-model.ts reads output as the runner does: the parser's cases are the ones actions/runner's
 * own tests pin (ActionCommandL0: both forms, their escapes, empty properties, leading text), and
 * the processing cases are the runner's documented behaviour (stop-commands and its token,
 * add-mask, set-output, the disabled commands, masking of overlapping values).
 */
import { describe, expect, test } from "bun:test";
import { maskSecrets, readAsRunner, renderedSummary } from "./runner-model";

/** The one command a single line makes, or undefined. */
const parse = (line: string) => {
  const [command] = readAsRunner({ stdout: `${line}\n` }).commands;
  return command && { name: command.name, properties: command.properties, data: command.data, form: command.form };
};

describe("the parser (actions/runner ActionCommandL0's cases)", () => {
  test.each([
    ["##[warning k1=v1;]msg", { name: "warning", properties: { k1: "v1" }, data: "msg", form: "##[" }],
    ["##[warning]", { name: "warning", properties: {}, data: "", form: "##[" }],
    [
      "##[warning k1=%3B=%0D=%0A=%5D;]%3B-%0D-%0A-%5D",
      { name: "warning", properties: { k1: ";=\r=\n=]" }, data: ";-\r-\n-]", form: "##[" },
    ],
    [
      "##[warning k1=%253B=%250D=%250A=%255D;]%253B-%250D-%250A-%255D",
      { name: "warning", properties: { k1: "%3B=%0D=%0A=%5D" }, data: "%3B-%0D-%0A-%5D", form: "##[" },
    ],
    ["##[warning k1=;k2=;]", { name: "warning", properties: {}, data: "", form: "##[" }],
    [
      "legacy anywhere: >>>   ##[warning k1=v1;]msg",
      { name: "warning", properties: { k1: "v1" }, data: "msg", form: "##[" },
    ],
    ["::warning k1=v1,::msg", { name: "warning", properties: { k1: "v1" }, data: "msg", form: "::" }],
    ["::warning::", { name: "warning", properties: {}, data: "", form: "::" }],
    [
      "::warning k1=;=%2C=%0D=%0A=]=%3A,::;-%0D-%0A-]-:-,",
      { name: "warning", properties: { k1: ";=,=\r=\n=]=:" }, data: ";-\r-\n-]-:-,", form: "::" },
    ],
    ["::warning k1=,k2=,::", { name: "warning", properties: {}, data: "", form: "::" }],
    ["   ::warning k1=v1,::msg", { name: "warning", properties: { k1: "v1" }, data: "msg", form: "::" }],
    [
      "\u2003::warning::a Unicode space is whitespace to .NET",
      { name: "warning", properties: {}, data: "a Unicode space is whitespace to .NET", form: "::" },
    ],
    ["::WARNING::x", { name: "WARNING", properties: {}, data: "x", form: "::" }],
  ])("%s", (line, want) => {
    expect(parse(line)).toEqual(want as never);
  });

  test.each([
    ["v2 only at the start:    >>>   ::warning k1=v1,::msg"],
    ["an unregistered name: ::do-something::x"],
    ["an unregistered name: ##[do-something]x"],
    ["only the first ##[ counts: ##[nothing] ##[error]x"],
    ["no closing bracket: ##[error x"],
    ["::error with no end"],
    ["\ufeff::error::a BOM before the marker"],
  ])("%s: no command", (line) => {
    expect(parse(line)).toBeUndefined();
  });
});

describe("processing", () => {
  test("the legacy form anywhere in a line sets an output, fails on set-env, annotates", () => {
    const view = readAsRunner({
      stdout: [
        "x-rev: ##[set-output name=revision;]main@sha1:0$(id)",
        "note ##[set-env name=NODE_OPTIONS;]--require /tmp/x",
        "reason: ##[error file=.github/workflows/deploy.yml;line=1;title=Security]Forged",
      ].join("\n"),
    });
    expect(view.outputs).toEqual({ revision: "main@sha1:0$(id)" });
    expect(view.failures).toHaveLength(1);
    expect(view.annotations).toContainEqual({
      type: "error",
      message: "Forged",
      properties: { file: ".github/workflows/deploy.yml", line: "1", title: "Security" },
    });
    expect(view.printed).toEqual([]);
  });

  test("stop-commands prints every line until its token, add-mask ones in clear; then masks its token", () => {
    const view = readAsRunner({
      stdout: [
        "::add-mask::first-secret",
        "first-secret is masked",
        "::stop-commands::pause-token",
        "::add-mask::second-secret",
        "second-secret is not",
        "::error::not an annotation",
        "::pause-token::",
        "::add-mask::third-secret",
        "second-secret third-secret",
      ].join("\n"),
    });
    expect(view.printed).toEqual([
      "*** is masked",
      "::stop-commands::***",
      "::add-mask::second-secret",
      "second-secret is not",
      "::error::not an annotation",
      "::***::",
      "second-secret ***",
    ]);
    expect(view.annotations).toEqual([]);
    expect(view.masks).toEqual(["first-secret", "pause-token", "third-secret"]);
  });

  test("a stop token that is a command's name is refused and fails the step", () => {
    const view = readAsRunner({ stdout: "::stop-commands::add-mask\n::add-mask::still-a-command\nstill-a-command" });
    expect(view.failures).toHaveLength(1);
    expect(view.printed).toEqual(["***"]);
  });

  test("stderr is read too, before stdout", () => {
    const view = readAsRunner({ stdout: "::add-mask::tok-secret\ntok-secret", stderr: "##[stop-commands]pwned-stop" });
    expect(view.printed).toEqual(["##[stop-commands]***", "::add-mask::tok-secret", "tok-secret"]);
  });

  test("groups print as the log viewer's ##[group] lines; echo on prints other commands", () => {
    const view = readAsRunner({ stdout: "::group::Request\n::endgroup::\n::echo::on\n::set-output name=a::b" });
    expect(view.printed).toEqual(["##[group]Request", "##[endgroup]", "::set-output name=a::b"]);
  });

  test("overlapping values are masked as one", () => {
    expect(maskSecrets("abcdef-abc", ["bcd", "cde", "abc"])).toBe("***f-***");
  });

  test("the summary is masked line by line before it renders: an escaped value escapes the mask", () => {
    expect(renderedSummary("| a&#95;b |\n| a_b |", ["a_b"])).toBe("| a_b |\n| *** |");
  });
});
