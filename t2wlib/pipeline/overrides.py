"""Profile overrides as a user writes them: `t2w run --set FIELD=VALUE` strings or papermill's JSON
values, typed against the `Profile` fields (`typed_overrides`), and `--data NAME=PATH` entries
(`data_overrides`). Unknown fields and ill-typed values are a ValueError naming the field, the value
and how to write it; the ranges are `profile_checks`' (applied when the profile is made)."""

from __future__ import annotations

import dataclasses
import json

from .profiles import Profile


def data_overrides(entries: list[str]) -> dict:
    """The profile overrides of `t2w run --data NAME=PATH ...`: the user's datasets replace the
    profile's (data.register_user_dataset checks each entry)."""
    from ..data.datasets import USER_PREFIX
    from ..data.user_folders import parse_user_data

    if not entries:
        return {}
    parsed = [parse_user_data(e) for e in entries]
    names = [n for n, _ in parsed]
    if len(set(names)) < len(names):
        raise ValueError(f"--data names repeat: {names}")
    return {"user_data": tuple(f"{n}={p}" for n, p in parsed), "datasets": tuple(USER_PREFIX + n for n in names)}



def _coerce(field: str, value, annotation: str, whole: str | None = None):
    """`value` (a JSON value or a command-line string) as the type `annotation` names, or ValueError
    naming the field's whole type (`whole`: a tuple's, when `value` is one of its items) and how to write it."""
    whole, given = whole or annotation, value

    def fail():
        how = " (write a tuple as 2,5 or [2,5])" if whole.startswith("tuple") else ""
        raise ValueError(f"profile field {field} is {whole}{how}; {given!r} is not one")

    optional = annotation.endswith("| None")
    base = annotation.removesuffix("| None").strip()
    if isinstance(value, str) and value.strip().lower() in ("none", "null"):
        value = None
    if value is None:
        return None if optional else fail()
    if isinstance(value, str) and base != "str":
        text = value.strip()
        if base.startswith("tuple") and text[:1] + text[-1:] in ("()", "[]"):
            text = text[1:-1]  # Python's (2, 5) and JSON's [2, 5], as 2, 5
        try:
            value = json.loads(f"[{text}]" if base.startswith("tuple") else text)
        except json.JSONDecodeError:
            if not base.startswith("tuple"):
                fail()
            value = [v.strip() for v in text.split(",") if v.strip()]  # tuples also as "a,b,c"
        if value is None:
            return None if optional else fail()
    if base.startswith("tuple"):
        items = [t.strip() for t in base[len("tuple["):-1].split(",")]
        if not isinstance(value, (list, tuple)):
            value = [value]
        if items[-1] != "..." and len(value) != len(items):  # a fixed-length tuple: zoo_k is (k_min, k_max)
            raise ValueError(f"profile field {field} is {annotation}: {len(items)} values; {value!r} has {len(value)}")
        return tuple(_coerce(field, v, items[0], whole) for v in value)
    if base == "bool":
        return value if isinstance(value, bool) else fail()
    if base == "int":
        return value if isinstance(value, int) and not isinstance(value, bool) else fail()
    if base == "float":
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else fail()
    # (NaN and infinities parse as floats here; check_profile refuses them where a field needs a number.)
    if base == "str":
        return value if isinstance(value, str) else fail()
    raise TypeError(f"profile field {field}: unsupported annotation {annotation}")


def typed_overrides(overrides: dict | list[str] | None) -> dict:
    """Profile overrides typed against the Profile fields: a dict (papermill's OVERRIDES, JSON
    values) or `key=value` strings (`t2w run --set`). Unknown fields and ill-typed values raise a
    ValueError naming the field, the value and what is allowed."""
    if not overrides:
        return {}
    if isinstance(overrides, (list, tuple)):
        pairs = {}
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"--set {item!r} is not key=value")
            pairs[key.strip()] = value.strip()
        overrides = pairs
    annotations = {f.name: f.type for f in dataclasses.fields(Profile)}
    unknown = sorted(set(overrides) - set(annotations) | ({"name"} & set(overrides)))
    if unknown:
        raise ValueError(f"unknown profile field(s) {unknown}; fields: {', '.join(sorted(set(annotations) - {'name'}))}")
    return {k: _coerce(k, v, annotations[k]) for k, v in overrides.items()}
