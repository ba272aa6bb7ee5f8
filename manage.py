#!/usr/bin/env python
from __future__ import annotations

import os
import sys


def main() -> None:
    # Production unless development or tests are chosen explicitly (make run, pytest): a
    # forgotten variable must never mean DEBUG on and a public secret key.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A setting that is missing or wrong is the operator's to fix: say which, in one line.
        if "--traceback" in sys.argv:
            raise
        print(f"manage.py: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
