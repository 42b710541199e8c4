/**
 * deploy/README.md, "Migrate from notification-controller": the patch it tells users to add to
 * `clusters/<cluster>/flux-system/kustomization.yaml`, and its kubectl form, applied to a
 * flux-system layout as `flux bootstrap` writes it (fixtures/flux-system: Flux's webhook-receiver
 * Service, notification-controller's Deployment and allow-webhooks NetworkPolicy), rendered with
 * the recommended install beside it. After the patch Flux's Service sends webhooks to fluxhook's
 * pods, on its receiver port, through fluxhook's own NetworkPolicy; nothing else of Flux's changes;
 * the rollback gives back Flux's Service as it ships.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { applyJsonPatch, DEPLOY, type JsonPatchOp, type Manifest, only, REPO, render } from "./kustomize";
import { codeBlocks } from "./markdown";

const FIXTURE = join(import.meta.dir, "fixtures", "flux-system");
const readme = readFileSync(join(DEPLOY, "README.md"), "utf8");

/** The migration section of deploy/README.md, up to the next section. */
const section = (() => {
  const start = readme.indexOf("## 2. Migrate from notification-controller");
  if (start < 0) throw new Error('deploy/README.md has no "## 2. Migrate from notification-controller"');
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
})();
/** Code blocks are indented under list items: dedent them. */
const blocks = codeBlocks(section.replace(/^ {3}/gm, ""));

