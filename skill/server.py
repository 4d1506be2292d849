"""gunicorn for ``bedtime serve``/``run`` and the Docker image: one configuration for both.

Threaded workers (gthread): a request waiting on the database or a live story holds a thread,
not the whole process. Sizing: BEDTIME_WEB_WORKERS processes (default: one per CPU, at most 4)
with BEDTIME_WEB_THREADS threads each (default 8). ``docker/boot.sh`` runs
``gunicorn -c python:skill.gunicorn_conf``, which takes the same options from here.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from settings import Settings

#: A worker silent this long is restarted; Alexa gives up after 8 s anyway.
WORKER_TIMEOUT_SECONDS = 30
#: Bounded header sizes: the body limit lives in the app (413), these guard the request line.
LIMIT_REQUEST_LINE = 4094
LIMIT_REQUEST_FIELDS = 50


def worker_count(configured: int) -> int:
    """Configured, else one per CPU (at most 4: the database is the bottleneck past that)."""
    if configured > 0:
        return configured
    return max(1, min(4, os.cpu_count() or 1))


def start_without_gc(_server: Any = None, _worker: Any = None) -> None:
    """gunicorn's post_fork: no garbage collection while a worker imports and builds the app.

    Start-up allocates hundreds of thousands of long-lived objects (modules, ORM mappers, SDK
    models); the collector's full passes over them are pure cost (~40 ms of a cold start).
    """
    gc.disable()


def freeze_start_up(_worker: Any = None) -> None:
    """gunicorn's post_worker_init: move what start-up built out of the collector's sight for
    good (``gc.freeze``), then collect as usual."""
    gc.freeze()
    gc.enable()


def gunicorn_options(settings: Settings, bind: str) -> dict[str, Any]:
    """The gunicorn settings both entry points use."""
    return {
        "bind": [bind],
        "worker_class": "gthread",
        "workers": worker_count(settings.web_workers),
        "threads": max(1, settings.web_threads),
        "timeout": WORKER_TIMEOUT_SECONDS,
        "graceful_timeout": 10,
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_fields": LIMIT_REQUEST_FIELDS,
        "control_socket_disable": True,  # gunicorn 27's socket lives under $HOME
        "accesslog": "-",
        "post_fork": start_without_gc,
        "post_worker_init": freeze_start_up,
    }


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the skill under gunicorn in the foreground (blocks until stopped)."""
    from gunicorn.app.base import BaseApplication

    from skill.webapp import create_app

    class SkillApplication(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in gunicorn_options(settings, f"{host}:{port}").items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app(settings)

    SkillApplication().run()
