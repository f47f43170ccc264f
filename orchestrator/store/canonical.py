"""The one JSON form used for event payloads and for hashing."""

from __future__ import annotations

import json
from typing import Any


def canonical(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept, anything else as ``str()``."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
