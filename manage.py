#!/usr/bin/env python
"""Django's command-line utility for Labelloop.

Production settings unless DJANGO_SETTINGS_MODULE says otherwise: a process started without it never serves
with DEBUG or the development secret key. In a development checkout: `make demo` sets the development
settings for what it starts; for commands, export DJANGO_SETTINGS_MODULE=config.settings.local.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
