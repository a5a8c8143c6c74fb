# Production image of the Porte-à-porte service. The database is a separate PostGIS
# (docker-compose.yml, or a managed server): set DATABASE_URL and OWNER_DATABASE_URL.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PORTE_MODE=production
RUN useradd --system --create-home --home-dir /srv/porte porte
WORKDIR /srv/porte

COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install .

COPY alembic.ini ./
COPY alembic ./alembic
COPY static ./static
COPY data ./data
COPY deploy/entrypoint.sh /usr/local/bin/porte-entrypoint

USER porte
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"
ENTRYPOINT ["porte-entrypoint"]
CMD ["porte", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
