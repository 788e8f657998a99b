# One image for the API (`trigger-api serve`, the default command) and the worker
# (`trigger-worker`): only the command differs (docker-compose.yml, infra/).
ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---- build: resolve the locked runtime dependencies into /app/.venv ------------------------------
FROM python:${PYTHON_VERSION}-slim AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-editable --no-install-project --python python3
COPY README.md ./
COPY service ./service
COPY worker ./worker
# --no-editable: the project is installed into the venv, so /src is not needed at run time.
RUN uv sync --frozen --no-dev --no-editable --python python3

# ---- runtime ------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app \
 && mkdir -p /var/lib/trigger-api /run/trigger \
 && chown app:app /var/lib/trigger-api /run/trigger
# /var/lib/trigger-api: the SQLite file when run without DynamoDB; /run/trigger: where the
# compose init service leaves the worker's keys (a named volume takes this ownership).
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TRIGGER_DB=/var/lib/trigger-api/trigger-api.db
USER app
WORKDIR /home/app
EXPOSE 8000
# slim images have no curl; the worker container overrides or disables this check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
# Exec form: the Python process is PID 1 and receives SIGTERM itself (uvicorn and the worker
# both drain on it).
CMD ["trigger-api", "serve", "--host", "0.0.0.0", "--port", "8000"]
