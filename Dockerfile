# One image for the three services; the command picks which one runs.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY core ./core
COPY router ./router
COPY subgraphs ./subgraphs
COPY unityplan ./unityplan
COPY alembic ./alembic
# Editable: the migrations (alembic/, alembic.ini) are found beside the packages, at /app.
RUN pip install -e . \
    && useradd --system --uid 10001 --home-dir /app unityplan \
    && mkdir -p /data/avatars && chown unityplan /data/avatars

USER unityplan
ENV APP_ENV=production
EXPOSE 4000 8001 8002
ENTRYPOINT ["unityplan"]
CMD ["serve", "router"]
