# Bedtime Stories as a web service: gunicorn serving POST /alexa (the Alexa HTTPS endpoint),
# GET /healthz and the sleep sounds at GET /sounds/ (BEDTIME_PUBLIC_URL: its HTTPS address).
# Build:  docker build -t bedtime-stories .
# With the operator's console, MariaDB and a generation job: docker-compose.yml (README).
# Run:    docker run -p 8080:8080 -e BEDTIME_DATABASE_URL=mysql+pymysql://user:pw@db/bedtime \
#                    -e BEDTIME_SKILL_ID=amzn1.ask.skill.... bedtime-stories
# Only the skill and the story store are installed (no torch: the generator extra is left out).
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BEDTIME_DATA_DIR=/data \
    BEDTIME_SOUNDS_DIR=/app/sounds \
    PORT=8080

# espeak-ng reads stories aloud for the operator's console ("listen"); sox makes the sleep sounds
# at build time (MP3 needs libsox-fmt-mp3). Not pinned: Debian's security updates replace
# bookworm's versions in place; the base image above is pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng sox libsox-fmt-mp3 \
    && rm -rf /var/lib/apt/lists/*

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
RUN pip install . \
    && rm -rf /app/build /app/*.egg-info \
    && bedtime sounds build

COPY --chmod=0755 docker/boot.sh /usr/local/bin/bedtime-boot

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]

CMD ["bedtime-boot"]
