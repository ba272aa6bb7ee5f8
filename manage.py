#!/usr/bin/env python
from __future__ import annotations

import os
import sys


def main() -> None:
    # Production unless development or tests are chosen explicitly (make run, pytest): a
    # forgotten variable must never mean DEBUG on and a public secret key.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
