# watcher: `docker build -t watcher .` then see compose.yaml (or README, "Docker").
# Two stages: the build stage installs watcher into a virtualenv; the runtime stage copies
# only that virtualenv onto a clean slim image and runs it as an unprivileged user.
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/watcher
WORKDIR /src
COPY pyproject.toml README.md ./
COPY watcher ./watcher
RUN /opt/watcher/bin/pip install . \
 && /opt/watcher/bin/watcher --version

FROM python:${PYTHON_VERSION}-slim
LABEL org.opencontainers.image.title="watcher" \
      org.opencontainers.image.description="Watches privacy-policy pages and alerts on material changes"
# Settings from the environment: the config is mounted read-only at /config, the database
# and the Markdown snapshots live in the /data volume. Secrets (apprise URLs, SMTP
# passwords) come from an env file and are read by ${VAR} in sites.toml.
ENV PATH="/opt/watcher/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WATCHER_CONFIG=/config/sites.toml \
    WATCHER_DATABASE=/data/watcher.db \
    WATCHER_SNAPSHOTS=/data/snapshots \
    WATCHER_LOG_FORMAT=json
RUN groupadd --system --gid 10001 watcher \
 && useradd --system --uid 10001 --gid watcher --home-dir /data --no-create-home --shell /usr/sbin/nologin watcher \
 && mkdir -p /data /config \
 && chown watcher:watcher /data
COPY --from=build /opt/watcher /opt/watcher
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# Unhealthy when the scheduler's heartbeat is stale or the last 3 cycles all failed.
HEALTHCHECK --interval=60s --timeout=20s --start-period=30s --retries=3 CMD ["watcher", "health"]
# SIGTERM: in-flight checks get 8 s (`--grace`) to finish, state is flushed, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["watcher"]
CMD ["run"]
