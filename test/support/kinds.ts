/**
 * @module test/support/kinds
 * The API versions of the Flux kinds tests create, spelled here as Flux's CRDs spell them rather
 * than read from server/, so a test fails when the server's spelling drifts from Flux's.
 */

/** source.toolkit.fluxcd.io: GitRepository, OCIRepository, HelmRepository, HelmChart, Bucket. */
export const GIT = "source.toolkit.fluxcd.io/v1";
/** image.toolkit.fluxcd.io: ImageRepository. */
export const IMAGE = "image.toolkit.fluxcd.io/v1";
/** kustomize.toolkit.fluxcd.io: Kustomization. */
export const KS = "kustomize.toolkit.fluxcd.io/v1";
/** helm.toolkit.fluxcd.io: HelmRelease. */
export const HR = "helm.toolkit.fluxcd.io/v2";
/** notification.toolkit.fluxcd.io: Receiver. */
export const RECEIVER = "notification.toolkit.fluxcd.io/v1";
