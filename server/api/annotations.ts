/**
 * @module server/api/annotations
 * The annotation names of Flux's contract that fluxhook reads or writes.
 */

/**
 * Set on a target to ask its controller to reconcile (Flux compares it with the last handled
 * value), and read on a Receiver, whose status answers it in `lastHandledReconcileAt`.
 */
export const REQUESTED_AT_ANNOTATION = "reconcile.fluxcd.io/requestedAt";

/**
 * fluxhook's opt-in on a Receiver: `repository` annotates, of the objects its resources resolve
 * to, only the sources that follow the repository a delivery's event is about (README, "One
 * webhook for an organisation").
 */
export const ROUTE_BY_ANNOTATION = "fluxhook.io/route-by";

/** The one value of ROUTE_BY_ANNOTATION. */
export const ROUTE_BY_REPOSITORY = "repository";
