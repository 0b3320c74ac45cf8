from django.conf import settings
from django.db import connection
from django.shortcuts import render

from .models import Visit


def index(request):
    Visit.objects.create()
    return render(request, "visits/index.html", {
        "revision": settings.REVISION,
        "visits": Visit.objects.count(),
        "database": connection.vendor,
    })


def boom(request):
    """Fails on purpose: Django's error, with its traceback, reaches the
    application server's log, where mage logs shows it."""
    raise RuntimeError("the twelve-factor example fails on purpose")
