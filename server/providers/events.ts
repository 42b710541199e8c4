/**
 * @module server/providers/events
 * The `spec.events` allowlist, shared by every type that has an event header. Like Flux it
 * compares case-insensitively (strings.EqualFold) and an empty list accepts every event, `ping`
 * included.
 */

/** undefined when the event is accepted, else the reason it is not. */
export function checkEvent(allowed: readonly string[], event: string | null, header: string): string | undefined {
  if (allowed.length === 0) return undefined;
  if (!event)
    return `missing ${header} header: this receiver accepts only ${allowed.map((e) => JSON.stringify(e)).join(", ")}`;
  const lower = event.toLowerCase();
  if (allowed.some((e) => e.toLowerCase() === lower)) return undefined;
  return `event ${JSON.stringify(event)} is not accepted by this receiver`;
}
