/**
 * @module registry
 * The kinds the server knows, looked up by apiVersion+kind (store API, request bodies) and by
 * group+version+plural (URL paths). Discovery documents are generated from this table, so a
 * kind registered by a test is immediately listable, watchable and discoverable.
 */
import { join } from "node:path";
import { crdStatusSchema, statusValidator, type StatusValidator } from "./schema";

/** Flux's Receiver CRD as deploy/ vendors it. */
const RECEIVER_CRD = join(import.meta.dir, "../../deploy/components/crd/notification-controller.crds.yaml");

/** How a test describes a kind. Defaults: namespaced, no status subresource. */
export interface KindSpec {
  /** API group, `""` for the core group. */
  group: string;
  version: string;
  kind: string;
  /** Lower-case plural used in URLs, e.g. `gitrepositories`. */
  plural: string;
  /** Defaults to the lower-cased kind. */
  singular?: string;
  /** Defaults to true. */
  namespaced?: boolean;
  /** Serve `<plural>/status` and split status writes from main-resource writes. Defaults to false. */
  statusSubresource?: boolean;
  shortNames?: string[];
  /** Field-selector labels beyond `metadata.name` and `metadata.namespace`, e.g. `type` for Secrets. */
  fieldSelectors?: string[];
  /** The CRD's schema of `status`: status writes it refuses are 422 (schema.ts). */
  statusSchema?: object;
}

/** A registered kind with everything derived once. */
export interface KindInfo {
  readonly group: string;
  readonly version: string;
  /** `v1` or `group/version`. */
  readonly apiVersion: string;
  readonly kind: string;
  readonly listKind: string;
  readonly plural: string;
  readonly singular: string;
  readonly namespaced: boolean;
  readonly statusSubresource: boolean;
  readonly shortNames: readonly string[];
  /** Supported field-selector labels, including the metadata ones. */
  readonly fieldSelectors: ReadonlySet<string>;
  /** Unique storage key: `apiVersion/kind`. */
  readonly key: string;
  /** The causes a status write is refused for (none: accepted); every status is accepted without a schema. */
  readonly validateStatus: StatusValidator | undefined;
}

const flux = (group: string, version: string, kind: string, plural: string): KindSpec => ({
  group,
  version,
  kind,
  plural,
  statusSubresource: true,
});

