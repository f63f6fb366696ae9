#!/usr/bin/env python3
"""Django's command line for the example: `python manage.py runserver` serves it (WSGI, with
consentmw.django.ConsentMiddleware in MIDDLEWARE), `python manage.py check` runs consentmw's checks."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
