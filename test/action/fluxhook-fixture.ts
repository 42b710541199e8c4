/**
 * fluxhook's real server on the Kubernetes API test server, beside a local OIDC issuer, for the
 * sender's tests that deliver to it (fluxhook.test.ts, cli.test.ts, wait-e2e.test.ts): a Receiver
 * with its Secret and its targets in one call, its webhook path once it is Ready.
 */
import { startStack, type Stack } from "../support/stack";
import { startTokenIssuer, type TokenIssuer } from "../support/tokens";

export const GIT = "source.toolkit.fluxcd.io/v1";
export const IMAGE = "image.toolkit.fluxcd.io/v1";

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

export interface ReceiverSpec {
  readonly type: string;
  /** The Secret's token, for the types that have one: kept in the Secret `<name>-token`. */
  readonly token?: string;
  readonly events?: readonly string[];
  /** The Receiver's resources, each made in the Receiver's namespace unless it exists already. */
  readonly targets: ReadonlyArray<{ readonly apiVersion: string; readonly kind: string; readonly name: string }>;
  /** generic-oidc: the Receiver's oidcProviders. */
  readonly oidcProviders?: readonly unknown[];
}

/** Creates Receiver `namespace/name` with its Secret and targets; resolves to its webhook path once Ready. */
export function readyReceiver(stack: Stack, namespace: string, name: string, spec: ReceiverSpec): Promise<string> {
  for (const { apiVersion, kind, name: target } of spec.targets)
    if (!stack.api.store.get(apiVersion, kind, namespace, target)) stack.target(apiVersion, kind, namespace, target);
  const secretName = `${name}-token`;
  if (spec.token !== undefined) stack.secret(namespace, secretName, { token: spec.token });
  stack.receiver(namespace, name, {
    type: spec.type,
    ...(spec.events ? { events: spec.events } : {}),
    ...(spec.token !== undefined ? { secretRef: { name: secretName } } : {}),
    ...(spec.oidcProviders ? { oidcProviders: spec.oidcProviders } : {}),
    resources: spec.targets.map(({ kind, name: target }) => ({ kind, name: target })),
  });
  return stack.readyPath(namespace, name);
}
