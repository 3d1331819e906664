"""The twin's one JSON parser for what a client sends (bodies, JSON headers, JSON query values).

``loads`` turns every malformed input into ``MalformedJSON`` (a ``ValueError``), so each endpoint
answers it with its own 400: text that is not JSON, bytes that are not UTF-8, ``NaN`` / ``Infinity``
(JSON has no such words; JavaScript's ``JSON.parse``, which Cloudflare's runtime uses, refuses them),
and a nesting deep enough to overflow Python's recursion (100,000 ``[``), which ``json`` raises as a
``RecursionError`` that no ``except ValueError`` catches: before this module, a 500.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["MalformedJSON", "loads"]


class MalformedJSON(ValueError):
    """The input is not a JSON text the twin accepts."""


def _no_constant(name: str) -> Any:
    raise MalformedJSON(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedJSON(f"{text} is out of range")
    return value


#: Made once: ``json.loads`` with any hook builds a new decoder (and its scanner) on every call.
_DECODER = json.JSONDecoder(parse_constant=_no_constant)
_FINITE_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)


def loads(raw: bytes | str, *, finite: bool = False) -> Any:
    """The parsed value; ``finite``: a number too large for a double (``1e400``) is malformed too."""
    try:
        # What json.loads does before decoding: bytes by the encoding of their first bytes (UTF-8, -16 or
        # -32, a UTF-8 BOM dropped); a str that starts with a BOM refused.
        if isinstance(raw, bytes | bytearray):
            raw = raw.decode(json.detect_encoding(raw), "surrogatepass")
        elif not isinstance(raw, str) or raw.startswith("\ufeff"):
            return json.loads(raw)  # its own TypeError / JSONDecodeError, as before
        return (_FINITE_DECODER if finite else _DECODER).decode(raw)
    except MalformedJSON:
        raise
    except RecursionError:
        raise MalformedJSON("the JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJSON(f"not valid JSON ({type(exc).__name__})") from None
