/**
 * deploy/components/crd: Flux's Receiver CRD kept in the repository, so that a private or
 * air-gapped install renders without reaching github.com. The file is the one notification-controller
 * publishes with the pinned release, checked against the checksum its kustomization states; the
 * URL form (components/crd-from-release) names the same version. The CRD's Receiver types and
 * target kinds are the ones fluxhook serves.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parse as parseYaml } from "yaml";
import { RECEIVER_TYPES } from "../../shared";
import { BUILTIN_KINDS } from "../kube";
import { DEPLOY, loadKustomization, only, parseYamlDocuments, type Manifest } from "./kustomize";

const VENDORED = join(DEPLOY, "components", "crd");
const FROM_RELEASE = join(DEPLOY, "components", "crd-from-release");
const FILE = "notification-controller.crds.yaml";
const kustomizationText = readFileSync(join(VENDORED, "kustomization.yaml"), "utf8");
const pinned = {
  version: /^#\s+version:\s+(v\d+\.\d+\.\d+)$/m.exec(kustomizationText)?.[1],
  sha256: /^#\s+sha256:\s+([0-9a-f]{64})$/m.exec(kustomizationText)?.[1],
};
const releaseUrl = (version: string) =>
  `https://github.com/fluxcd/notification-controller/releases/download/${version}/${FILE}`;
const bytes = readFileSync(join(VENDORED, FILE));
const crds = parseYamlDocuments(bytes.toString("utf8"), FILE) as Manifest[];
const receiverCrd = only(crds, "CustomResourceDefinition", "receivers.notification.toolkit.fluxcd.io");

describe("deploy/components/crd (vendored)", () => {
  test("states the release it was taken from and the file's sha256", () => {
    expect(pinned.version).toMatch(/^v\d+\.\d+\.\d+$/);
    expect(pinned.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  test("holds exactly that file: its sha256 is the one pinned", () => {
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(pinned.sha256!);
  });

  test("is a Component with that one file, and nothing else in its folder", () => {
    expect(parseYaml(kustomizationText)).toEqual({
      apiVersion: "kustomize.config.k8s.io/v1alpha1",
      kind: "Component",
      resources: [FILE],
    });
    expect(readdirSync(VENDORED).sort()).toEqual(["kustomization.yaml", FILE]);
  });

  test("the release's file: Flux's three notification CRDs, each served at its storage version", () => {
    expect(crds.map((c) => c.metadata.name).sort()).toEqual([
      "alerts.notification.toolkit.fluxcd.io",
      "providers.notification.toolkit.fluxcd.io",
      "receivers.notification.toolkit.fluxcd.io",
    ]);
    const versions = receiverCrd.spec.versions as { name: string; served: boolean; storage: boolean }[];
    expect(versions.find((v) => v.storage)).toMatchObject({ name: "v1", served: true });
  });

  test("its Receiver types and target kinds are the ones fluxhook serves and the test API server knows", () => {
    const schema = receiverCrd.spec.versions.find((v: { name: string }) => v.name === "v1").schema.openAPIV3Schema
      .properties.spec.properties;
    expect([...schema.type.enum].sort()).toEqual([...RECEIVER_TYPES].sort());
    const kinds = BUILTIN_KINDS.filter((k) => k.group.endsWith(".fluxcd.io") && k.kind !== "Receiver").map(
      (k) => k.kind,
    );
    expect([...schema.resources.items.properties.kind.enum].sort()).toEqual(kinds.sort());
  });
});

describe("deploy/components/crd-from-release (by URL)", () => {
  const component = parseYaml(readFileSync(join(FROM_RELEASE, "kustomization.yaml"), "utf8"));

  test("takes the same release's file by URL", () => {
    expect(component).toEqual({
      apiVersion: "kustomize.config.k8s.io/v1alpha1",
      kind: "Component",
      resources: [releaseUrl(pinned.version!)],
    });
    expect(readdirSync(FROM_RELEASE)).toEqual(["kustomization.yaml"]);
  });

  test("composes with the base as the vendored one does (rendered with the URL answered by the vendored file)", () => {
    const overlays = mkdtempSync(join(tmpdir(), "fluxhook-crd-overlay-"));
    try {
      const render = (componentDir: string) => {
        const dir = mkdtempSync(join(overlays, "o-"));
        writeFileSync(
          join(dir, "kustomization.yaml"),
          `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [${relative(dir, join(DEPLOY, "base"))}]\ncomponents: [${relative(dir, componentDir)}]\n`,
        );
        const fetched: string[] = [];
        const objects = loadKustomization(dir, (url) => {
          fetched.push(url);
          return bytes.toString("utf8");
        });
        return { objects, fetched };
      };
      const byUrl = render(FROM_RELEASE);
      const vendored = render(VENDORED);
      expect(byUrl.fetched).toEqual([releaseUrl(pinned.version!)]);
      expect(vendored.fetched).toEqual([]);
      expect(byUrl.objects).toEqual(vendored.objects);
      expect(vendored.objects.filter((o) => o.kind !== "CustomResourceDefinition")).toEqual(
        loadKustomization(join(DEPLOY, "base")),
      );
    } finally {
      rmSync(overlays, { recursive: true, force: true });
    }
  });

  test("deploy/README.md names the pinned version, the URL and the checksum", () => {
    const readme = readFileSync(join(DEPLOY, "README.md"), "utf8");
    for (const text of [releaseUrl(pinned.version!), pinned.sha256!]) expect(readme).toContain(text);
  });
});
