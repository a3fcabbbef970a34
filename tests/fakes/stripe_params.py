"""Each request's parameters checked against the pinned `stripe` SDK's own parameter types.

The SDK is generated from Stripe's OpenAPI spec of the API version it pins
(`stripe.params`: a TypedDict per request, e.g. `PaymentIntentCreateParams`, nested
TypedDicts for its objects). The fake answers as Stripe does for that version: a
parameter the version does not know is 400 `parameter_unknown`, a required one missing
is 400 `parameter_missing`, a value of the wrong kind (not an integer, not a boolean, not
one of an enum's values) is 400 `parameter_invalid_*`. So a parameter Stripe removed in
the pinned version (`payment_method_types` of a PaymentIntent in 2026-09-30) fails a
test instead of failing in production.
"""

from __future__ import annotations

import re
import sys
import types
import typing
from functools import cache
from typing import Any, Literal, NotRequired, Required, Union

from stripe._request_options import RequestOptions
from typing_extensions import is_typeddict

#: the SDK's own keys (request options), never sent as parameters
OPTIONS = frozenset(RequestOptions.__annotations__)


class ParameterError(Exception):
    def __init__(self, code: str, param: str, message: str) -> None:
        super().__init__(message)
        self.code, self.param, self.message = code, param, message


@cache
def fields_of(typed: type) -> tuple[dict[str, Any], frozenset[str]]:
    """A TypedDict's fields (their types resolved in the SDK module that declares them)
    and its required keys; the request options left out."""
    namespace = vars(sys.modules[typed.__module__])
    fields: dict[str, Any] = {}
    required: set[str] = set()
    for name, hint in typed.__annotations__.items():
        if name in OPTIONS:
            continue
        resolved, needed = unwrap(evaluate(hint, namespace), namespace)
        fields[name] = resolve(resolved, namespace)
        if needed if needed is not None else name in typed.__required_keys__:  # type: ignore[attr-defined]
            required.add(name)
    return fields, frozenset(required)


def evaluate(hint: Any, namespace: dict[str, Any]) -> Any:
    if isinstance(hint, str):
        return eval(hint, namespace)
    if isinstance(hint, typing.ForwardRef):
        return eval(hint.__forward_arg__, namespace)
    return hint


def unwrap(hint: Any, namespace: dict[str, Any]) -> tuple[Any, bool | None]:
    origin = typing.get_origin(hint)
    if origin is NotRequired:
        return evaluate(typing.get_args(hint)[0], namespace), False
    if origin is Required:
        return evaluate(typing.get_args(hint)[0], namespace), True
    return hint, None


def resolve(hint: Any, namespace: dict[str, Any]) -> Any:
    """A type as a plain shape: a primitive type, a TypedDict, ("union", options),
    ("literal", values), ("list", item) or ("map",)."""
    hint = evaluate(hint, namespace)
    origin = typing.get_origin(hint)
    if origin is None:
        return hint
    if origin is Literal:
        values = [str(a).lower() if isinstance(a, bool) else str(a) for a in typing.get_args(hint)]
        return ("literal", tuple(values))
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return ("union", tuple(resolve(a, namespace) for a in args))
    if origin is list:
        return ("list", resolve(args[0], namespace))
    return ("map",)


def check(params: dict[str, Any], typed: type) -> None:
    """Raise ParameterError as Stripe would answer these (form-decoded) parameters."""
    check_object(params, typed, "")


def name_of(prefix: str, key: str) -> str:
    return f"{prefix}[{key}]" if prefix else key


def check_object(value: Any, typed: type, prefix: str) -> None:
    if not isinstance(value, dict):
        raise ParameterError(
            "parameter_invalid_string", prefix, f"Invalid object: {prefix} must be a hash"
        )
    fields, required = fields_of(typed)
    for key, item in value.items():
        if key not in fields:
            name = name_of(prefix, key)
            raise ParameterError("parameter_unknown", name, f"Received unknown parameter: {name}")
        check_value(item, fields[key], name_of(prefix, key))
    for key in sorted(required - set(value)):
        name = name_of(prefix, key)
        raise ParameterError("parameter_missing", name, f"Missing required param: {name}.")


def check_value(value: Any, hint: Any, name: str) -> None:
    problem = mismatch(value, hint, name)
    if problem is not None:
        raise problem


def mismatch(value: Any, hint: Any, name: str) -> ParameterError | None:
    """None when `value` fits `hint`; else the error Stripe answers."""
    if is_typeddict(hint):
        try:
            check_object(value, hint, name)
        except ParameterError as error:
            return error
        return None
    if isinstance(hint, tuple):
        return shaped_mismatch(value, hint, name)
    if hint is bool:
        if value in ("true", "false"):
            return None
        return ParameterError("parameter_invalid_boolean", name, f"Invalid boolean: {value}")
    if hint is int:
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            return None
        return ParameterError("parameter_invalid_integer", name, f"Invalid integer: {value}")
    if hint is float:
        if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
            return None
        return ParameterError("parameter_invalid_string", name, f"Invalid decimal: {value}")
    if hint is str:
        if isinstance(value, str):
            return None
        return ParameterError("parameter_invalid_string", name, f"Invalid string: {name}")
    return None  # Any, or an SDK object type (UntypedStripeObject): a hash of anything


def shaped_mismatch(value: Any, shape: tuple[Any, ...], name: str) -> ParameterError | None:
    kind = shape[0]
    if kind == "union":
        problems = [mismatch(value, option, name) for option in shape[1]]
        if any(p is None for p in problems):
            return None
        # the most telling one: a hash's own problem rather than "not a string"
        return next((p for p in problems if p is not None and p.param != name), problems[0])
    if kind == "literal":
        if value in shape[1]:
            return None
        return ParameterError(
            "parameter_invalid_string",
            name,
            f"Invalid {name}: must be one of {', '.join(v or '(empty)' for v in shape[1])}",
        )
    if kind == "list":
        if not isinstance(value, list):
            return ParameterError("parameter_invalid_string", name, f"Invalid array: {name}")
        for index, item in enumerate(value):
            problem = mismatch(item, shape[1], f"{name}[{index}]")
            if problem is not None:
                return problem
        return None
    # a map (metadata): any keys
    if not isinstance(value, dict) and value != "":
        return ParameterError("parameter_invalid_string", name, f"Invalid hash: {name}")
    return None
