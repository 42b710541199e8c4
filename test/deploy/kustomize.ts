/**
 * @module test/deploy/kustomize
 * Renders the kustomizations under deploy/: with `kubectl kustomize` when kubectl is on PATH, else
 * with {@link loadKustomization}, a small reading of the same files that supports only what
 * deploy/ uses (resources, components, namespace, images, labels, JSON 6902 patches) and refuses
 * anything else.
 * When kubectl is there, a test checks that both renderings agree, so the fallback stays honest.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAllDocuments, parse as parseYaml } from "yaml";

export const REPO = resolve(import.meta.dir, "../..");
export const DEPLOY = join(REPO, "deploy");

/** A Kubernetes object as read from YAML. */
export type Manifest = Record<string, any> & {
  apiVersion: string;
  kind: string;
  metadata: Record<string, any> & { name: string; namespace?: string };
};

export const KUBECTL = Bun.which("kubectl");

/** Every document of a YAML stream, with empty documents dropped; throws on a YAML error. */
export function parseYamlDocuments(text: string, source: string): unknown[] {
  const out: unknown[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

/** `kubectl kustomize <dir>`, parsed. */
export function kubectlKustomize(dir: string): Manifest[] {
  if (!KUBECTL) throw new Error("kubectl is not on PATH");
  const r = Bun.spawnSync([KUBECTL, "kustomize", dir], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`kubectl kustomize ${dir} exited ${r.exitCode}: ${r.stderr.toString()}`);
  return parseYamlDocuments(r.stdout.toString(), dir) as Manifest[];
}

/** Kinds that have no namespace (among those deploy/ could hold). */
const CLUSTER_SCOPED = new Set([
  "Namespace",
  "ClusterRole",
  "ClusterRoleBinding",
  "CustomResourceDefinition",
  "PriorityClass",
  "StorageClass",
  "IngressClass",
  "GatewayClass",
]);

const SUPPORTED_FIELDS = new Set([
  "apiVersion",
  "kind",
  "namespace",
  "resources",
  "components",
  "images",
  "patches",
  "labels",
]);

const COMPONENT_FIELDS = new Set(["apiVersion", "kind", "resources", "patches"]);

/** A remote resource (an `https://` file) as kustomize would fetch it; tests answer with a fixture. */
export type RemoteResources = (url: string) => string;

const noRemote: RemoteResources = (url) => {
  throw new Error(`the fallback renderer does not fetch remote resources (${url}); pass a resolver or install kubectl`);
};

interface ImageOverride {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
}

export interface JsonPatchOp {
  op: "add" | "replace" | "remove" | "test";
  path: string;
  value?: unknown;
}

interface LabelsEntry {
  pairs: Record<string, string>;
  includeSelectors?: boolean;
  includeTemplates?: boolean;
}

interface PatchEntry {
  target?: { group?: string; version?: string; kind?: string; name?: string; namespace?: string };
  patch?: string;
  path?: string;
}

function kustomizationFile(dir: string): string {
  for (const name of ["kustomization.yaml", "kustomization.yml", "Kustomization"]) {
    const file = join(dir, name);
    if (existsSync(file)) return file;
  }
  throw new Error(`${dir} has no kustomization.yaml`);
}

/**
 * Reads a kustomization the way kustomize would, for the features deploy/ uses: its resources, then
 * each component (its resources added, its patches applied to everything so far), then its own
 * patches, namespace, images and labels. Remote files come from `remote`.
 */
export function loadKustomization(dir: string, remote: RemoteResources = noRemote): Manifest[] {
  const file = kustomizationFile(dir);
  const k = parseYaml(readFileSync(file, "utf8")) as Record<string, unknown>;
  for (const key of Object.keys(k)) {
    if (!SUPPORTED_FIELDS.has(key))
      throw new Error(`${file}: the fallback renderer does not support "${key}"; install kubectl`);
  }
  let objects = loadResources(dir, k, remote);
  for (const entry of (k.components as string[] | undefined) ?? []) {
    const component = resolve(dir, entry);
    const c = parseYaml(readFileSync(kustomizationFile(component), "utf8")) as Record<string, unknown>;
    if (c.kind !== "Component") throw new Error(`${component}: a component's kustomization must be kind Component`);
    const unsupported = Object.keys(c).filter((key) => !COMPONENT_FIELDS.has(key));
    if (unsupported.length > 0)
      throw new Error(`${component}: the fallback renderer does not support a component's ${unsupported.join(", ")}`);
    objects.push(...loadResources(component, c, remote));
    for (const p of (c.patches as PatchEntry[] | undefined) ?? [])
      objects = objects.map((o) => applyPatchEntry(o, p, component));
  }
  for (const p of (k.patches as PatchEntry[] | undefined) ?? [])
    objects = objects.map((o) => applyPatchEntry(o, p, dir));
  if (typeof k.namespace === "string") setNamespace(objects, k.namespace);
  for (const image of (k.images as ImageOverride[] | undefined) ?? []) setImage(objects, image);
  for (const labels of (k.labels as LabelsEntry[] | undefined) ?? []) setLabels(objects, labels);
  return objects;
}

/** A kustomization's (or component's) `resources`: files, URLs, and kustomizations rendered whole. */
function loadResources(dir: string, k: Record<string, unknown>, remote: RemoteResources): Manifest[] {
  const objects: Manifest[] = [];
  for (const entry of (k.resources as string[] | undefined) ?? []) {
    if (/^https?:\/\//.test(entry)) {
      objects.push(...(parseYamlDocuments(remote(entry), entry) as Manifest[]));
      continue;
    }
    const path = resolve(dir, entry);
    objects.push(
      ...(statSync(path).isDirectory()
        ? loadKustomization(path, remote)
        : (parseYamlDocuments(readFileSync(path, "utf8"), path) as Manifest[])),
    );
  }
  return objects;
}

/** kustomize's `labels`: on every object's metadata, and on pod templates when asked (never selectors here). */
function setLabels(objects: Manifest[], entry: LabelsEntry): void {
  if (entry.includeSelectors) throw new Error("the fallback renderer does not set labels on selectors");
  for (const o of objects) {
    o.metadata.labels = { ...o.metadata.labels, ...entry.pairs };
    const template = o.spec?.template?.metadata as Record<string, any> | undefined;
    if (entry.includeTemplates && template) template.labels = { ...template.labels, ...entry.pairs };
  }
}

function setNamespace(objects: Manifest[], namespace: string): void {
  const accounts = new Set(objects.filter((o) => o.kind === "ServiceAccount").map((o) => o.metadata.name));
  for (const o of objects) {
    if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = namespace;
    // kustomize moves the subjects that name a ServiceAccount of this kustomization along with it.
    if (o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding") {
      for (const s of (o.subjects as { kind: string; name: string; namespace?: string }[] | undefined) ?? []) {
        if (s.kind === "ServiceAccount" && accounts.has(s.name)) s.namespace = namespace;
      }
    }
  }
}

function setImage(objects: Manifest[], image: ImageOverride): void {
  for (const o of objects) {
    for (const c of [
      ...(o.spec?.template?.spec?.containers ?? []),
      ...(o.spec?.template?.spec?.initContainers ?? []),
    ] as { image: string }[]) {
      const [name, tag] = splitImage(c.image);
      if (name !== image.name) continue;
      const newName = image.newName ?? name;
      c.image = image.digest
        ? `${newName}@${image.digest}`
        : `${newName}${image.newTag ? `:${image.newTag}` : tag ? `:${tag}` : ""}`;
    }
  }
}

function splitImage(image: string): [string, string | undefined] {
  const at = image.indexOf("@");
  const base = at < 0 ? image : image.slice(0, at);
  const colon = base.lastIndexOf(":");
  return colon > base.lastIndexOf("/") ? [base.slice(0, colon), base.slice(colon + 1)] : [base, undefined];
}

function applyPatchEntry(o: Manifest, entry: PatchEntry, dir: string): Manifest {
  const t = entry.target ?? {};
  const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : ["", o.apiVersion];
  if (
    (t.kind && t.kind !== o.kind) ||
    (t.name && t.name !== o.metadata.name) ||
    (t.group !== undefined && t.group !== group) ||
    (t.version && t.version !== version)
  )
    return o;
  const text = entry.patch ?? readFileSync(join(dir, entry.path!), "utf8");
  const ops = parseYaml(text) as JsonPatchOp[];
  if (!Array.isArray(ops))
    throw new Error(`${dir}: only JSON 6902 patches (a list of ops) are supported by the fallback renderer`);
  const copy = structuredClone(o);
  for (const op of ops) applyJsonPatchOp(copy, op, `${dir}: patch of ${o.kind} ${o.metadata.name}`);
  return copy;
}

/** A JSON 6902 patch (add, replace, remove, test) applied to a copy of `o`, as kubectl patch --type=json does. */
export function applyJsonPatch<T>(o: T, ops: readonly JsonPatchOp[], where = "patch"): T {
  const copy = structuredClone(o) as Record<string, any>;
  for (const op of ops) applyJsonPatchOp(copy, op, where);
  return copy as T;
}

function applyJsonPatchOp(root: Record<string, any>, op: JsonPatchOp, where: string): void {
  const parts = op.path
    .split("/")
    .slice(1)
    .map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"));
  const last = parts.pop()!;
  let parent: any = root;
  for (const p of parts) {
    parent = parent?.[p];
    if (parent === undefined) throw new Error(`patch path ${op.path} does not exist`);
  }
  if (op.op === "test") {
    const value = Array.isArray(parent) ? parent[Number(last)] : parent?.[last];
    if (JSON.stringify(value) !== JSON.stringify(op.value))
      throw new Error(`${where}: test ${op.path} failed: ${JSON.stringify(value)} is not ${JSON.stringify(op.value)}`);
    return;
  }
  if (Array.isArray(parent)) {
    const index = last === "-" ? parent.length : Number(last);
    if (op.op === "add") parent.splice(index, 0, op.value);
    else if (op.op === "replace") parent[index] = op.value;
    else parent.splice(index, 1);
  } else if (op.op === "remove") delete parent[last];
  else parent[last] = op.value;
}

/** Renders a kustomization directory: kubectl when available, else {@link loadKustomization}. */
export function render(dir: string): { objects: Manifest[]; via: "kubectl kustomize" | "yaml fallback" } {
  return KUBECTL
    ? { objects: kubectlKustomize(dir), via: "kubectl kustomize" }
    : { objects: loadKustomization(dir), via: "yaml fallback" };
}

/** The one object of this kind (and name, when given); throws if there is not exactly one. */
export function only(objects: readonly Manifest[], kind: string, name?: string): Manifest {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ""}, found ${found.length}`);
  return found[0]!;
}
