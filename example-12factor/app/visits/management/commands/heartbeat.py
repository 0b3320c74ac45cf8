"""A stand-in for a worker process (a Celery worker, a scheduler)."""
import os
import signal
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Writes a line a fifth of a second into shared/logs/heartbeat.log until TERM, then finishes and says so."

    def handle(self, *args, **options):
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        log = Path(os.environ.get("DJSHIP_DATA_DIR", ".")) / "logs" / "heartbeat.log"
        beats = 0
        while not stopping:
            beats += 1
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"{settings.REVISION} beat {beats}\n")
            time.sleep(0.2)
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{settings.REVISION} stopped after {beats} beats\n")
