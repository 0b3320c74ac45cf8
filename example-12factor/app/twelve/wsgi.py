"""WSGI entry point of the twelve-factor example."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twelve.settings")
application = get_wsgi_application()
