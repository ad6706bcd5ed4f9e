# syntax=docker/dockerfile:1
# The Threadline image: API (`threadline serve`), relay (`threadline relay`) and consumer
# (`threadline consume`) are one image with different commands (see compose.yaml).

# --- build stage: compilers live here only ------------------------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/threadline
WORKDIR /src
COPY pyproject.toml README.md ./
# threadline/ holds the import root and links to the package folders beside it.
COPY threadline threadline
COPY ledger ledger
COPY projections projections
COPY handoff handoff
COPY agent agent
COPY access access
COPY streaming streaming
COPY channels channels
COPY app app
RUN /opt/threadline/bin/pip install --upgrade pip \
 && /opt/threadline/bin/pip install ".[postgres,kafka,voice,openai,pstn]"

# --- final stage: the virtualenv, a runtime TTS voice, a non-root user ---------------------
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/threadline threadline
COPY --from=build /opt/threadline /opt/threadline
ENV PATH=/opt/threadline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER threadline
WORKDIR /var/lib/threadline
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["threadline", "serve", "--host", "0.0.0.0", "--port", "8000"]
