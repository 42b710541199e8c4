/**
 * @module server/outcome/outcome-text
 * The one choke point between a delivery's outcome and everything that shows it (the answer,
 * the log line, the Events, /deliveries, the metrics): every text of the outcome is cut to
 * MAX_OUTCOME_TEXT_CHARS and made printable. Reasons quote sender text at many places (event
 * names, content types, CDEvent types, token issuers, parse errors, CEL errors over `req`);
 * cutting the whole text here bounds them all at once, whatever a validator quotes, and keeps
 * control characters out of logs. The one reason left whole is a 503's: it is the Receiver's
 * own condition message, written from its spec, with nothing of the request in it.
 */
import { MAX_OUTCOME_TEXT_CHARS } from "../limits";
import type { Outcome } from "./outcomes";

/** Control characters and the Unicode line and paragraph separators. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the same, without the global flag's state
const HAS_UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** `text` cut to `max` characters (the last one an ellipsis when cut) and made printable. */
export function boundText(text: string, max = MAX_OUTCOME_TEXT_CHARS): string {
  const cut = text.length > max ? `${text.slice(0, max - 1)}…` : text;
  return cut.replace(UNPRINTABLE, "?");
}

/** A target's reason (a delivery's targets carry one). */
const reasonOf = (target: object): string | undefined =>
  "reason" in target && typeof target.reason === "string" ? target.reason : undefined;

const needsBound = (text: string | undefined) =>
  text !== undefined && (text.length > MAX_OUTCOME_TEXT_CHARS || HAS_UNPRINTABLE.test(text));

/**
 * The outcome with every text bounded; the same object when nothing needed it (the common case).
 * A status query's targets carry no reason: their fields are cut where the answer is made
 * (delivery/status-query.ts), to the wire contract's own bounds.
 */
export function boundOutcome<Target extends object>(outcome: Outcome<Target>): Outcome<Target> {
  const targets = outcome.targets;
  const targetsNeed = targets?.some((t) => needsBound(reasonOf(t))) ?? false;
  const reasonNeeds = outcome.status !== 503 && needsBound(outcome.reason);
  if (!reasonNeeds && !needsBound(outcome.event) && !targetsNeed) return outcome;
  return {
    ...outcome,
    reason: reasonNeeds ? boundText(outcome.reason) : outcome.reason,
    ...(outcome.event !== undefined ? { event: boundText(outcome.event) } : {}),
    ...(targets && targetsNeed
      ? { targets: targets.map((t) => (reasonOf(t) === undefined ? t : { ...t, reason: boundText(reasonOf(t)!) })) }
      : {}),
  };
}
