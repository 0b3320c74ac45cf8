"""Settings of the djship example site.

Secrets come from the file named by DJANGO_SETTINGS_SECRET_FILE, the
pattern existing Django deployments use: djship writes that file on the
host, root-owned and readable by the application's group only. Without it
(on a developer's machine) the site runs in DEBUG mode with a throwaway key.
"""
import json
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

secrets = {}
_secret_file = os.environ.get("DJANGO_SETTINGS_SECRET_FILE")
if _secret_file:
    with open(_secret_file, encoding="utf-8") as f:
        exec(f.read(), secrets)  # noqa: S102 - the file is written by djship, escaped

DEBUG = not _secret_file
SECRET_KEY = secrets.get("SECRET_KEY", "development-only-not-secret")
GREETING = secrets.get("GREETING", "Hello from the djship example")

# The release manifest that `mage release` puts at the top of the tarball.
DJSHIP_REVISION = "development"
for _candidate in (BASE_DIR / "DJSHIP-MANIFEST.json", BASE_DIR.parent / "DJSHIP-MANIFEST.json"):
    if _candidate.is_file():
        DJSHIP_REVISION = json.loads(_candidate.read_text(encoding="utf-8"))["revision"]
        break

ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "notes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "exampleproject.urls"
WSGI_APPLICATION = "exampleproject.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

# On a host, DJSHIP_DATA_DIR is <root>/<project>/shared and DATABASE_PATH a
# file in shared/db/: the database and the uploads live outside every release.
DATA_DIR = Path(os.environ.get("DJSHIP_DATA_DIR", BASE_DIR))

if os.environ.get("DATABASE_ENGINE") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("DATABASE_NAME", "example"),
            "USER": os.environ.get("DATABASE_USER", "example"),
            "HOST": os.environ.get("DATABASE_HOST", ""),
            "PORT": os.environ.get("DATABASE_PORT", ""),
            "PASSWORD": secrets.get("DATABASE_PASSWORD", ""),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DATABASE_PATH", str(BASE_DIR / "db.sqlite3")),
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT", str(BASE_DIR.parent / "static"))
MEDIA_URL = "/media/"
MEDIA_ROOT = str(DATA_DIR / "media")

if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
