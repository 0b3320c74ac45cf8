from django.db import models


class Visit(models.Model):
    """One request of the front page."""

    at = models.DateTimeField(auto_now_add=True)
