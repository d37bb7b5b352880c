# Image for the homeward worker, API and migrations (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY workflows workflows
COPY activities activities
COPY store store
COPY api api
COPY workers workers
COPY bench bench
RUN pip install --no-cache-dir .
USER nobody
