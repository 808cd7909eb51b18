"""Log output: one JSON object per line when LOG_FORMAT=json, and no secret ever reaches a log."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone

from chains.base import redact_text
from chains.secrets import redact_secrets

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# Personal API tokens (portfolio/services/tokens.py) are "cf_" + 40 base62 characters; a run of 8 or
# more after the prefix is redacted, so a token cut short in a message is still hidden.
API_TOKEN_PREFIX = "cf_"
_API_TOKEN = re.compile(r"(?<![A-Za-z0-9])cf_[A-Za-z0-9]{8,}")


def scrub(text: str) -> str:
    return _API_TOKEN.sub("cf_[redacted]", redact_secrets(redact_text(text)))


class RedactSecretsFilter(logging.Filter):
    """Rewrites the record's message with private keys, seed phrases and URL credentials redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = str(record.msg)
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc"] = record.exc_text
        return json.dumps(data, default=str)
