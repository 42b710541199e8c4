/**
 * @module action/step-report
 * What the user sees of the step once its deliveries (and waits) are done, written through the
 * `Io`: the outputs, each response, the job summary, the chain Flux reached, and the verdict with
 * its exit code. The words come from report.ts and wait.ts; the Io takes every secret out of what
 * it writes.
 */
import { maskUrl } from "./destination";
import type { Step } from "./plan";
import {
  bodyExcerpt,
  failureMessage,
  receiverReason,
  receiverTargets,
  resultName,
  revisionOutput,
  stepOutputs,
  summaryTable,
  type DeliveryResult,
} from "./report";
import { chainRows } from "./wait";
import type { Waited } from "./wait-all";
import { Exit, Output, type ExitCode, type WaitFor } from "./vocabulary";

/** How much of each response the log shows. */
const LOGGED_RESPONSE_CHARS = 4096;

/** Outputs, each response in the log, the job summary, then success, a warning or a failure. */
export async function reportDeliveries(step: Step, results: readonly DeliveryResult[]): Promise<ExitCode> {
  const { io, config } = step;
  for (const [name, value] of Object.entries(stepOutputs(results))) io.setOutput(name, value);
  const several = results.length > 1;

  for (const { ctx, outcome } of results) {
    const last = outcome?.attempts[outcome.attempts.length - 1]?.result;
    if (last?.kind !== "response") continue;
    io.startGroup(`Response${several ? ` from ${resultName(ctx)}` : ""}: HTTP ${last.status}`);
    for (const [name, value] of Object.entries(last.headers)) io.info(`${name}: ${value}`);
    io.info("");
    io.info(last.body === "" ? "(empty body)" : bodyExcerpt(last, LOGGED_RESPONSE_CHARS));
    io.endGroup();
  }

  await io.writeSummary(summaryTable(results, config.dryRun));

  if (config.dryRun) {
    io.info("Dry run: nothing was sent.");
    return Exit.delivered;
  }
  const failures: string[] = [];
  for (const { ctx, outcome } of results) {
    if (!outcome) continue;
    const last = outcome.attempts[outcome.attempts.length - 1]?.result;
    const body = last?.kind === "response" ? last.body : "";
    const targets = receiverTargets(body);
    if (targets.length > 0) io.info(`Targets${several ? ` of ${resultName(ctx)}` : ""}: ${targets.join(", ")}`);
    if (outcome.ok) {
      const reason = receiverReason(body);
      io.info(
        `Delivered ${config.event} to ${several ? `${resultName(ctx)} at ` : ""}${maskUrl(ctx.url)}: HTTP ${outcome.status} after ${outcome.attempts.length} attempt(s)${reason ? ` (${reason})` : ""}.`,
      );
    } else failures.push(failureMessage(outcome, ctx));
  }
  if (failures.length === 0) return Exit.delivered;
  return conclude(
    step,
    several
      ? [`${failures.length} of ${results.length} deliveries failed:`, ...failures.map((f) => `  - ${f}`)].join("\n")
      : (failures[0] as string),
  );
}

/**
 * Each wait's chain in the log (outside Actions, the CLI, there is no job summary) and in the job
 * summary; the first revision Flux reached as `revision`, when it has Flux's revision shape; then
 * success, or Flux's own message (or the object still behind at the deadline) as a failure or a
 * warning.
 */
export async function reportWaits(
  step: Step,
  mode: Exclude<WaitFor, "none">,
  waited: readonly Waited[],
): Promise<ExitCode> {
  const { io } = step;
  const several = waited.length > 1;
  const failures: string[] = [];
  let revision: string | undefined;
  for (const { planned, wait } of waited) {
    if (!wait) continue;
    const forWhom = several ? ` for ${resultName(planned.ctx)}` : "";
    if (wait.answer) {
      io.startGroup(`Flux${forWhom}: ${mode}`);
      for (const [object, objectRevision, ready] of chainRows(wait.answer).slice(1))
        io.info(`${object}: ${objectRevision || "no revision"}; Ready ${ready}`);
      io.endGroup();
      await io.writeSummary(
        chainRows(wait.answer),
        `Flux${forWhom}, wait-for ${mode}: ${wait.ok ? (wait.revision ?? "done") : "failed"}`,
      );
    }
    if (wait.ok) {
      revision ??= wait.revision;
      io.info(
        `Flux ${mode === "ready" ? "is Ready" : "reconciled"}${forWhom}${wait.revision ? ` at ${wait.revision}` : ""} (${wait.polls} poll(s)).`,
      );
    } else failures.push(`${several ? `${resultName(planned.ctx)}: ` : ""}${wait.message}`);
  }
  if (revision !== undefined) {
    const checked = revisionOutput(revision);
    if (checked.ok) io.setOutput(Output.revision, revision);
    else io.warning(checked.warning);
  }
  if (failures.length === 0) return Exit.delivered;
  return conclude(
    step,
    failures.length === 1
      ? (failures[0] as string)
      : ["Flux did not get there:", ...failures.map((f) => `  - ${f}`)].join("\n"),
  );
}

/** A failure ends the step failed, or with fail-on-error false as a warning on a step that succeeds. */
function conclude({ io, config }: Step, message: string): ExitCode {
  if (config.failOnError) {
    io.fail(message);
    return Exit.failed;
  }
  io.warning(`${message} (fail-on-error is false: the step succeeds.)`);
  return Exit.delivered;
}
