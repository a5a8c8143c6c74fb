# Production image of the Porte-à-porte service. The database is a separate PostGIS
# (docker-compose.yml, or a managed server): set DATABASE_URL and OWNER_DATABASE_URL.
#
# Any Debian bookworm base works: `debian:bookworm-slim` from a registry, or, where no registry is
# reachable, one made with debootstrap (deploy/build-image.sh builds it and then this file with
# podman). Python is Debian's own 3.11; the project is installed as a package (not editable).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# Optional: a CA bundle lent to pip at build time (a build host behind a TLS-inspecting proxy).
ARG PIP_CERT=

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PORTE_MODE=production \
    DEBIAN_FRONTEND=noninteractive PATH=/opt/porte/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /srv/porte porte

WORKDIR /tmp/porte-src
COPY pyproject.toml README.md ./
COPY app ./app
COPY static ./static
COPY alembic ./alembic
COPY data ./data
RUN python3 -m venv /opt/porte \
    && /opt/porte/bin/pip install -q ${PIP_CERT:+--cert "$PIP_CERT"} . \
    && rm -rf /tmp/porte-src
COPY deploy/entrypoint.sh /usr/local/bin/porte-entrypoint

WORKDIR /srv/porte
USER porte
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python3 -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"
ENTRYPOINT ["porte-entrypoint"]
CMD ["porte", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
