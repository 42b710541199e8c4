/**
 * @module test/deploy/owner
 * Where fluxhook is published: the GitHub repository fluxhook/fluxhook (the action
 * `fluxhook/fluxhook@v1`), the image ghcr.io/fluxhook/fluxhook and the OCI manifests
 * ghcr.io/fluxhook/fluxhook-manifests. Every document and manifest a user pastes from names it.
 */
export const OWNER = "fluxhook";