const scratch = mkdtempSync(join(tmpdir(), "fluxhook-migrate-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The fixture with `kustomization` as its kustomization.yaml, rendered. */
function flux(kustomization?: string): Manifest[] {
  const dir = mkdtempSync(join(scratch, "flux-system-"));
  cpSync(FIXTURE, dir, { recursive: true });
  if (kustomization !== undefined) writeFileSync(join(dir, "kustomization.yaml"), kustomization);
  return render(dir).objects;
}

/** The `-p '<json>'` of the guide's `kubectl patch service webhook-receiver` commands, in order. */
const kubectlPatches: JsonPatchOp[][] = blocks
  .filter((b) => b.text.includes("kubectl -n flux-system patch service webhook-receiver"))
  .map((b) => JSON.parse(/-p '([^']+)'/.exec(b.text)![1]!));

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

const original = flux();
const fluxhook = render(join(DEPLOY, "base")).objects;
const fluxhookPod = only(fluxhook, "Deployment", "fluxhook").spec.template;
const controllerPod = only(original, "Deployment", "notification-controller").spec.template;
const webhookReceiver = (objects: readonly Manifest[]) => only(objects, "Service", "webhook-receiver");

/** Where a Service sends its traffic: whose pods it selects, and the container port it reaches. */
function routesTo(service: Manifest): { fluxhook: number | undefined; controller: number | undefined } {
  const portOf = (pod: Record<string, any>) => {
    if (!matches(service.spec.selector, pod.metadata.labels)) return undefined;
    const target = service.spec.ports[0].targetPort;
    return pod.spec.containers[0].ports.find((p: { name: string }) => p.name === target)?.containerPort;
  };
  return { fluxhook: portOf(fluxhookPod), controller: portOf(controllerPod) };
}

describe("the fixture is Flux's layout", () => {
  test("webhook-receiver sends to notification-controller's webhook port, as Flux ships it", () => {
    expect(routesTo(webhookReceiver(original))).toEqual({ fluxhook: undefined, controller: 9292 });
    expect(webhookReceiver(original).metadata.labels).toMatchObject({
      "app.kubernetes.io/part-of": "flux",
      "app.kubernetes.io/component": "notification-controller",
    });
  });

  test("flux-system/kustomization.yaml lists gotk-components.yaml and gotk-sync.yaml, as bootstrap writes it", () => {
    expect(parseYaml(readFileSync(join(FIXTURE, "kustomization.yaml"), "utf8"))).toEqual({
      apiVersion: "kustomize.config.k8s.io/v1beta1",
      kind: "Kustomization",
      resources: ["gotk-components.yaml", "gotk-sync.yaml"],
    });
  });
});

describe("deploy/README.md's migration", () => {
  const kustomization = blocks.find((b) => b.lang === "yaml" && b.text.includes("name: webhook-receiver"));

  test("every numbered step has a command", () => {
    const steps = section.split(/^\d+\. /m).slice(1);
    expect(steps.length).toBe(4);
    for (const step of steps) expect(step).toMatch(/```(sh|yaml)\n/);
    expect(section).toContain("**Roll back**");
  });

  test("step 1 installs the recommended install, which exists and serves on fluxhook's Deployment", () => {
    expect(blocks[0]!.text).toContain("kubectl apply -k deploy/base");
    expect(blocks[0]!.text).toContain("rollout status deployment/fluxhook");
    expect(existsSync(join(REPO, "deploy/base/kustomization.yaml"))).toBe(true);
  });

  test("flux-system/kustomization.yaml keeps bootstrap's resources and adds the patch", () => {
    expect(kustomization).toBeDefined();
    const k = parseYaml(kustomization!.text);
    expect(k.resources).toEqual(["gotk-components.yaml", "gotk-sync.yaml"]);
    expect(k.patches).toHaveLength(1);
  });

  test("with the patch, Flux's webhook-receiver sends webhooks to fluxhook's receiver port, and nothing else changes", () => {
    const patched = flux(kustomization!.text);
    const service = webhookReceiver(patched);
    expect(routesTo(service)).toEqual({ fluxhook: 9292, controller: undefined });
    // fluxhook's own Service and webhook-receiver now reach the same pods and port.
    const own = only(fluxhook, "Service", "fluxhook-receiver");
    expect(matches(service.spec.selector, fluxhookPod.metadata.labels)).toBe(true);
    expect(service.spec.ports[0].targetPort).toBe(own.spec.ports[0].targetPort);
    // Only the selector moved: the Service keeps Flux's name, labels and port.
    expect({ ...service, spec: { ...service.spec, selector: undefined } }).toEqual({
      ...webhookReceiver(original),
      spec: { ...webhookReceiver(original).spec, selector: undefined },
    });
    const others = (objects: readonly Manifest[]) => objects.filter((o) => o.metadata.name !== "webhook-receiver");
    expect(others(patched)).toEqual(others(original));
  });

  test("fluxhook's NetworkPolicy admits what the Service sends (Flux's allow-webhooks admits only notification-controller)", () => {
    const allowWebhooks = only(original, "NetworkPolicy", "allow-webhooks");
    expect(matches(allowWebhooks.spec.podSelector.matchLabels, fluxhookPod.metadata.labels)).toBe(false);
    const own = fluxhook.filter(
      (o) => o.kind === "NetworkPolicy" && matches(o.spec.podSelector.matchLabels, fluxhookPod.metadata.labels),
    );
    const admitted = own.flatMap((p) => p.spec.ingress).filter((rule: any) => rule.from === undefined);
    expect(admitted.flatMap((rule: any) => rule.ports.map((p: { port: number }) => p.port))).toContain(9292);
  });

  test("the kubectl patch does what the kustomize patch does, and its rollback gives back Flux's Service", () => {
    expect(kubectlPatches).toHaveLength(2);
    const [forward, back] = kubectlPatches as [JsonPatchOp[], JsonPatchOp[]];
    const moved = applyJsonPatch(webhookReceiver(original), forward);
    expect(moved).toEqual(webhookReceiver(flux(kustomization!.text)));
    expect(applyJsonPatch(moved, back)).toEqual(webhookReceiver(original));
  });

  test("rolling back (the patch removed) renders Flux's Service as it ships", () => {
    const k = parseYaml(kustomization!.text);
    delete k.patches;
    const rolledBack = flux(JSON.stringify(k));
    expect(rolledBack).toEqual(original);
    expect(routesTo(webhookReceiver(rolledBack))).toEqual({ fluxhook: undefined, controller: 9292 });
  });
});
