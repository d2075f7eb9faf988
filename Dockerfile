# syntax=docker/dockerfile:1
# The production image: build once, then a runtime with production dependencies only, as a non-root
# user, checked by its own /ready. `docker compose up --build` uses it (docker-compose.yml).

# ---- build: compile TypeScript with the dev dependencies, nothing of this stage ships.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json knexfile.ts ./
COPY src ./src
COPY migrations ./migrations
RUN npm run build

# ---- runtime: production dependencies, the compiled service and the few static files it serves.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    # npm is not used at run time; keep its update check and cache out of the image.
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# Static pages (the phone simulator exists only in emulator mode; the operator console behind the
# ops token). The service finds them next to package.json.
COPY simulator ./simulator
COPY console ./console
# Safaricom's public B2C certificates, chosen by MPESA_ENVIRONMENT (MPESA_B2C_CERT_PATH overrides).
COPY certs ./certs
# Runs as the image's unprivileged `node` user; only DATA_DIR (the embedded Postgres, unused when
# DATABASE_URL is set) is writable.
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 3000
# /ready: the database and the queue answer and the process is not shutting down.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/ready').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Not `npm start` (it would build first): the compiled entry point, signals straight to node.
CMD ["node", "dist/src/start.js"]
