/**
 * A whole fluxhook for a test: the Kubernetes API test server, and fluxhook started against it
 * through the real client, listening on port 0. Helpers create Receivers, Secrets and targets
 * through the API server's store (which produces the same watch events as API writes), wait for
 * conditions, and post deliveries over real HTTP.
 */
import { startKubeApiServer, type KubeApiServer, type KubeApiServerOptions, type KubeObject } from "../kube";
import { parseConfig, type ServerConfig } from "../../server/config";
import { createLogger } from "../../server/runtime/log";
import { startFluxhook, type Fluxhook } from "../../server/server";
import { createKubeClient } from "../../server/kube/client";
import { ApiRequestCounts } from "../../server/observe/metrics";
import type { Tuning } from "../../server/limits";
import { RECEIVER } from "./kinds";
import { REQUESTED_AT_ANNOTATION } from "../../server/api/annotations";
import { webhookPath } from "../../shared";
import { recordEmitted, recordPath, recordToken } from "./emitted";
import { waitFor } from "./wait";

/** The one waitFor, for the files that take it with the stack. */
export { waitFor } from "./wait";

/** The server's defaults, as `fluxhook` with no flags parses them, on loopback port 0. */
export const TEST_CONFIG: ServerConfig = (() => {
  const parsed = parseConfig(
    ["--receiverAddr=127.0.0.1:0", "--health-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--log-level=debug"],
    {},
  );
  if (parsed.ok !== true) throw new Error("the default flags do not parse");
  return parsed.config;
})();

/** A Receiver with its Secret and the objects it names, made in one call (Stack.readyReceiver). */
export interface ReceiverFixture {
  readonly type: string;
  /**
   * The token of its Secret, `<name>-token` unless `secretName` names one (which Receivers may
   * share); no Secret for the types without one (generic-oidc).
   */
  readonly token?: string;
  readonly secretName?: string;
  /** The objects it names, each made in its namespace unless there already; its resources unless `spec` gives them. */
  readonly targets?: ReadonlyArray<{
    readonly apiVersion: string;
    readonly kind: string;
    readonly name: string;
    readonly labels?: Record<string, string>;
  }>;
  readonly events?: readonly string[];
  /** generic-oidc: the Receiver's oidcProviders. */
  readonly oidcProviders?: readonly unknown[];
  /** The rest of its spec (resourceFilter, suspend, resources with filters…), over what the fields above make. */
  readonly spec?: Record<string, unknown>;
}

/** A ReceiverFixture's objects, in the order they are made: its targets, its Secret, the Receiver. */
export function receiverObjects(namespace: string, name: string, fixture: ReceiverFixture): KubeObject[] {
  const { type, token, secretName = `${name}-token`, targets = [], events, oidcProviders, spec } = fixture;
  return [
    ...targets.map(({ apiVersion, kind, name: target, labels }) => ({
      apiVersion,
      kind,
      metadata: { name: target, namespace, ...(labels ? { labels } : {}) },
      spec: {},
    })),
    ...(token === undefined
      ? []
      : [
          {
            apiVersion: "v1",
            kind: "Secret",
            metadata: { name: secretName, namespace },
            data: { token: Buffer.from(token).toString("base64") },
          },
        ]),
    {
      apiVersion: RECEIVER,
      kind: "Receiver",
      metadata: { name, namespace },
      spec: {
        type,
        ...(token === undefined ? {} : { secretRef: { name: secretName } }),
        ...(events ? { events } : {}),
        ...(oidcProviders ? { oidcProviders } : {}),
        resources: targets.map(({ kind, name: target }) => ({ kind, name: target })),
        ...spec,
      },
    },
  ];
}

