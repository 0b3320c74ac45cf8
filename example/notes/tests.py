import os
import tempfile

from django.conf import settings
from django.test import TestCase

from .models import Note


class IndexPageTests(TestCase):
    def test_shows_revision_and_greeting(self):
        response = self.client.get("/")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, settings.DJSHIP_REVISION)
        self.assertContains(response, settings.GREETING)
        self.assertEqual(response["X-Djship-Revision"], settings.DJSHIP_REVISION)

    def test_post_keeps_a_note(self):
        response = self.client.post("/", {"text": "first note"})
        self.assertEqual(response.status_code, 302)
        self.assertEqual(Note.objects.get().text, "first note")
        self.assertContains(self.client.get("/"), "first note")


class SecretFileTests(TestCase):
    def test_settings_read_the_secret_file(self):
        """The settings module reads values through DJANGO_SETTINGS_SECRET_FILE."""
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write("GREETING = 'from the secret file'\nSECRET_KEY = 'k' * 50\n")
        namespace = {"__file__": os.path.join(settings.BASE_DIR, "exampleproject", "settings.py")}
        old = os.environ.get("DJANGO_SETTINGS_SECRET_FILE")
        os.environ["DJANGO_SETTINGS_SECRET_FILE"] = f.name
        try:
            with open(namespace["__file__"], encoding="utf-8") as src:
                exec(compile(src.read(), namespace["__file__"], "exec"), namespace)
        finally:
            if old is None:
                del os.environ["DJANGO_SETTINGS_SECRET_FILE"]
            else:
                os.environ["DJANGO_SETTINGS_SECRET_FILE"] = old
            os.unlink(f.name)
        self.assertEqual(namespace["GREETING"], "from the secret file")
        self.assertFalse(namespace["DEBUG"])
