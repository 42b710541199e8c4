/**
 * fluxhook's real server on the Kubernetes API test server, beside a local OIDC issuer, for the
 * sender's tests that deliver to it (fluxhook.test.ts, cli.test.ts, wait-e2e.test.ts); their
 * Receivers are the stack's (`stack.readyReceiver`).
 */
import { startStack, type Stack } from "../support/stack";
import { startTokenIssuer, type TokenIssuer } from "../support/tokens";

export interface FluxhookFixture {
  readonly stack: Stack;
  readonly issuer: TokenIssuer;
  /** The receiver's base URL: the action's `address`. */
  readonly address: string;
  stop(): Promise<void>;
}

/** Starts fluxhook and an OIDC issuer together. */
export async function startFluxhook(): Promise<FluxhookFixture> {
  const [stack, issuer] = await Promise.all([startStack(), startTokenIssuer()]);
  return {
    stack,
    issuer,
    address: stack.fluxhook.receiverUrl,
    async stop() {
      await Promise.all([stack.stop(), issuer.stop()]);
    },
  };
}
