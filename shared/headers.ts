/**
 * @module shared/headers
 * Header names, event names and receiver types of the wire contract between a sender (GitHub,
 * the fluxhook action, a registry) and a Flux-compatible receiver. HTTP header names are
 * case-insensitive; they are written here as the senders document them.
 */

export const Header = {
  contentType: "Content-Type",
  userAgent: "User-Agent",
  authorization: "Authorization",
  // GitHub (https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers)
  githubEvent: "X-GitHub-Event",
  githubDelivery: "X-GitHub-Delivery",
  githubHookId: "X-GitHub-Hook-ID",
  githubTargetType: "X-GitHub-Hook-Installation-Target-Type",
  githubTargetId: "X-GitHub-Hook-Installation-Target-ID",
  githubEnterpriseHost: "X-GitHub-Enterprise-Host",
  githubEnterpriseVersion: "X-GitHub-Enterprise-Version",
  hubSignature256: "X-Hub-Signature-256",
  hubSignature: "X-Hub-Signature",
  // Flux's generic-hmac receiver
  signature: "X-Signature",
  // GitLab
  gitlabToken: "X-Gitlab-Token",
  gitlabEvent: "X-Gitlab-Event",
  gitlabEventUuid: "X-Gitlab-Event-UUID",
  // Bitbucket Server
  bitbucketEvent: "X-Event-Key",
  bitbucketRequestUuid: "X-Request-UUID",
  // Sonatype Nexus
  nexusSignature: "X-Nexus-Webhook-Signature",
  // CloudEvents (CDEvents)
  ceType: "Ce-Type",
  ceId: "Ce-Id",
} as const;

/** GitHub webhook event names that matter to Flux users. */
export const GitHubEvent = {
  push: "push",
  ping: "ping",
  package: "package",
  registryPackage: "registry_package",
  release: "release",
} as const;

/** Every receiver type of `notification.toolkit.fluxcd.io/v1` Receiver, as in the CRD enum. */
export const RECEIVER_TYPES = [
  "generic",
  "generic-hmac",
  "generic-oidc",
  "github",
  "gitlab",
  "bitbucket",
  "harbor",
  "dockerhub",
  "quay",
  "gcr",
  "nexus",
  "acr",
  "cdevents",
] as const;
export type ReceiverType = (typeof RECEIVER_TYPES)[number];

export const ContentType = {
  json: "application/json",
  form: "application/x-www-form-urlencoded",
} as const;
