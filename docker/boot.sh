#!/bin/sh
# Container entry point: migrate the database, load the starter stories, then serve.
# The database may still be starting (compose, k8s), so each step is retried a bounded number of
# times: BEDTIME_BOOT_RETRIES attempts (default 10), BEDTIME_BOOT_RETRY_DELAY seconds apart (3).
set -eu

retries="${BEDTIME_BOOT_RETRIES:-10}"
delay="${BEDTIME_BOOT_RETRY_DELAY:-3}"

with_retries() {
    attempt=1
    until "$@"; do
        if [ "$attempt" -ge "$retries" ]; then
            echo "boot: '$*' failed $attempt times; giving up" >&2
            exit 1
        fi
        echo "boot: '$*' failed (attempt $attempt of $retries); retrying in ${delay}s" >&2
        attempt=$((attempt + 1))
        sleep "$delay"
    done
}

with_retries bedtime db upgrade
with_retries bedtime stories import-starter

# skill.gunicorn_conf: threaded workers sized for the machine, the same as `bedtime serve`
# (BEDTIME_WEB_WORKERS, BEDTIME_WEB_THREADS). --no-control-socket: gunicorn 27's control socket
# lives under $HOME, which the image has not.
exec gunicorn -b "0.0.0.0:${PORT:-8080}" -c python:skill.gunicorn_conf --no-control-socket \
    --access-logfile - 'skill.webapp:create_app()'
