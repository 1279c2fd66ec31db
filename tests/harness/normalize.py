# SPDX-License-Identifier: Apache-2.0
"""Normalisers and the JSON comparison used by the golden replays
(conformance guide §1, §15): time masking, {{address}} substitution, loose
matching of Go library error strings, and semantic JSON equality (object key
order free, array order kept, numbers as numbers, booleans not numbers)."""

import json
import re
from typing import Any, Optional

# Upstream apiTest: regexp `\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d[^"]+` -> 0001-01-01T00:00:00Z
TIME_RE = re.compile(r'\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d[^"]+')
MASKED_TIME = "0001-01-01T00:00:00Z"
ADDRESS_PLACEHOLDER = "{{address}}"

# Messages produced by Go libraries (encoding/json, protojson, yaml) that the
# C CP may word differently. Golden `detail` looks like
#   invalid Dataplane object: "invalid character ',' looking for beginning of object key string"
GO_LIB_MESSAGE_RE = re.compile(
    r'^(?P<prefix>invalid [A-Za-z]+ object:) "(?:invalid character |json: |unexpected end of JSON'
    r'|proto: |yaml: |error unmarshaling JSON|unknown field)')


def mask_times(text: str) -> str:
    return TIME_RE.sub(MASKED_TIME, text)


def substitute_address(text: str, address: str) -> str:
    """Replace every `host:port` of the server under test by {{address}}."""
    return text.replace(address, ADDRESS_PLACEHOLDER) if address else text


def normalize_body(text: str, address: str = "", times: bool = True) -> str:
    """What upstream's apiTest does to a response body before comparing."""
    out = substitute_address(text, address)
    return mask_times(out) if times else out


class DuplicateKeyError(ValueError):
    pass


def _no_dupes(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise DuplicateKeyError(f"duplicate key {k!r} in JSON object")
        obj[k] = v
    return obj


def parse_json(text: str) -> Any:
    """json.loads that rejects duplicate object keys."""
    return json.loads(text, object_pairs_hook=_no_dupes)


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if v is None:
        return "null"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def json_diff(expected: Any, actual: Any, path: str = "$", out: Optional[list] = None,
              limit: int = 40) -> list[str]:
    """Differences between two decoded JSON values, as readable lines."""
    if out is None:
        out = []
    if len(out) >= limit:
        return out
    ke, ka = _kind(expected), _kind(actual)
    if ke != ka:
        out.append(f"{path}: expected {ke} {_short(expected)}, got {ka} {_short(actual)}")
    elif ke == "object":
        for k in expected:
            if k not in actual:
                out.append(f"{path}.{k}: missing (expected {_short(expected[k])})")
            else:
                json_diff(expected[k], actual[k], f"{path}.{k}", out, limit)
        for k in actual:
            if k not in expected:
                out.append(f"{path}.{k}: unexpected {_short(actual[k])}")
    elif ke == "array":
        if len(expected) != len(actual):
            out.append(f"{path}: expected {len(expected)} items, got {len(actual)}")
        for i, (e, a) in enumerate(zip(expected, actual)):
            json_diff(e, a, f"{path}[{i}]", out, limit)
    elif ke == "number":
        if float(expected) != float(actual):
            out.append(f"{path}: expected {expected!r}, got {actual!r}")
    elif expected != actual:
        out.append(f"{path}: expected {_short(expected)}, got {_short(actual)}")
    return out


def _short(v: Any, n: int = 160) -> str:
    s = json.dumps(v, sort_keys=True)
    return s if len(s) <= n else s[:n] + "..."


def json_equal(expected: Any, actual: Any) -> bool:
    return not json_diff(expected, actual, limit=1)


def loosen_go_errors(expected: Any, actual: Any) -> tuple[Any, bool]:
    """When `expected` is a std-errors body whose detail quotes a Go library
    message, return a copy of `expected` whose detail/details are replaced by
    the actual ones provided those start with the same `invalid <Type> object:`
    prefix. Second value: whether anything was loosened."""
    if not (isinstance(expected, dict) and isinstance(actual, dict)):
        return expected, False
    if expected.get("type") != "/std-errors":
        return expected, False
    loosened = False
    exp = dict(expected)
    for key in ("detail", "details"):
        ev, av = expected.get(key), actual.get(key)
        if not isinstance(ev, str) or not isinstance(av, str):
            continue
        m = GO_LIB_MESSAGE_RE.match(ev)
        if m and av.startswith(m.group("prefix")):
            exp[key] = av
            loosened = True
    return exp, loosened


def compare_json_text(golden_text: str, actual_text: str, loose_go_errors: bool = True) -> tuple[bool, str]:
    """Compare a golden and an actual body (both already normalised).
    Returns (ok, message); message explains a mismatch, or notes a loose match."""
    try:
        expected = json.loads(golden_text)
    except ValueError as e:
        return False, f"golden is not JSON: {e}"
    try:
        actual = parse_json(actual_text)
    except DuplicateKeyError as e:
        return False, f"actual body: {e}\n{actual_text[:3000]}"
    except ValueError as e:
        return False, f"actual body is not JSON ({e}):\n{actual_text[:3000]}"
    diff = json_diff(expected, actual)
    if not diff:
        return True, ""
    if loose_go_errors:
        exp2, loosened = loosen_go_errors(expected, actual)
        if loosened and not json_diff(exp2, actual):
            return True, "matched loosely (Go library error text)"
    return False, format_mismatch(expected, actual, diff)


def format_mismatch(expected: Any, actual: Any, diff: list[str]) -> str:
    exp = json.dumps(expected, indent=1, sort_keys=True)
    act = json.dumps(actual, indent=1, sort_keys=True)
    lim = 6000
    return ("JSON differs:\n  " + "\n  ".join(diff)
            + f"\n--- expected (sorted keys) ---\n{exp[:lim]}"
            + f"\n--- actual (sorted keys) ---\n{act[:lim]}")
