"""What error pages and error e-mails may show: Django's filter, told about our secrets too."""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter


class RunwayExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django hides names with API, TOKEN, KEY, SECRET, PASS, SIGNATURE or HTTP_COOKIE; this
    adds connection strings (DATABASE_URL, REDIS_URL, the broker and channel-layer URLs and
    hosts, any *_DSN) and the settings that embed them (DATABASES, CACHES, CHANNEL_LAYERS).
    Applied to settings and to request.META, which carries the environment under some servers.
    """

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DSN|DATABASE|REDIS|BROKER|"
        "CHANNEL|CACHES",
        flags=re.IGNORECASE,
    )
