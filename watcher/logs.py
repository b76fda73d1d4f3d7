"""Logging set-up: plain text or one JSON object per line (`--log-format json`)."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

# apprise and URL credentials never reach the logs: the userinfo of a URL (user:password@, and a
# bare token@, which is how many APIs take a key) and ?token= / key= / password= query values.
_SECRET = re.compile(r"(?i)(://)([^/\s@?#]+)@|((?:token|key|secret|password|pass|apikey|api_key)=)[^&\s]+")


def redact(text: str) -> str:
    """`text` with URL credentials masked; for anything shown or stored that may quote a URL."""

    def mask(m: re.Match[str]) -> str:
        if m.group(1):
            return m.group(1) + ("***:***@" if ":" in m.group(2) else "***@")
        return m.group(3) + "***"

    return _SECRET.sub(mask, text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            out.update(extra)
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "warning", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "apprise", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
