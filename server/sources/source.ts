/**
 * @module server/sources/source
 * What the server needs from wherever Receivers come from (a cluster, or files): each mode is
 * decided once, in its own module, and the server wires only this.
 */
import type { ReceiverController } from "../receivers/controller";
import type { DeliveryOutcome } from "../delivery/delivery";

export interface ReceiverSource {
  readonly controller: ReceiverController;
  /** The state of each stream of Receivers and Secrets, for /readyz. */
  readonly watches: () => Record<string, string>;
  /** Referenced Secrets not read even once yet (readiness waits for them). */
  readonly unread: () => number;
  /** True while this replica writes status and Events. */
  readonly isLeader: () => boolean;
  /** Records a delivery on its Receiver as a Kubernetes Event (cluster mode). */
  readonly recordEvent: (outcome: DeliveryOutcome) => void;
  /** Whether Receiver status is written (cluster mode with --status-updates). */
  readonly statusUpdates: boolean;
  /** Where Receivers come from, for the start-up log line. */
  readonly describe: string | readonly string[];
  stop(): Promise<void>;
}
