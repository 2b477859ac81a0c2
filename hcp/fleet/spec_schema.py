"""Input side of the fleet spec: the strict schema a YAML document is checked against.

Holds the pydantic ``*Doc`` models (no extra keys, no silent type coercion),
the YAML reader that refuses duplicate keys, and the helpers that turn
validation and syntax errors into ``FieldProblem`` entries collected across a
whole file. ``hcp.fleet.spec`` builds the frozen result objects from these.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from hcp.errors import FieldProblem, FleetSpecError

ID_MAX_LEN = 63
# Device and facility ids become actor names, metric labels and URL segments.
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_ID_RULE = (
    "lowercase letters, digits, '-', '_' or '.', starting with a letter or digit,"
    " at most 63 characters"
)
MAX_COUNT = 100_000  # a typo like count: 1000000 should not build a million objects

Slug = Annotated[str, StringConstraints(pattern=ID_RE.pattern)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Doc(BaseModel):
    # strict: a quoted "700" or a YAML bool is an error, never silently coerced.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


DocT = TypeVar("DocT", bound=Doc)


class GpuDoc(Doc):
    id: Slug
    model: Text
    memory_gb: Annotated[float, Field(gt=0)] | None = None
    power_w: Annotated[float, Field(gt=0)] | None = None
    idle_w: Annotated[float, Field(ge=0)] | None = None
    device_index: Annotated[int, Field(ge=0)] | None = None
    # The temperature the operator keeps this GPU under (°C): GpuOverTemperature fires above it.
    temperature_limit_c: Annotated[float, Field(gt=0, le=150)] | None = None
    count: Annotated[int, Field(ge=1, le=MAX_COUNT)] = 1


class AsicDoc(Doc):
    id: Slug
    model: Text
    hashrate_ths: Annotated[float, Field(gt=0)] | None = None
    power_w: Annotated[float, Field(gt=0)] | None = None
    count: Annotated[int, Field(ge=1, le=MAX_COUNT)] = 1


class FacilityDoc(Doc):
    name: Slug
    location: Text
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    capacity_mw: Annotated[float, Field(gt=0)]
    pue: Annotated[float, Field(ge=1.0, le=3.0)]
    electricity_zone: Text | None = None
    # Entries are validated one by one (GpuDoc/AsicDoc) so that one bad device
    # does not hide the problems of the others.
    gpus: list[Any] | None = None
    asics: list[Any] | None = None


class FleetDoc(Doc):
    fleet: Slug
    facilities: list[Any]  # each one validated as a FacilityDoc


# --- reading the file -----------------------------------------------------------


class StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which YAML would otherwise let win silently."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # the base constructor reports unhashable keys with a line number
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"duplicate key {key!r}", key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """The parsed document at ``path``; unreadable files and bad YAML raise FleetSpecError."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _file_error(source, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _file_error(source, f"cannot read file: {exc}") from None
    try:
        return yaml.load(text, Loader=StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise FleetSpecError(
            f"invalid fleet spec {source}: not valid YAML", [_yaml_problem(exc)]
        ) from None


def _file_error(source: str, message: str) -> FleetSpecError:
    return FleetSpecError(
        f"invalid fleet spec {source}: {message}", [FieldProblem("(file)", message, source)]
    )


def _yaml_problem(exc: yaml.YAMLError) -> FieldProblem:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "(file)"
    message = getattr(exc, "problem", None) or str(exc)
    return FieldProblem(where, f"YAML syntax: {message}")


# --- collecting problems --------------------------------------------------------


class ProblemCollector:
    """Records every problem found instead of stopping at the first one."""

    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []

    def problem(self, location: str, message: str, value: Any = None) -> None:
        self.problems.append(FieldProblem(location, message, value))

    def validate(self, model: type[DocT], raw: Any, loc: str) -> DocT | None:
        """``model`` built from ``raw``, or None with every error recorded."""
        try:
            return model.model_validate(raw)
        except PydanticValidationError as exc:
            self.problems.extend(_problem(model, err, loc) for err in exc.errors(include_url=False))
            return None

    def is_mapping(self, value: Any, loc: str, what: str) -> bool:
        if isinstance(value, dict):
            return True
        got = f"{type(value).__name__} {value!r}"
        self.problem(loc, f"expected a mapping describing {what}, got {got}", value)
        return False


def _problem(model: type[Doc], err: Any, loc: str) -> FieldProblem:
    parts = [loc] if loc else []
    for part in err["loc"]:
        if isinstance(part, int):  # list index: facilities[0], not facilities.0
            parts[-1:] = [f"{parts[-1] if parts else ''}[{part}]"]
        else:
            parts.append(str(part))
    where = ".".join(parts) or "(root)"
    kind, value = err["type"], err.get("input")
    if kind == "missing":
        return FieldProblem(where, "required field is missing")
    if kind == "extra_forbidden":
        allowed = ", ".join(model.model_fields)
        return FieldProblem(where, f"unknown field (allowed: {allowed})", value)
    if kind == "string_pattern_mismatch":
        return FieldProblem(where, f"must be {_ID_RULE}", value)
    if kind.endswith("_type"):
        message = f"{err['msg']}, got {type(value).__name__} {value!r}"
        if kind in ("float_type", "int_type") and isinstance(value, str) and _numeric(value):
            # PyYAML reads quoted numbers and exponents without a dot (1e3) as text.
            message += "; write it as a plain number (e.g. 1000 or 1.0e3)"
        return FieldProblem(where, message, value)
    return FieldProblem(where, f"{err['msg']} (got {value!r})", value)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
