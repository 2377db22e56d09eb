# syncer daemon image. Build: docker build -t syncer .
# Run:   docker run --rm -e SYNCER_CONFIG=/config/syncer.yaml -v $PWD/myconfig:/config \
#          -e SYNCER_STATE_URL=postgresql+psycopg://syncer@db/syncer syncer
FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

RUN groupadd --system syncer && useradd --system --gid syncer --home-dir /app syncer
WORKDIR /app

COPY pyproject.toml README.md ./
COPY syncer ./syncer
COPY connectors ./connectors
COPY config ./config
RUN pip install --no-cache-dir '.[postgres]' \
    && mkdir -p /app/.syncer && chown -R syncer:syncer /app

USER syncer
ENV SYNCER_CONFIG=/app/config/syncer.example.yaml
# The daemon. For other commands: docker run --entrypoint syncer syncer check-config
ENTRYPOINT ["syncer", "run"]
