from django.apps import AppConfig


class NotesConfig(AppConfig):
    """The example site's only app: short notes kept in the database."""

    name = "notes"
    default_auto_field = "django.db.models.BigAutoField"
