/**
 * What a release installs, as `kubectl kustomize` renders it: the image reference (set once, at
 * package.json's version, the name the release workflow pushes), the PodDisruptionBudget, the
 * spread over zones and hosts, the labels Flux's monitoring selects pods by, the Flux-native install
 * example, every component applied to the base, and monitoring/. The rendering of base/ and the
 * examples is shared with manifests.test.ts (kustomize.ts); components and monitoring/ use kustomize
 * features the YAML fallback does not have, so they need kubectl, which CI has.
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parse as parseYaml } from "yaml";
import { OWNER } from "./owner";
import { DEPLOY, KUBECTL, kubectlKustomize, only, render, REPO, type Manifest } from "./kustomize";

const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string };
const { objects: base, via } = render(join(DEPLOY, "base"));
const deployment = only(base, "Deployment", "fluxhook");
const pod = deployment.spec.template;
const labels = pod.metadata.labels as Record<string, string>;
const NAMESPACE = deployment.metadata.namespace as string;
const matches = (selector: Record<string, string>, of: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => of[k] === v);

/** `registry/owner/name:tag` split into its parts. */
function imageParts(image: string): { registry: string; owner: string; name: string; tag: string } {
  const m = /^([^/]+)\/([^/]+)\/([^/:@]+):([^@]+)$/.exec(image);
  if (!m) throw new Error(`not registry/owner/name:tag: ${image}`);
  return { registry: m[1]!, owner: m[2]!, name: m[3]!, tag: m[4]! };
}
const image = imageParts(deployment.spec.template.spec.containers[0].image);

describe(`the image reference (${via})`, () => {
  test("is ghcr.io/fluxhook/fluxhook at package.json's version", () => {
    expect(image).toEqual({ registry: "ghcr.io", owner: OWNER, name: "fluxhook", tag: pkg.version });
  });

  test("is set in one place: the base kustomization's images, not the Deployment", () => {
    const raw = parseYaml(readFileSync(join(DEPLOY, "base/deployment.yaml"), "utf8"));
    expect(raw.spec.template.spec.containers[0].image).toBe("fluxhook");
    const k = parseYaml(readFileSync(join(DEPLOY, "base/kustomization.yaml"), "utf8"));
    expect(k.images).toEqual([{ name: "fluxhook", newName: `ghcr.io/${image.owner}/fluxhook`, newTag: pkg.version }]);
  });

  test("is the name release.yml pushes and checks against the tag", () => {
    const release = readFileSync(join(REPO, ".github/workflows/release.yml"), "utf8");
    // The release derives ghcr.io/<owner>/fluxhook from the repository owner and refuses to publish
    // unless the base names it with the tag's version (the greps in its `version` job).
    expect(release).toContain('image="ghcr.io/$owner/fluxhook"');
    expect(release).toContain("newName: $image$");
    expect(release).toContain('newTag: \\"?$version\\"?$');
    expect(release).toContain("--path=./deploy");
  });
});

