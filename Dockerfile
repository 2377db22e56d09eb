# syncer daemon image. Build: docker build -t syncer .
# Run the daemon with your config (health.host: 0.0.0.0 to reach /healthz from outside):
#   docker run --rm -p 8787:8787 -v $PWD/myconfig:/config -e SYNCER_CONFIG=/config/syncer.yaml \
#     -e SYNCER_STATE_URL=postgresql+psycopg://syncer@db/syncer syncer
# Any other command:  docker run --rm syncer demo    docker run --rm syncer check-config
# Scaled out (PostgreSQL, `syncer dispatch`, `syncer worker`): compose.yaml builds this image.
# The web admin (docs/web.md; accounts: docker run ... syncer user add NAME --role admin):
#   docker run --rm -p 127.0.0.1:8788:8788 -e SYNCER_WEB_SECRET=... ... syncer web --host 0.0.0.0 \
#     --allow-remote    (inside the container only; publish it to loopback, TLS in front)
FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system syncer && useradd --system --gid syncer --home-dir /app syncer

# Dependencies in their own layer, read from pyproject.toml alone: a code change reuses it;
# only a change of pyproject.toml installs them again.
COPY pyproject.toml /src/
RUN python -c "import tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres']))" > /tmp/deps.txt \
    && pip install -r /tmp/deps.txt && rm /tmp/deps.txt

# The code, installed as a wheel would be (not editable): config/ ships inside it as
# package data (syncer/examples), so nothing is read from the source tree afterwards.
COPY README.md /src/
COPY config /src/config
COPY connectors /src/connectors
COPY syncer /src/syncer
RUN pip install --no-deps /src && rm -rf /src

# The image's own config: the shipped example with /healthz and /metrics on every interface
# (EXPOSE below). Mount yours and set SYNCER_CONFIG to replace it.
WORKDIR /app
RUN python -c "import yaml; from syncer.domain.config import EXAMPLE_CONFIG as e; \
d = yaml.safe_load(e.read_text()); d['model'] = str(e.with_name('model.example.yaml')); \
d.setdefault('health', {})['host'] = '0.0.0.0'; \
open('/app/syncer.yaml', 'w').write('# The image default: config/syncer.example.yaml, ' \
'health on 0.0.0.0\n' + yaml.safe_dump(d, sort_keys=False))" \
    && mkdir -p /app/.syncer && chown -R syncer:syncer /app

USER syncer
EXPOSE 8787 8788
# /healthz answers 200 once the state answers and the last run did not fail (syncer/ops/health.py).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8787/healthz', timeout=4)"]
# `docker run IMAGE` runs the daemon; `docker run IMAGE demo` (or any command) runs that.
ENTRYPOINT ["syncer"]
CMD ["run"]
