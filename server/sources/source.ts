/**
 * @module server/sources/source
 * What the server needs from wherever Receivers come from (a cluster, or files): each mode is
 * decided once, in its own module, and the server wires only this.
 */
import type { DeliveryOutcome } from "../outcome/outcomes";
import type { ReceiverCounts } from "../observe/metrics";

export interface ReceiverSource {
  /** True once the first lists are in: every Receiver is then decided, or waits for its Secret's read. */
  readonly synced: () => boolean;
  /** Receivers by readiness, for the metrics. */
  readonly counts: () => ReceiverCounts;
  /** The state of each stream of Receivers and Secrets, for /readyz. */
  readonly watches: () => Record<string, string>;
  /** Referenced Secrets not read even once yet (readiness waits for them). */
  readonly unread: () => number;
  /** True while this replica writes status and reconcile Events. */
  readonly isLeader: () => boolean;
  /** Records a delivery on its Receiver as a Kubernetes Event (cluster mode, every replica). */
  readonly recordEvent: (outcome: DeliveryOutcome) => void;
  /** Whether Receiver status is written (cluster mode with --status-updates). */
  readonly statusUpdates: boolean;
  /** Where Receivers come from, for the start-up log line. */
  readonly describe: string | readonly string[];
  stop(): Promise<void>;
}
