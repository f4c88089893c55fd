#!/usr/bin/env python
"""Django's command-line utility for Loupe."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if len(sys.argv) > 1 and sys.argv[1] == "demo":
        # The demo runs on embedded defaults and generates its own secret key.
        os.environ.setdefault("LOUPE_DEMO", "1")
    from django.core.management import execute_from_command_line

    from config.environment import ImproperlyConfiguredEnv

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfiguredEnv as error:
        sys.stderr.write(f"loupe: configuration error: {error}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
