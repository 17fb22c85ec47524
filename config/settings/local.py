"""Development settings (`make demo`): safe defaults, SQLite unless DATABASE_URL says otherwise.

DEBUG stays off unless DJANGO_DEBUG=true: the demo is often reached by other people, and Django's debug pages
list every URL of the site and dump settings on errors. Static files come from the app folders through
WhiteNoise either way (no collectstatic needed), so gunicorn and runserver serve them with DEBUG off.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Serve /static/ from STATICFILES_DIRS and the apps' static folders, re-reading them when they change.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# The demo's webhook receivers run on this machine.
LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES = env.bool("LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES", default=True)