describe("the release the documents name", () => {
  /** The documents a user follows, and the examples they copy. */
  const documents = execFileSync("git", ["ls-files", "*.md", "examples/**", "deploy/**", "Dockerfile"], {
    cwd: REPO,
    encoding: "utf8",
  })
    .split("\n")
    .filter(
      (file) =>
        file !== "" && !file.startsWith("test/") && /\.(md|ya?ml)$|^Dockerfile$/.test(file) && file !== "CHANGELOG.md",
    );
  const occurrences = (pattern: RegExp) =>
    documents.flatMap((file) =>
      [...readFileSync(join(REPO, file), "utf8").matchAll(pattern)].map((m) => ({ file, found: m[1]! })),
    );
  const major = `v${pkg.version.split(".")[0]}`;

  test("`uses:` and the CLI's download name the action's major tag, the one release.yml moves (v0 for 0.x)", () => {
    const release = readFileSync(join(REPO, ".github/workflows/release.yml"), "utf8");
    expect(release).toMatch(/major="\$\{TAG%%\.\*\}"/);
    const tags = [
      ...occurrences(new RegExp(`${OWNER}/fluxhook@(v[0-9][^\\s"'\`]*)`, "g")),
      ...occurrences(new RegExp(`raw\\.githubusercontent\\.com/${OWNER}/fluxhook/([^/]+)/action/dist/cli\\.js`, "g")),
    ];
    expect(tags.length).toBeGreaterThan(5);
    expect(tags.filter((t) => t.found !== major)).toEqual([]);
  });

  test("every pinned version of the image, the manifests and the base is package.json's, which CHANGELOG has a section for", () => {
    const pins = [
      ...occurrences(new RegExp(`ghcr\\.io/${OWNER}/fluxhook(?:-manifests)?:(\\d+\\.\\d+\\.\\d+)`, "g")),
      ...occurrences(/\/\/deploy\/base\?ref=v(\d+\.\d+\.\d+)/g),
      ...occurrences(/^\s*tag: (\d+\.\d+\.\d+)\s*$/gm),
    ];
    expect(pins.length).toBeGreaterThan(3);
    expect(pins.filter((p) => p.found !== pkg.version)).toEqual([]);
    expect(readFileSync(join(REPO, "CHANGELOG.md"), "utf8")).toContain(`## [${pkg.version}]`);
  });
});

