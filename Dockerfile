# syntax=docker/dockerfile:1
#
# The reconciler daemon: `reconciler run --config /etc/reconciler/policy.yaml`.
#
#   docker build -t reconciler:0.1.0 .
#   docker run --rm -p 9108:9108 -v "$PWD/policy.yaml:/etc/reconciler/policy.yaml:ro" \
#       -e DATABASE_URL -e LEDGER_URL reconciler:0.1.0
#
# The policy must listen on 0.0.0.0:9108 (server.listen) to be reachable from outside the
# container. deploy/README.md has the Kubernetes example and the checks (hadolint).
#
# python:3.11-slim-trixie is python:3.11-slim named with its Debian release (13, trixie), so
# that the apt pins below keep matching: trixie's postgresql-client is PostgreSQL 17.

# -- builder: the project's wheel and the wheels of its dependencies --------------------------
FROM python:3.11-slim-trixie AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src

# Dependencies first, exactly as uv.lock pins them (versions and hashes): this layer is
# rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN pip install uv==0.13.9 \
    && uv export --frozen --no-emit-project --format requirements-txt --output-file requirements.txt \
    && pip wheel --require-hashes --wheel-dir /wheels --requirement requirements.txt

# Then the project itself.
COPY README.md ./
COPY reconciler ./reconciler
RUN pip wheel --no-deps --wheel-dir /wheels .

# -- runtime ----------------------------------------------------------------------------------
FROM python:3.11-slim-trixie

LABEL org.opencontainers.image.title="reconciler" \
      org.opencontainers.image.description="Keeps application databases at a declared schema revision, backs them up, syncs users from an identity provider." \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    RECONCILER_HEALTHCHECK_URL=http://127.0.0.1:9108/healthz

# postgresql-client: pg_dump, pg_restore and psql for the pg_dump backup driver (pinned to its
# major version: a server newer than the client cannot be dumped). git: for `source.git`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        git=1:2.47.* \
        postgresql-client=17+* \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 reconciler \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/reconciler --shell /usr/sbin/nologin reconciler \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/reconciler \
    && install -d -m 0755 /etc/reconciler

# Every wheel comes from the builder; nothing is fetched here.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/*.whl \
    && reconciler --help >/dev/null

# Relative paths the daemon writes to (a git source's checkout) land here.
WORKDIR /var/lib/reconciler
USER 10001:10001

EXPOSE 9108

# No curl in slim images: Python's standard library, bypassing any HTTP proxy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.build_opener(urllib.request.ProxyHandler({})).open(os.environ['RECONCILER_HEALTHCHECK_URL'], timeout=4)"]

ENTRYPOINT ["reconciler", "run"]
CMD ["--config", "/etc/reconciler/policy.yaml"]
