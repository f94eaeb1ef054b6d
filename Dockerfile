# syntax=docker/dockerfile:1
# reachroute: one image for the API (CMD below) and the worker (command: node dist/src/worker.js).
#   docker build -t reachroute .
#   docker run -p 3000:3000 -e AUTH_HS256_SECRET=<32+ characters> reachroute
# NODE_ENV=production: the service refuses to start without one of AUTH_JWKS_URL, AUTH_PUBLIC_KEY or
# AUTH_HS256_SECRET. Without REDIS_URL it runs on the in-memory store (nothing survives a restart).
# test/deploy.test.ts replays these stages outside Docker: keep COPY sources repository paths and RUN lines
# to the commands it knows (npm ci, npm run build, apt-get, rm, npm cache clean).

ARG NODE_IMAGE=node:20-bookworm-slim

# 1. Build: every dependency, then TypeScript to dist/.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci's postinstall applies patches/ (patch-package) to the installed dependencies.
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY routes ./routes
COPY plugins ./plugins
COPY scripts ./scripts
RUN npm run build && rm -f dist/.tsbuildinfo

# 2. Production dependencies only.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# 3. Runtime: node, tini, the production node_modules and dist/. package.json stays: its "type": "module"
# makes dist/**/*.js ES modules. Files belong to root and are read-only for the node user that runs them.
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    NODE_OPTIONS="--enable-source-maps --max-semi-space-size=8"
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
# node's own fetch: no curl in the image. The worker has no HTTP port: compose disables this check for it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# tini as PID 1: forwards SIGTERM to node (graceful shutdown) and reaps zombies.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/server.js"]