export interface Stack {
  readonly api: KubeApiServer;
  readonly fluxhook: Fluxhook;
  /** Every log line fluxhook wrote, parsed. */
  readonly logs: Record<string, unknown>[];
  secret(namespace: string, name: string, data: Record<string, string>): void;
  receiver(namespace: string, name: string, spec: Record<string, unknown>): void;
  target(
    apiVersion: string,
    kind: string,
    namespace: string,
    name: string,
    labels?: Record<string, string>,
    annotations?: Record<string, string>,
  ): void;
  receiverObject(namespace: string, name: string): Record<string, any> | undefined;
  /** Waits until the Receiver's status says Ready=True, and returns its webhookPath. */
  readyPath(namespace: string, name: string): Promise<string>;
  /** Makes Receiver `namespace/name`, and its Secret and targets where they are not there already. */
  makeReceiver(namespace: string, name: string, fixture: ReceiverFixture): void;
  /** makeReceiver, then its webhook path once it is Ready. */
  readyReceiver(namespace: string, name: string, fixture: ReceiverFixture): Promise<string>;
  requestedAt(apiVersion: string, kind: string, namespace: string, name: string): string | undefined;
  post(
    path: string,
    init?: { headers?: Record<string, string>; body?: string | Uint8Array; method?: string },
  ): Promise<{ status: number; body: any; headers: Headers }>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Timeouts and bounds shortened for tests (limits.ts Tuning, for the client and the server). */
export type StackSeams = Partial<Tuning>;

/**
 * `objects` are in the API server before fluxhook starts (what its first lists find); `apiOptions` sets
 * the API server up otherwise (`builtinKinds`: a cluster without some of Flux's CRDs).
 */
export async function startStack(
  config: Partial<ServerConfig> = {},
  seams: StackSeams = {},
  objects: readonly KubeObject[] = [],
  apiOptions: Omit<KubeApiServerOptions, "objects"> = {},
): Promise<Stack> {
  const api = await startKubeApiServer({ ...apiOptions, objects });
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({
    level: "debug",
    encoding: "json",
    write: (line) => {
      recordEmitted(line);
      logs.push(JSON.parse(line));
    },
  });
  /** Tokens by "namespace/secret name", to know each Receiver's digest for the suite's grep. */
  const tokens = new Map<string, string>();
  const tuning: Partial<Tuning> = {
    watchBackoff: { baseMs: 10, capMs: 200 },
    secretReadBackoff: { baseMs: 10, capMs: 30_000 },
    ...seams,
  };
  // As main.ts wires it: the client's API requests counted for the metrics.
  const apiRequests = new ApiRequestCounts();
  const fluxhook = await startFluxhook({
    config: { ...TEST_CONFIG, ...config },
    log,
    kube: createKubeClient({ kubeConfig: api.kubeConfig(), log, tuning, onResponse: apiRequests.record }),
    tuning,
    apiRequests,
  });
  await waitFor("fluxhook to be ready", () => fluxhook.ready());

  const stack: Stack = {
    api,
    fluxhook,
    logs,
    secret(namespace, name, data) {
      if (data.token !== undefined) {
        tokens.set(`${namespace}/${name}`, data.token);
        recordToken(data.token);
      }
      api.store.create({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name, namespace },
        data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
      });
    },
    receiver(namespace, name, spec) {
      const secretName = (spec.secretRef as { name?: string } | undefined)?.name;
      const token = secretName === undefined ? "" : tokens.get(`${namespace}/${secretName}`);
      if (token !== undefined && token !== "") recordPath(webhookPath(token, name, namespace));
      api.store.create({ apiVersion: RECEIVER, kind: "Receiver", metadata: { name, namespace }, spec });
    },
    target(apiVersion, kind, namespace, name, labels, annotations) {
      api.store.create({
        apiVersion,
        kind,
        metadata: { name, namespace, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) },
        spec: {},
      });
    },
    receiverObject(namespace, name) {
      return api.store.get(RECEIVER, "Receiver", namespace, name) as Record<string, any> | undefined;
    },
    async readyPath(namespace, name) {
      const path = await waitFor(`Receiver ${namespace}/${name} to be Ready`, () => {
        const status = stack.receiverObject(namespace, name)?.status;
        const ready = status?.conditions?.find((c: any) => c.type === "Ready");
        return ready?.status === "True" && status.webhookPath ? (status.webhookPath as string) : undefined;
      });
      recordPath(path);
      return path;
    },
    makeReceiver(namespace, name, fixture) {
      for (const object of receiverObjects(namespace, name, fixture)) {
        const { apiVersion, kind, metadata } = object;
        if (kind === "Receiver") stack.receiver(namespace, name, object.spec as Record<string, unknown>);
        else if (api.store.get(apiVersion, kind, namespace, metadata.name!)) continue;
        else if (kind === "Secret") stack.secret(namespace, metadata.name!, { token: fixture.token! });
        else api.store.create(object);
      }
    },
    readyReceiver(namespace, name, fixture) {
      stack.makeReceiver(namespace, name, fixture);
      return stack.readyPath(namespace, name);
    },
    requestedAt(apiVersion, kind, namespace, name) {
      const obj = api.store.get(apiVersion, kind, namespace, name) as Record<string, any> | undefined;
      return obj?.metadata?.annotations?.[REQUESTED_AT_ANNOTATION];
    },
    async post(path, init = {}) {
      const res = await fetch(fluxhook.receiverUrl + path, {
        method: init.method ?? "POST",
        headers: init.headers,
        body: init.body as BodyInit | undefined,
      });
      const text = await res.text();
      recordEmitted(text);
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON
      }
      return { status: res.status, body, headers: res.headers };
    },
    async stop() {
      await fluxhook.stop();
      await api.close();
    },
    [Symbol.asyncDispose]() {
      return stack.stop();
    },
  };
  return stack;
}
