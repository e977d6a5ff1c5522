# syntax=docker/dockerfile:1.7
# oms: `oms serve` in a slim image, as a non-root user, installed from uv.lock.
#   docker build -t oms:0.1.0 .
#   docker run --rm -p 8080:8080 -e OMS_KAFKA_BOOTSTRAP=... -e OMS_MONGO_URL=... oms:0.1.0
# The uv and Python base images are pinned by tag; pin them by digest in CI for reproducibility.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ghcr.io/astral-sh/uv:0.13.8 AS uv

# ---- web: the trading app's static build (web/dist), from the committed package-lock.json.
# Only vite build here: the type check and the tests run in `make test`, not in the image.
FROM ${NODE_IMAGE} AS web
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    npm_config_audit=false \
    npm_config_fund=false
WORKDIR /web
# Dependencies first, so that this layer is rebuilt only when the lock file changes.
COPY web/package.json web/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci
COPY web/index.html web/vite.config.ts web/tsconfig.json ./
COPY web/public ./public
COPY web/src ./src
RUN npx vite build

# ---- build: resolve nothing, install exactly the lock file's runtime packages into /app/.venv
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# --frozen: install the lock file as it is, fail if pyproject.toml disagrees with it.
# --no-default-groups: none of the test, dev or infra groups (pyproject makes them default).
# Dependencies first, so that this layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-default-groups --no-install-project --no-editable
COPY README.md ./
COPY oms ./oms
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-default-groups --no-editable

# ---- runtime: the interpreter, the venv, the CA bundle DocumentDB needs; no build tools
FROM ${PYTHON_IMAGE} AS runtime
ARG OMS_UID=10001
RUN groupadd --system --gid "${OMS_UID}" oms \
    && useradd --system --uid "${OMS_UID}" --gid oms --home-dir /var/lib/oms \
        --shell /usr/sbin/nologin oms \
    && install -d -o oms -g oms -m 0750 /var/lib/oms
# DocumentDB's TLS certificates chain to the Amazon RDS CA, which is not a public one;
# OMS_MONGO_URL names this file (tlsCAFile=/etc/oms/rds-global-bundle.pem)
ADD --chmod=0644 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem \
    /etc/oms/rds-global-bundle.pem
COPY --from=build /app/.venv /app/.venv
# oms serve serves the web app at / from here (hashed assets immutable, index.html no-cache)
COPY --from=web /web/dist /app/web
# Logs as one JSON object per line (ts, level, logger, msg, replica, request_id, ...): what a
# log pipeline (CloudWatch, Loki) parses; a terminal run keeps the text format.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMS_HTTP_HOST=0.0.0.0 \
    OMS_HTTP_PORT=8080 \
    OMS_LOG_FORMAT=json \
    OMS_WEB_DIST_DIR=/app/web
# faust keeps its data directory under the working directory: make it the user's own
WORKDIR /var/lib/oms
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('OMS_HTTP_PORT', '8080') + '/health', timeout=2)"]
ENTRYPOINT ["oms"]
CMD ["serve"]
