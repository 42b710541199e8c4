/**
 * fluxhook's real server on the Kubernetes API test server, beside a local OIDC issuer, for the
 * sender's tests that deliver to it (fluxhook.test.ts, cli.test.ts, wait-e2e.test.ts): a Receiver
 * with its Secret and its targets in one call, its webhook path once it is Ready.
 */
import { startStack, type ReceiverFixture, type Stack } from "../support/stack";
import { startTokenIssuer, type TokenIssuer } from "../support/tokens";

export { GIT, IMAGE } from "../support/kinds";

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

/** A Receiver for the sender: the shared fixture's, with the objects it names. */
export type ReceiverSpec = ReceiverFixture & { readonly targets: NonNullable<ReceiverFixture["targets"]> };

/** Creates Receiver `namespace/name` with its Secret and targets; resolves to its webhook path once Ready. */
export function readyReceiver(stack: Stack, namespace: string, name: string, spec: ReceiverSpec): Promise<string> {
  return stack.readyReceiver(namespace, name, spec);
}
