/**
 * @module server/api/annotations
 * The annotation names of Flux's contract that fluxhook reads or writes.
 */

/**
 * Set on a target to ask its controller to reconcile (Flux compares it with the last handled
 * value), and read on a Receiver, whose status answers it in `lastHandledReconcileAt`.
 */
export const REQUESTED_AT_ANNOTATION = "reconcile.fluxcd.io/requestedAt";
