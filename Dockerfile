# Bedtime Stories as a web service: gunicorn serving POST /alexa (the Alexa HTTPS endpoint),
# GET /healthz and the sleep sounds at GET /sounds/ (set BEDTIME_PUBLIC_URL to its HTTPS address). Build:  docker build -t bedtime-stories .
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

# sox makes the sleep sounds at build time (MP3 needs libsox-fmt-mp3); not needed at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       sox=14.4.2+git20190427-3.5 libsox-fmt-mp3=14.4.2+git20190427-3.5 \
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
