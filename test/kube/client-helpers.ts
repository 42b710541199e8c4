/**
 * @module client-helpers
 * Small helpers for tests that talk to the server through client-node: per-request options for
 * a patch content type and a client-side timeout, and a watch that collects its events.
 */
import {
  type ConfigurationOptions,
  type KubeConfig,
  Observable,
  PatchStrategy,
  setHeaderOptions,
  Watch,
} from "@kubernetes/client-node";

/**
 * Options that send a PATCH with this content type. In client-node 2.x the generated `patch*`
 * methods always declare `application/json-patch+json`; a middleware overrides the header:
 * `api.patchNamespacedSecret({ name, namespace, body }, patchAs(PatchStrategy.MergePatch))`.
 */
export function patchAs(
  strategy: (typeof PatchStrategy)[keyof typeof PatchStrategy],
  options?: ConfigurationOptions,
): ConfigurationOptions {
  return setHeaderOptions("Content-Type", strategy, options);
}

/** Options for a JSON merge patch (RFC 7386). */
export const mergePatch: ConfigurationOptions = patchAs(PatchStrategy.MergePatch);

/** Options that abort the request after `ms` (client-node has no per-request timeout of its own). */
export function requestTimeout(ms: number, options?: ConfigurationOptions): ConfigurationOptions {
  return {
    ...options,
    middleware: [
      ...(options?.middleware ?? []),
      {
        pre: (context) => {
          context.setSignal(AbortSignal.timeout(ms));
          return new Observable(Promise.resolve(context));
        },
        post: (response) => new Observable(Promise.resolve(response)),
      },
    ],
    middlewareMergeStrategy: "append",
  };
}

/** One event seen by a client-node `Watch`. */
export interface SeenEvent {
  type: string;
  object: { metadata?: { name?: string; namespace?: string; resourceVersion?: string }; [key: string]: unknown };
}

export interface CollectedWatch {
  readonly events: SeenEvent[];
  /** Resolves with the error client-node's `done` callback got (null for a clean end). */
  readonly ended: Promise<unknown>;
  abort(): void;
}

/** Start a client-node `Watch` and collect what it delivers. */
export async function collectWatch(
  kubeConfig: KubeConfig,
  path: string,
  query: Record<string, string | number | boolean | undefined> = {},
): Promise<CollectedWatch> {
  const events: SeenEvent[] = [];
  let finish!: (err: unknown) => void;
  const ended = new Promise<unknown>((resolve) => (finish = resolve));
  const controller = await new Watch(kubeConfig).watch(
    path,
    query,
    (type, object) => events.push({ type, object }),
    (err) => finish(err ?? null),
  );
  return { events, ended, abort: () => controller.abort() };
}
