"""Every refusal's message names things in the user's words: no internal field name
(a word with an underscore, such as confirm_email) and no exception class name
(`type(error).__name__`) in the text of an error raised by the domain, the use cases,
the adapters or the HTTP and web layers. The `field` member of an answer still names the
field for programs; the sentence is for people (it is shown on the pages as it is)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("domain", "services", "adapters")
#: operator-only messages (a database's schema at start-up), never shown to an office
SKIPPED = ("adapters/migrations/",)
#: an identifier with an underscore, as written in code (not inside a {placeholder})
INTERNAL_NAME = re.compile(r"(?<![\w{./-])[a-z]+_[a-z_]+(?![\w(}])")
REFUSALS = ("InvalidValue", "HttpProblem", "FormError", "PmsWriteError", "CallFailed")


def refusal_name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def is_refusal(name: str) -> bool:
    return name in REFUSALS or name.endswith(("Error", "Refused", "Failed", "Unavailable"))


def message_parts(node: ast.expr) -> tuple[str, bool]:
    """The literal text of a message argument, and whether it formats a class name."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, False
    if isinstance(node, ast.JoinedStr):
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        names_class = any(
            isinstance(v, ast.FormattedValue) and "__name__" in ast.unparse(v.value)
            for v in node.values
        )
        return text, names_class
    return "", False


def leaks() -> list[str]:
    found = []
    for source in SOURCES:
        for path in sorted((ROOT / source).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            if where.startswith(SKIPPED):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or not is_refusal(refusal_name(node)):
                    continue
                # a pydantic error's first argument is its code; its message comes second
                first = 1 if refusal_name(node) == "PydanticCustomError" else 0
                for argument in node.args[first : first + 1]:
                    text, names_class = message_parts(argument)
                    for name in INTERNAL_NAME.findall(text):
                        found.append(f"{where}:{node.lineno}: {name!r} in {text[:70]!r}")
                    if names_class:
                        found.append(f"{where}:{node.lineno}: an exception's class name")
    return found


def test_refusals_name_things_in_words() -> None:
    assert leaks() == []


def test_the_sweep_finds_a_leak() -> None:
    """The sweep would fail on the message the dashboard once showed."""
    call = ast.parse('raise InvalidValue("email and confirm_email differ")').body[0]
    assert isinstance(call, ast.Raise) and isinstance(call.exc, ast.Call)
    text, _ = message_parts(call.exc.args[0])
    assert INTERNAL_NAME.findall(text) == ["confirm_email"]
    named = ast.parse('f"stopped: {type(error).__name__}"', mode="eval").body
    assert message_parts(named)[1]
