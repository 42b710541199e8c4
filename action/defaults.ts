/**
 * @module action/defaults
 * What an empty input means (DEFAULTS) and how far an input may go (LIMITS), named once for the
 * parsers, the CLI's help and the test that keeps them in step with action.yml.
 */

/**
 * Defaults applied when an input is empty. The runner applies `action.yml`'s defaults first; a
 * test keeps the two in step, and these keep the bundle usable outside a runner too.
 */
export const DEFAULTS = {
  namespace: "flux-system",
  receiverType: "github",
  contentType: "json",
  timeoutSeconds: 10, // GitHub's own webhook delivery timeout
  retries: 3,
  failOnError: true,
  dryRun: false,
  insecureSkipTlsVerify: false,
  /** Flux's default audience for generic-oidc (`oidcProviders[].audience`). */
  oidcAudience: "notification-controller",
  waitFor: "none",
  /** Flux's default reconcile timeout for a Kustomization is 5 minutes too. */
  waitTimeoutSeconds: 300,
} as const;

/** Upper bounds, so the total time a step can spend is bounded (see deliver.ts). */
export const LIMITS = {
  maxTimeoutSeconds: 300,
  maxRetries: 10,
  /** Receivers in one step: each is a delivery, a few at a time, so the step's time stays bounded. */
  maxReceivers: 20,
  /** Extra headers: enough for any gateway, few enough to read in the log. */
  maxHeaders: 20,
  /** An hour: longer belongs in a job of its own, not a step that holds a runner. */
  maxWaitTimeoutSeconds: 3600,
} as const;
