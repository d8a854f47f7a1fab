# syntax=docker/dockerfile:1
# The scim-reconciler service image: `serve` as an unprivileged user, SQLite in
# the /data volume unless SCIM_RECONCILER_DATABASE_URL names PostgreSQL, JSON
# logs, settings from SCIM_RECONCILER_* variables, from files in /run/secrets
# and from a TOML file named by SCIM_RECONCILER_CONFIG_FILE.
# scripts/image-steps runs the same steps without Docker; change both together.

ARG PYTHON_IMAGE=python:3.11-slim

# Build stage: the wheel (hatchling, in pip's isolated build) and a virtual
# environment with the wheel and its dependencies, copied whole below.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip wheel --no-deps --wheel-dir /dist . \
    && python -m venv /opt/scim-reconciler \
    && /opt/scim-reconciler/bin/pip install /dist/scim_reconciler-*.whl

# Final stage: the same Python base, without the build stage's sources, wheel
# cache or build backend.
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/scim-reconciler/bin:$PATH \
    SCIM_RECONCILER_HOST=0.0.0.0 \
    SCIM_RECONCILER_PORT=8000 \
    SCIM_RECONCILER_DATABASE_URL=sqlite:////data/scim-reconciler.db \
    SCIM_RECONCILER_LOG_FORMAT=json
RUN groupadd --system --gid 10001 scim \
    && useradd --system --uid 10001 --gid scim --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin scim \
    && mkdir /data \
    && chown scim:scim /data
COPY --from=build /opt/scim-reconciler /opt/scim-reconciler
VOLUME /data
WORKDIR /data
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
EXPOSE 8000
# The slim image has no curl. A port set in a TOML file instead of the
# environment is not seen here; set SCIM_RECONCILER_PORT then.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SCIM_RECONCILER_PORT', '8000') + '/healthz', timeout=4)"
ENTRYPOINT ["scim-reconciler"]
CMD ["serve"]
