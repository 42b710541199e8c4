/**
 * @module server/kube/resource-version
 * Ordering of resourceVersions. Kubernetes documents them as opaque, but an etcd-backed API
 * server issues increasing integers (etcd revisions, global to the cluster), so two versions of
 * one object compare as numbers. Anything else is compared for equality only, which at worst
 * costs a redundant write or read.
 */

const NUMERIC = /^\d{1,30}$/;

/** True when `a` is known to be older than `b`. */
export function olderVersion(a: string, b: string): boolean {
  if (!NUMERIC.test(a) || !NUMERIC.test(b)) return false;
  return a.length !== b.length ? a.length < b.length : a < b;
}

/** True when `a` is the same version as `b` or known to be newer. */
export function atLeastVersion(a: string, b: string): boolean {
  return a === b || olderVersion(b, a);
}
