"""How deeply a JSON text nests, counted before it is parsed (parsers recurse on nesting):
the request limits refuse a body nested too deep, and a list cursor is a flat list."""

from __future__ import annotations

import re

#: the deepest nesting of a JSON body or cursor (request bodies here nest 3 levels)
MAX_DEPTH = 32
STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
BRACKETS = re.compile(r"[\[\]{}]")


def json_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """How deeply a JSON text nests (counted without recursion; stops past `limit`)."""
    depth = deepest = 0
    for bracket in BRACKETS.findall(STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest
