# fluxhook: the Flux-compatible webhook Receiver server, compiled into one executable and run on
# distroless as a non-root user.
#
#   docker build -t fluxhook:0.1.0 .
#   docker run --rm -p 9292:9292 -p 9440:9440 -v "$HOME/.kube/config:/kubeconfig:ro" \
#     -e KUBECONFIG=/kubeconfig fluxhook:0.1.0 --log-encoding=console
#
# test/deploy/image.test.ts builds the same executable with `npm run build:server` and runs the
# end-to-end delivery against it, and checks this file: the build stage must run that script, and
# the final stage must stay non-root with the three ports below.

# ---- build: one executable holding the Bun runtime and the bundled server ----
FROM oven/bun:1.4.5 AS build
WORKDIR /src

# Dependencies first, so that a source change reuses this layer. Bun migrates package-lock.json
# (the lockfile `npm ci` installs from) and --frozen-lockfile refuses any change to it, so the
# versions are the ones CI tests. Only runtime dependencies are bundled; the dev tools are not
# needed here (the image already has bun 1.4.5, the version package.json pins).
COPY package.json package-lock.json ./
RUN bun install --frozen-lockfile --production --ignore-scripts

COPY tsconfig.json ./
COPY shared/ shared/
COPY server/ server/

# `npm run build:server`: bun build --compile → dist/fluxhook. The second command proves the
# executable starts (flags are parsed after every module is loaded).
RUN bun run build:server \
 && ./dist/fluxhook --help > /dev/null

# ---- run: glibc and nothing else ----
# The executable links only glibc (libc, libm, libpthread, libdl: `ldd dist/fluxhook`); Bun carries
# its own TLS (BoringSSL) and C++ runtime. base-nossl is distroless' smallest image with glibc
# (`static` has none, `base` adds OpenSSL, `cc` adds libstdc++; fluxhook needs neither), and it has
# CA certificates, tzdata and the nonroot user. There is no shell: debug with `kubectl debug`.
FROM gcr.io/distroless/base-nossl-debian12:nonroot

LABEL org.opencontainers.image.title="fluxhook" \
      org.opencontainers.image.description="Flux-compatible webhook Receiver server" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=build /src/dist/fluxhook /usr/local/bin/fluxhook

# nonroot (65532) by number, so that `runAsNonRoot: true` can be verified by the kubelet.
USER 65532:65532

# receiver (--receiverAddr), health probes (--health-addr), metrics (--metrics-addr)
EXPOSE 9292 9440 8080

# As Flux's controllers: the image runs the binary, and the Deployment passes the flags, e.g.
#   --watch-all-namespaces=true --log-level=info --log-encoding=json --enable-leader-election
ENTRYPOINT ["/usr/local/bin/fluxhook"]