/** Kinds every server starts with: what fluxhook reads, writes and annotates. */
export const BUILTIN_KINDS: readonly KindSpec[] = [
  {
    group: "",
    version: "v1",
    kind: "Namespace",
    plural: "namespaces",
    namespaced: false,
    statusSubresource: true,
    shortNames: ["ns"],
    fieldSelectors: ["status.phase"],
  },
  { group: "", version: "v1", kind: "Secret", plural: "secrets", fieldSelectors: ["type"] },
  {
    group: "",
    version: "v1",
    kind: "Event",
    plural: "events",
    shortNames: ["ev"],
    fieldSelectors: [
      "involvedObject.kind",
      "involvedObject.namespace",
      "involvedObject.name",
      "involvedObject.uid",
      "involvedObject.apiVersion",
      "involvedObject.resourceVersion",
      "involvedObject.fieldPath",
      "reason",
      "reportingComponent",
      "source",
      "type",
    ],
  },
  {
    group: "events.k8s.io",
    version: "v1",
    kind: "Event",
    plural: "events",
    shortNames: ["ev"],
    fieldSelectors: ["regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid", "reason", "type"],
  },
  { group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases" },
  // The Receiver's status is checked against Flux's CRD (the one deploy/components/crd vendors), as
  // kube-apiserver does: it is the one kind fluxhook writes status to.
  {
    ...flux("notification.toolkit.fluxcd.io", "v1", "Receiver", "receivers"),
    statusSchema: crdStatusSchema(RECEIVER_CRD, "Receiver", "v1"),
  },
  flux("source.toolkit.fluxcd.io", "v1", "GitRepository", "gitrepositories"),
  flux("source.toolkit.fluxcd.io", "v1", "Bucket", "buckets"),
  flux("source.toolkit.fluxcd.io", "v1", "HelmChart", "helmcharts"),
  flux("source.toolkit.fluxcd.io", "v1", "HelmRepository", "helmrepositories"),
  flux("source.toolkit.fluxcd.io", "v1", "OCIRepository", "ocirepositories"),
  flux("source.toolkit.fluxcd.io", "v1", "ExternalArtifact", "externalartifacts"),
  flux("kustomize.toolkit.fluxcd.io", "v1", "Kustomization", "kustomizations"),
  flux("helm.toolkit.fluxcd.io", "v2", "HelmRelease", "helmreleases"),
  flux("image.toolkit.fluxcd.io", "v1", "ImageRepository", "imagerepositories"),
  flux("image.toolkit.fluxcd.io", "v1", "ImagePolicy", "imagepolicies"),
  flux("image.toolkit.fluxcd.io", "v1", "ImageUpdateAutomation", "imageupdateautomations"),
  flux("source.extensions.fluxcd.io", "v1beta1", "ArtifactGenerator", "artifactgenerators"),
];

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function toInfo(spec: KindSpec): KindInfo {
  if (!spec.kind || !spec.version || !DNS_LABEL.test(spec.plural)) {
    throw new Error(`Invalid kind spec ${JSON.stringify(spec)}: kind, version and a lower-case plural are required.`);
  }
  const apiVersion = spec.group ? `${spec.group}/${spec.version}` : spec.version;
  return {
    group: spec.group,
    version: spec.version,
    apiVersion,
    kind: spec.kind,
    listKind: `${spec.kind}List`,
    plural: spec.plural,
    singular: spec.singular ?? spec.kind.toLowerCase(),
    namespaced: spec.namespaced ?? true,
    statusSubresource: spec.statusSubresource ?? false,
    shortNames: spec.shortNames ?? [],
    fieldSelectors: new Set(["metadata.name", "metadata.namespace", ...(spec.fieldSelectors ?? [])]),
    key: `${apiVersion}/${spec.kind}`,
    validateStatus: spec.statusSchema ? statusValidator(spec.statusSchema) : undefined,
  };
}

/** The kinds table. */
export class KindRegistry {
  readonly #byKind = new Map<string, KindInfo>();
  readonly #byResource = new Map<string, KindInfo>();

  constructor(specs: readonly KindSpec[] = BUILTIN_KINDS) {
    for (const spec of specs) this.register(spec);
  }

  /** Add a kind (or replace one with the same apiVersion, kind and plural). */
  register(spec: KindSpec): KindInfo {
    const info = toInfo(spec);
    const resourceKey = `${info.apiVersion}/${info.plural}`;
    const clash = this.#byResource.get(resourceKey);
    if (clash && clash.kind !== info.kind) {
      throw new Error(`Resource ${resourceKey} is already registered for kind ${clash.kind}.`);
    }
    const previous = this.#byKind.get(info.key);
    if (previous && previous.plural !== info.plural) {
      throw new Error(`Kind ${info.key} is already registered with plural ${previous.plural}.`);
    }
    this.#byKind.set(info.key, info);
    this.#byResource.set(resourceKey, info);
    return info;
  }

  /** Look up by `apiVersion` and `kind`, e.g. `("source.toolkit.fluxcd.io/v1", "GitRepository")`. */
  lookup(apiVersion: string, kind: string): KindInfo | undefined {
    return this.#byKind.get(`${apiVersion}/${kind}`);
  }

  /** Like {@link lookup}, for callers that passed a kind they should have registered (a test bug). */
  require(apiVersion: string, kind: string): KindInfo {
    const info = this.lookup(apiVersion, kind);
    if (!info) throw new Error(`Unknown kind ${apiVersion}/${kind}: register it with server.registerKind().`);
    return info;
  }

  /** Look up by URL parts; `group` is `""` for `/api/v1`. */
  byResource(group: string, version: string, plural: string): KindInfo | undefined {
    return this.#byResource.get(`${group ? `${group}/${version}` : version}/${plural}`);
  }

  kinds(): KindInfo[] {
    return [...this.#byKind.values()];
  }

  /** Kinds served under one group/version, in registration order. */
  kindsIn(group: string, version: string): KindInfo[] {
    return this.kinds().filter((k) => k.group === group && k.version === version);
  }

  /** Versions served for a group, preferred (highest) first. */
  versionsOf(group: string): string[] {
    const versions = new Set(
      this.kinds()
        .filter((k) => k.group === group)
        .map((k) => k.version),
    );
    return [...versions].sort(compareKubeVersions);
  }

  /** Non-core groups, in registration order. */
  groups(): string[] {
    return [
      ...new Set(
        this.kinds()
          .map((k) => k.group)
          .filter((g) => g !== ""),
      ),
    ];
  }
}

const VERSION = /^v(\d+)(?:(alpha|beta)(\d+))?$/;
const STABILITY: Record<string, number> = { "": 3, beta: 2, alpha: 1 };

/** Kubernetes version priority: GA > beta > alpha, then higher numbers first; odd names last. */
export function compareKubeVersions(a: string, b: string): number {
  const ma = VERSION.exec(a);
  const mb = VERSION.exec(b);
  if (!ma || !mb) return ma ? -1 : mb ? 1 : a.localeCompare(b);
  const rank = (m: RegExpExecArray) => [STABILITY[m[2] ?? ""] ?? 0, Number(m[1]), Number(m[3] ?? 0)];
  const [ra, rb] = [rank(ma), rank(mb)];
  for (let i = 0; i < 3; i++) {
    const d = (rb[i] ?? 0) - (ra[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
