/**
 * @module action/wait-all
 * wait-for for every delivery the receiver accepted, all at once and all to one deadline
 * (wait-timeout-seconds from the start of the wait, whatever the number of receivers): what each
 * answer gives to follow (wait.ts `toFollow`), then wait.ts's poll loop, each query signed as the
 * delivery was and bounded by what is left of the wait. Their queries pass one gate, so at most
 * MAX_PARALLEL_DELIVERIES are in flight. Every poll line is written as it comes (a wait of minutes
 * must not look hung), named by its receiver when several wait at once.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { MAX_STATUS_ANSWER_BYTES, gate, type Gate } from "../shared";
import { MAX_PARALLEL_DELIVERIES, type Planned, type Step } from "./plan";
import { progressPrefix, type DeliveryResult } from "./report";
import { buildStatusQuery } from "./request";
import { toFollow, waitForFlux, type WaitResult } from "./wait";
import type { IdTokenResult, Send, SendResult, WaitFor } from "./vocabulary";

export interface WaitIo {
  readonly send: Send;
  /** The credential for one query: the token, or for generic-oidc an ID token not near its expiry. */
  readonly credential: () => Promise<IdTokenResult>;
}

/** One delivery's wait; undefined when there was nothing to wait for (or the delivery failed). */
export interface Waited {
  readonly planned: Planned;
  readonly wait: WaitResult | undefined;
}

/** Each delivery's wait, in the order of `results`. */
export async function waitForAll(
  { io, config }: Step,
  mode: Exclude<WaitFor, "none">,
  planned: readonly Planned[],
  results: readonly DeliveryResult[],
  waitIo: WaitIo,
): Promise<Waited[]> {
  const several = results.length > 1;
  const deadline = Date.now() + config.waitTimeoutMs;
  const queries = gate(MAX_PARALLEL_DELIVERIES);
  io.startGroup(`Waiting for Flux: ${mode}`);
  const waited = await Promise.all(
    results.map(async ({ deliveryId, outcome }): Promise<Waited> => {
      const delivery = planned.find((candidate) => candidate.deliveryId === deliveryId) as Planned;
      const log = (line: string) => io.info(`${progressPrefix(delivery.ctx, several)}${line}`);
      const answer = outcome?.ok ? outcome.attempts[outcome.attempts.length - 1]?.result : undefined;
      if (answer?.kind !== "response") return { planned: delivery, wait: undefined };
      const followed = toFollow(answer, mode);
      if (followed.kind === "refused") {
        const refused: WaitResult = { ok: false, message: followed.message, answer: undefined, polls: 0 };
        return { planned: delivery, wait: refused };
      }
      if (followed.kind === "nothing") {
        log("Nothing was annotated: nothing to wait for.");
        return { planned: delivery, wait: undefined };
      }
      const wait = await waitForFlux(
        followed.targets,
        mode,
        config.waitTimeoutMs,
        {
          query: (batch) =>
            gated(queries, deadline, (ms) => query(delivery, batch, Math.min(config.timeoutMs, ms), waitIo)),
          sleep: (ms) => sleep(ms),
          now: Date.now,
          random: Math.random,
          log,
        },
        deadline,
      );
      return { planned: delivery, wait };
    }),
  );
  io.endGroup();
  return waited;
}

/**
 * `send` through the gate, given what is left until `until` once a slot is free; undefined, with
 * nothing sent, when no slot was free before then.
 */
async function gated(
  queries: Gate,
  until: number,
  send: (timeoutMs: number) => Promise<SendResult>,
): Promise<SendResult | undefined> {
  return queries(async () => {
    const left = until - Date.now();
    return left > 0 ? send(left) : undefined;
  });
}

/** One status query about `batch`, its credential and its answer both within `timeoutMs`. */
async function query(
  delivery: Planned,
  batch: Parameters<typeof buildStatusQuery>[1],
  timeoutMs: number,
  waitIo: WaitIo,
): Promise<SendResult> {
  const credential = await withTimeout(waitIo.credential(), timeoutMs, {
    ok: false,
    usage: false,
    error: `no ID token within ${timeoutMs} ms`,
  });
  if (!credential.ok)
    return {
      kind: "error",
      error: { code: "ID_TOKEN", message: credential.error, retryable: true, category: "other" },
    };
  const request = buildStatusQuery({ ...delivery.settings, credential: credential.value }, batch, delivery.deliveryId);
  return waitIo.send(request, timeoutMs, MAX_STATUS_ANSWER_BYTES);
}

/** `promise`'s value, or `fallback` once `ms` have passed (the promise is left to settle unheard). */
async function withTimeout<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
