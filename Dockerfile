# sitedns: one image for `serve`, `probe`, the admin commands, and the example site (examples/site).
#   docker build -t sitedns .
#   docker run --rm -p 127.0.0.1:5353:5353/udp -p 127.0.0.1:5353:5353/tcp sitedns
#     (the sample zones with their demo health endpoints, like `npm start`; docker-compose.yml
#     runs the real layout: Redis, a prober, two nameservers, three example sites)
FROM node:24-bookworm-slim AS build
WORKDIR /app
# The batched UDP addon (native/udp-batch: `--udp-path batched`, the default `auto`, and
# `--udp-threads`) is C built by node-gyp against this image's own Node headers
# (/usr/local/include/node; nothing is downloaded). Only the build stage needs the compiler.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` builds, and the sources are not copied yet.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# install.mjs never fails an install (a laptop without a compiler falls back to node:dgram), so
# the image checks that the addon was built: an image without it would refuse --udp-threads.
RUN npx tsc -p tsconfig.json \
 && node native/udp-batch/install.mjs \
 && test -f native/udp-batch/build/Release/udp_batch.node \
 && rm -rf native/udp-batch/build/Release/obj.target native/udp-batch/build/Release/.deps \
 && npm prune --omit=dev --no-audit --no-fund && rm -rf src test bench

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app /app
# Unprivileged: bind 53 with `sysctls: net.ipv4.ip_unprivileged_port_start: 0` (docker-compose.yml)
# or publish a high port. The last-known-state file goes to /tmp (SITEDNS_STATE_FILE).
USER node
ENV SITEDNS_STATE_FILE=/tmp/sitedns/last-state.json
EXPOSE 53/udp 53/tcp 5353/udp 5353/tcp 8053/tcp
# Healthy while the admin listener's /readyz says ready (zones loaded, first state known, UDP
# listening). It asks the listener `serve` opens from SITEDNS_HTTP (default 127.0.0.1:8053): set
# the listener with SITEDNS_HTTP, not --http, so that the check finds it. Containers that run no
# admin listener (`probe`, examples/site) turn it off (docker-compose.yml: `healthcheck: disable`).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["node", "docker/healthcheck.mjs"]
ENTRYPOINT ["node", "dist/cli/index.js"]
CMD ["serve", "--zones", "zones", "--listen", "0.0.0.0:5353", "--demo-backends"]
