"""``gunicorn -c python:skill.gunicorn_conf``: the Docker image runs what ``bedtime serve`` runs.

gunicorn reads this module's names as its settings; they come from :func:`skill.server.
gunicorn_options`, so both entry points size and limit workers the same way.
"""

from __future__ import annotations

import os

from settings import Settings
from skill.server import gunicorn_options

globals().update(gunicorn_options(Settings.from_env(), f"0.0.0.0:{os.environ.get('PORT', '8080')}"))
