# The one-shot generation job of docker-compose.yml: `bedtime generate` with the model extra
# (torch, CPU). It writes the stories listeners asked for into the shared MariaDB store; they wait
# as pending for a person to approve in the operator's console (BEDTIME_REQUIRE_HUMAN_REVIEW).
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BEDTIME_DATA_DIR=/data

RUN groupadd --system --gid 10001 bedtime \
    && useradd --system --uid 10001 --gid bedtime --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin bedtime \
    && mkdir /data \
    && chown bedtime:bedtime /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY settings/ settings/
COPY skill/ skill/
COPY db/ db/
COPY safety/ safety/
COPY generator/ generator/
COPY migrations/ migrations/
COPY console/ console/
# Every version is pinned exactly in pyproject.toml's generator extra.
# hadolint ignore=DL3013
RUN pip install ".[generator]" \
    && rm -rf /app/build /app/*.egg-info

USER 10001:10001
CMD ["bedtime", "generate", "--plan", "requests", "--requests", "50"]