describe(`availability (${via})`, () => {
  test("a PodDisruptionBudget keeps one of the two replicas through voluntary disruptions", () => {
    const pdb = only(base, "PodDisruptionBudget", "fluxhook");
    expect(pdb.apiVersion).toBe("policy/v1");
    expect(pdb.metadata.namespace).toBe(NAMESPACE);
    expect(pdb.spec.minAvailable).toBe(1);
    expect(pdb.spec.maxUnavailable).toBeUndefined();
    expect(matches(pdb.spec.selector.matchLabels, labels)).toBe(true);
    // A budget the Deployment cannot exceed would block every drain.
    expect(deployment.spec.replicas).toBeGreaterThan(pdb.spec.minAvailable);
  });

  test("the replicas spread over zones and over hosts, without blocking small clusters", () => {
    const spread = pod.spec.topologySpreadConstraints as Record<string, any>[];
    expect(spread.map((s) => s.topologyKey).sort()).toEqual(["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
    for (const s of spread) {
      expect(s).toMatchObject({ maxSkew: 1, whenUnsatisfiable: "ScheduleAnyway" });
      expect(matches(s.labelSelector.matchLabels, labels)).toBe(true);
    }
  });
});

describe(`Flux's labels (${via})`, () => {
  /** What Flux's CLI selects its components by (flux check, version, logs, uninstall: manifestgen.PartOfLabelKey). */
  const FLUX_CLI_SELECTOR = { "app.kubernetes.io/part-of": "flux" };

  test.each(["base", "standalone"])(
    "%s: every fluxhook object carries part-of=flux and its component name, the pods too",
    (dir) => {
      const objects = render(join(DEPLOY, dir)).objects.filter((o) => o.kind !== "CustomResourceDefinition");
      const unlabelled = objects
        .filter(
          (o) => !matches({ ...FLUX_CLI_SELECTOR, "app.kubernetes.io/component": "fluxhook" }, o.metadata.labels ?? {}),
        )
        .map((o) => `${o.kind}/${o.metadata.name}`);
      expect(unlabelled).toEqual([]);
      const template = only(objects, "Deployment", "fluxhook").spec.template.metadata.labels;
      expect(matches(FLUX_CLI_SELECTOR, template)).toBe(true);
    },
  );

  test("not Flux's app.kubernetes.io/instance, which names the `flux install` that made an object", () => {
    expect(base.filter((o) => o.metadata.labels?.["app.kubernetes.io/instance"] !== undefined)).toEqual([]);
  });
});

describe(`Flux's monitoring (${via})`, () => {
  test("the pod carries the labels Flux's PodMonitor and log dashboards select by", () => {
    // `app` is what Flux's PodMonitor (`app In (...)`) and its Loki dashboard's controller
    // variable (`label_values(app)`) read; part-of as on Flux's own controllers.
    expect(labels).toMatchObject({ app: "fluxhook", "app.kubernetes.io/part-of": "flux" });
    expect(labels["app.kubernetes.io/component"]).toBeString();
    // The Deployment's selector stays the narrow one (selectors are immutable).
    expect(deployment.spec.selector.matchLabels).toEqual({ "app.kubernetes.io/name": "fluxhook" });
  });
});

// ---- the Flux-native install ----

const FLUX_INSTALL = join(DEPLOY, "examples/flux-install");

describe(`deploy/examples/flux-install (${via})`, () => {
  const objects = render(FLUX_INSTALL).objects;
  const source = only(objects, "OCIRepository", "fluxhook");

  test("an OCIRepository pins the release's signed manifests at package.json's version", () => {
    expect(source.apiVersion).toBe("source.toolkit.fluxcd.io/v1");
    expect(source.metadata.namespace).toBe(NAMESPACE);
    expect(source.spec.url).toBe(`oci://ghcr.io/${image.owner}/fluxhook-manifests`);
    expect(source.spec.ref).toEqual({ tag: pkg.version });
    const identity = source.spec.verify.matchOIDCIdentity[0];
    expect(source.spec.verify.provider).toBe("cosign");
    // The subject is the release workflow on a version tag of the same repository.
    const subject = new RegExp(identity.subject);
    expect(
      subject.test(
        `https://github.com/${image.owner}/fluxhook/.github/workflows/release.yml@refs/tags/v${pkg.version}`,
      ),
    ).toBe(true);
    expect(subject.test(`https://github.com/${image.owner}/fluxhook/.github/workflows/ci.yml@refs/tags/v1.0.0`)).toBe(
      false,
    );
    expect(
      subject.test(`https://github.com/someone-else/fluxhook/.github/workflows/release.yml@refs/tags/v1.0.0`),
    ).toBe(false);
    expect(new RegExp(identity.issuer).test("https://token.actions.githubusercontent.com")).toBe(true);
  });

  test("Kustomizations apply the artifact's base/ (then monitoring/), pruned and waited for", () => {
    const install = only(objects, "Kustomization", "fluxhook");
    expect(install.apiVersion).toBe("kustomize.toolkit.fluxcd.io/v1");
    expect(install.spec).toMatchObject({
      sourceRef: { kind: "OCIRepository", name: "fluxhook" },
      path: "./base",
      prune: true,
      wait: true,
    });
    const monitoring = parseYaml(readFileSync(join(FLUX_INSTALL, "monitoring.yaml"), "utf8"));
    expect(monitoring.spec).toMatchObject({
      dependsOn: [{ name: "fluxhook" }],
      sourceRef: { kind: "OCIRepository", name: "fluxhook" },
      path: "./monitoring",
    });
    // The artifact is deploy/ (release.yml: `flux push artifact --path=./deploy`), so the paths
    // are directories of deploy/ that kustomize can build.
    for (const path of [install.spec.path, monitoring.spec.path])
      expect(existsSync(join(DEPLOY, path, "kustomization.yaml"))).toBe(true);
  });
});

// ---- components and monitoring/: kubectl kustomize ----

test.if(process.env.CI === "true")("CI has kubectl, so components and monitoring/ are rendered", () => {
  expect(KUBECTL).not.toBeNull();
});

const COMPONENTS = join(DEPLOY, "components");
const componentDirs = existsSync(COMPONENTS)
  ? readdirSync(COMPONENTS)
      .map((d) => join(COMPONENTS, d))
      .filter((d) => statSync(d).isDirectory())
  : [];
const scratch = mkdtempSync(join(tmpdir(), "fluxhook-kustomize-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * A component whose resources name URLs (components/crd takes Flux's released CRDs) is copied with
 * each URL replaced by a local CustomResourceDefinition, so kubectl composes it with no network;
 * the URL and its version pin are checked in manifests.test.ts.
 */
function offline(component: string): string {
  const file = join(component, "kustomization.yaml");
  const text = readFileSync(file, "utf8");
  if (!/^\s*-\s*https?:\/\//m.test(text)) return component;
  const copy = join(scratch, "offline", relative(COMPONENTS, component));
  mkdirSync(copy, { recursive: true });
  let n = 0;
  const local = text.replace(/^(\s*-\s*)https?:\/\/\S+$/gm, (_line, dash: string) => {
    const name = `remote-${n++}.yaml`;
    writeFileSync(
      join(copy, name),
      [
        "apiVersion: apiextensions.k8s.io/v1",
        "kind: CustomResourceDefinition",
        `metadata: { name: stand-in-${n}.example.com }`,
        "",
      ].join("\n"),
    );
    return `${dash}${name}`;
  });
  writeFileSync(join(copy, "kustomization.yaml"), local);
  return copy;
}

/** The base with one component, rendered by kubectl (kustomize wants relative paths here). */
function baseWith(component: string): Manifest[] {
  const dir = join(scratch, relative(COMPONENTS, component));
  mkdirSync(dir, { recursive: true });
  component = offline(component);
  writeFileSync(
    join(dir, "kustomization.yaml"),
    [
      "apiVersion: kustomize.config.k8s.io/v1beta1",
      "kind: Kustomization",
      "resources:",
      `  - ${relative(dir, join(DEPLOY, "base"))}`,
      "components:",
      `  - ${relative(dir, component)}`,
      "",
    ].join("\n"),
  );
  return kubectlKustomize(dir);
}

describe.if(KUBECTL !== null)("deploy/components (kubectl kustomize)", () => {
  test.each(componentDirs.map((d) => [relative(DEPLOY, d), d] as const))(
    "%s applies to the base and keeps its Deployment",
    (_name, dir) => {
      const objects = baseWith(dir);
      const patched = only(objects, "Deployment", "fluxhook");
      expect(patched.metadata.namespace).toBe(NAMESPACE);
      expect(patched.spec.template.spec.containers[0].image).toBe(deployment.spec.template.spec.containers[0].image);
    },
  );
});

describe.if(KUBECTL !== null)("deploy/monitoring (kubectl kustomize)", () => {
  const objects = KUBECTL ? kubectlKustomize(join(DEPLOY, "monitoring")) : [];

  test("a PodMonitor scrapes the base's pods on their metrics port", () => {
    const monitor = only(objects, "PodMonitor", "fluxhook");
    expect(monitor.spec.namespaceSelector.matchNames).toEqual([NAMESPACE]);
    expect(matches(monitor.spec.selector.matchLabels, labels)).toBe(true);
    const ports = (pod.spec.containers[0].ports as { name: string }[]).map((p) => p.name);
    for (const endpoint of monitor.spec.podMetricsEndpoints) expect(ports).toContain(endpoint.port);
  });

  test("a PrometheusRule has the alerts the issue lists", () => {
    const rule = only(objects, "PrometheusRule", "fluxhook");
    const alerts = rule.spec.groups.flatMap((g: { rules: { alert: string }[] }) => g.rules.map((r) => r.alert));
    expect(alerts).toEqual(
      expect.arrayContaining([
        "FluxhookReceiversNotReady",
        "FluxhookDeliveriesRejected",
        "FluxhookDeliveriesFailing",
        "FluxhookAnnotationFailures",
        "FluxhookNoLeader",
        "FluxhookWatchDisconnected",
      ]),
    );
  });

  test("the Grafana dashboard is a ConfigMap Grafana's sidecar loads, holding valid dashboard JSON", () => {
    const map = objects.find(
      (o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("fluxhook-grafana-dashboards"),
    );
    expect(map?.metadata.labels).toMatchObject({
      grafana_dashboard: "1",
      "kustomize.toolkit.fluxcd.io/substitute": "disabled",
    });
    const dashboard = JSON.parse(map!.data["fluxhook.json"]);
    expect(dashboard).toMatchObject({ uid: "fluxhook", title: "fluxhook" });
    const titles = dashboard.panels.map((p: { title: string }) => p.title);
    expect(titles).toEqual(
      expect.arrayContaining([
        "Deliveries by outcome",
        "Webhook latency",
        "Annotations by kind and outcome",
        "Receivers ready",
      ]),
    );
  });
});
