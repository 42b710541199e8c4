# syntax=docker/dockerfile:1
# fluxhook: the Flux-compatible webhook Receiver server, compiled into one executable and run on
# distroless as a non-root user, for linux/amd64 and linux/arm64.
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t fluxhook:0.2.0 .
#
# Against a cluster from your machine (deploy/README.md, "The image"): as yourself (--user), since
# the image's user cannot read your kubeconfig (mode 0600), mounted read-only:
#   docker run --rm --user "$(id -u):$(id -g)" \
#     -v "$HOME/.kube/config:/kubeconfig:ro" -e KUBECONFIG=/kubeconfig \
#     -p 127.0.0.1:9292:9292 -p 127.0.0.1:9440:9440 \
#     ghcr.io/fluxhook/fluxhook:0.2.0 --log-encoding=console --status-updates=false
#
# No emulation: the build stage runs on the builder's own platform (BUILDPLATFORM) and Bun
# cross-compiles for TARGETARCH; the final stage only copies the executable in. The base images
# are pinned by the digest of their multi-platform index, so every platform resolves from one pin
# (re-resolve with `docker buildx imagetools inspect <image>:<tag>`; Dependabot proposes updates).
#
# test/deploy/image.test.ts runs this file's build stage without Docker (its RUN lines, with
# TARGETARCH amd64 and arm64), runs a signed delivery against the amd64 executable, and checks the
# promises below: the build runs `npm run build:server`, the final stage is non-root with three ports.
#
# The same executable is the sender for CI systems other than GitHub Actions (action/README.md):
#   docker run --rm -e FLUXHOOK_TOKEN fluxhook:0.2.0 send --address https://flux-webhook.corp.internal \
#     --receiver webapp --event push --payload '{"ref":"refs/heads/main"}'

# ---- build: one executable holding the Bun runtime and the bundled server ----
# Node 24 on Debian 12 (24.18.0 when pinned). Bun comes from package-lock.json (the npm package
# `bun`), so the image compiles with the Bun the tests ran.
FROM --platform=$BUILDPLATFORM node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS build
ARG TARGETARCH
ARG BUILDARCH
WORKDIR /src

# Dependencies first, so that a source change reuses this layer: exactly the lockfile's versions,
# and no dependency's install script runs (scripts/bun.js finds Bun without bun's postinstall).
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

COPY tsconfig.json ./
COPY scripts/ scripts/
COPY shared/ shared/
COPY server/ server/
# `fluxhook send` (the sender's CLI for other CI systems) is compiled in from the action's sources.
COPY action/ action/

# `npm run build:server` for the target: bun build --compile --target=bun-linux-<x64|arm64> →
# dist/fluxhook. For another architecture Bun fetches that platform's runtime, the npm package
# @oven/bun-linux-<arch> of the same version, from the npm registry. When the target is the
# builder's own architecture, the executable must start (flags are parsed after every module loads).
RUN case "$TARGETARCH" in \
      amd64) target=bun-linux-x64 ;; \
      arm64) target=bun-linux-arm64 ;; \
      *) echo "unsupported TARGETARCH: $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && npm run build:server -- --target="$target" \
 && if [ "$TARGETARCH" = "$BUILDARCH" ]; then ./dist/fluxhook --help > /dev/null; fi

# ---- run: glibc and nothing else ----
# The executable links only glibc (libc, libm, libpthread, libdl: `ldd dist/fluxhook`); Bun carries
# its own TLS (BoringSSL) and C++ runtime. base-nossl is distroless' smallest image with glibc
# (`static` has none, `base` adds OpenSSL, `cc` adds libstdc++; fluxhook needs neither), and it has
# CA certificates, tzdata and the nonroot user. There is no shell: debug with `kubectl debug`.
FROM gcr.io/distroless/base-nossl-debian12:nonroot@sha256:be40c00dfabd86576d92666e87e406714d5618342de1a0c213ad232de255172e

# Set by the release workflow (.github/workflows/release.yml).
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/fluxhook/fluxhook
LABEL org.opencontainers.image.title="fluxhook" \
      org.opencontainers.image.description="Flux-compatible webhook Receiver server" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.documentation="${SOURCE}/tree/main/deploy"

COPY --from=build /src/dist/fluxhook /usr/local/bin/fluxhook

# nonroot (65532) by number, so that `runAsNonRoot: true` can be verified by the kubelet.
USER 65532:65532

# receiver (--receiverAddr), health probes (--health-addr), metrics (--metrics-addr)
EXPOSE 9292 9440 8080

# As Flux's controllers: the image runs the binary, and the Deployment passes the flags, e.g.
#   --watch-all-namespaces=true --log-level=info --log-encoding=json --enable-leader-election
ENTRYPOINT ["/usr/local/bin/fluxhook"]
