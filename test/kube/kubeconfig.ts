/**
 * @module kubeconfig
 * Client configuration for the test server: a client-node `KubeConfig` for in-process tests and a
 * kubeconfig file for subprocesses (`KUBECONFIG=…`). client-node refuses an `http://` server
 * unless the cluster has `skipTLSVerify: true` ("HTTP protocol is not allowed when
 * skipTLSVerify is not set or false"), so both set it.
 */
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";

/** The cluster, user and context name used in both forms. */
export const KUBECONFIG_NAME = "fluxhook-test";

/** A KubeConfig with one cluster at `server`, a user with no credentials, and a context defaulting to `namespace`. */
export function makeKubeConfig(server: string, namespace = "default"): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: KUBECONFIG_NAME, server, skipTLSVerify: true }],
    users: [{ name: KUBECONFIG_NAME }],
    contexts: [{ name: KUBECONFIG_NAME, cluster: KUBECONFIG_NAME, user: KUBECONFIG_NAME, namespace }],
    currentContext: KUBECONFIG_NAME,
  });
  return kc;
}

/** The same configuration as kubeconfig YAML (hand-written: it is tiny and has no user input but the URL). */
export function kubeconfigYaml(server: string, namespace = "default"): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    `- name: ${KUBECONFIG_NAME}`,
    "  cluster:",
    `    server: ${JSON.stringify(server)}`,
    "    insecure-skip-tls-verify: true",
    "users:",
    `- name: ${KUBECONFIG_NAME}`,
    "  user: {}",
    "contexts:",
    `- name: ${KUBECONFIG_NAME}`,
    "  context:",
    `    cluster: ${KUBECONFIG_NAME}`,
    `    user: ${KUBECONFIG_NAME}`,
    `    namespace: ${JSON.stringify(namespace)}`,
    `current-context: ${KUBECONFIG_NAME}`,
    "",
  ].join("\n");
}

/** Write `kubeconfig` into `dir` (default: a new temporary directory) and return its path. */
export function writeKubeconfigFile(server: string, dir?: string, namespace = "default"): string {
  const directory = dir ?? mkdtempSync(join(tmpdir(), "fluxhook-kube-"));
  const path = join(directory, "kubeconfig");
  writeFileSync(path, kubeconfigYaml(server, namespace), { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}
