# The audiovault API image: `docker compose up` builds it from this folder.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY alembic.ini ./
COPY service ./service
COPY storage ./storage
COPY migrations ./migrations
RUN uv sync --frozen --no-dev

RUN useradd --system --uid 10001 audiovault && mkdir -p /data \
    && chown audiovault /data
USER audiovault
ENV AUDIOVAULT_DATA_DIR=/data AUDIOVAULT_HOST=0.0.0.0 AUDIOVAULT_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=6 CMD \
    python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health/live')"
CMD ["audiovault", "serve"]
