/**
 * @module action/deliver-all
 * Delivers every planned request of the step, MAX_PARALLEL_DELIVERIES at a time, each with
 * deliver.ts's retry policy. Every attempt's line is written as it comes, named by its receiver
 * when several deliver at once, so a slow receiver never hides the others' progress.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { mapPool } from "../shared";
import { deliver } from "./deliver";
import { MAX_PARALLEL_DELIVERIES, type Planned, type Step } from "./plan";
import { progressPrefix, type DeliveryResult } from "./report";
import { MAX_DELIVERY_ANSWER_BYTES } from "./wait";
import type { Send } from "./vocabulary";

/** Each delivery's result, in the order of `planned`. */
export async function deliverAll(
  { io, config }: Step,
  planned: readonly Planned[],
  send: Send,
): Promise<DeliveryResult[]> {
  const several = planned.length > 1;
  const options = {
    retries: config.retries,
    timeoutMs: config.timeoutMs,
    // Waiting needs the answer's whole list of targets and their requestedAt.
    ...(config.waitFor !== "none" ? { maxAnswerBytes: MAX_DELIVERY_ANSWER_BYTES } : {}),
  };
  io.startGroup(several ? "Deliveries" : "Delivery");
  const results = await mapPool(planned, MAX_PARALLEL_DELIVERIES, async ({ ctx, deliveryId, req }) => {
    const log = (line: string) => io.info(`${progressPrefix(ctx, several)}${line}`);
    const outcome = await deliver(req, options, {
      send,
      sleep: (ms) => sleep(ms),
      now: Date.now,
      random: Math.random,
      log,
    });
    return { ctx, deliveryId, outcome };
  });
  io.endGroup();
  return results;
}
