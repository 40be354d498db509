# OVP Hub service image. Keys are mounted as a secret, never baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY contracts ./contracts
COPY validators ./validators
COPY publishers ./publishers
RUN pip install --no-deps . && useradd --system --uid 10001 ovphub && mkdir -p /data \
    && chown ovphub /data
USER ovphub
ENV HUB_DATA_DIR=/data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health')"
CMD ["ovphub", "serve", "--host", "0.0.0.0", "--port", "8000"]
