"""Loading scenarios: YAML (with `extends:` bases), `--set` overrides, validation, one-line errors.

`load_scenario(path, overrides)` reads YAML (following `extends:` to a base file), applies
`--set dotted.path=value` overrides, and validates against the schema in sim/scenario.py. Any
problem raises `ScenarioError` whose text is one line naming the field path (with the file and
line where known), what was wrong and what is allowed.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sim.errors import ScenarioError
from sim.pricing import check_pricing
from sim.scenario import Scenario


def load_scenario(path: str | Path, overrides: list[str] | None = None, *,
                  origins: list[str] | None = None) -> Scenario:
    """Read, merge (`extends:`), override (`a.b=value`) and validate a scenario file.

    `origins[i]`, if given, is how error messages name where `overrides[i]` came from (the CLI
    passes e.g. `--sample 0`); the default is `--set <override>`.
    """
    path = Path(path)
    raw, lines = merged_raw(path, overrides, origins=origins)
    scenario = validate_scenario(raw, lines=lines, source=str(path))
    check_pricing(scenario)
    return scenario


def default_name(path: Path) -> str:
    """A scenario without `name:` is named after its file, made a valid name (see Scenario.name)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).lstrip(".")[:100]
    return name or "scenario"


def validate_scenario(raw: dict[str, Any], lines: dict[tuple, int | str] | None = None,
                      source: str = "scenario") -> Scenario:
    """Validate a raw mapping; `lines` maps field paths to a line number or a `file:line`/`--set` label."""
    lines = lines or {}
    bad = _bool_for_number(raw, Scenario, ())
    if bad is not None:
        loc, message = bad
        raise ScenarioError(_where(loc, lines, source), message)
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise _one_line(exc, lines, source) from None
    bad = _non_finite(scenario, ())
    if bad is not None:
        loc, value = bad
        raise ScenarioError(_where(loc, lines, source), f"got {value}; allowed: a finite number")
    return scenario


def merged_raw(path: Path, overrides: list[str] | None = None, *, origins: list[str] | None = None,
               absolute: bool = False) -> tuple[dict[str, Any], dict[tuple, int | str]]:
    """A scenario file's data before validation: its `extends:` bases merged in, `overrides` applied
    (`a.b=value`), file paths made relative to it (absolute ones with `absolute`, so the data loads
    the same from any folder), and where each field came from (a line, or the override)."""
    raw, lines = _read_yaml(path, seen=())
    raw = copy.deepcopy(raw)
    for i, item in enumerate(overrides or []):
        origin = origins[i] if origins and i < len(origins) else f"--set {item}"
        loc = _apply_override(raw, item, origin)
        lines = {k: v for k, v in lines.items() if k[: len(loc)] != loc}
        for n in range(1, len(loc) + 1):  # sections the override created come from it too
            lines.setdefault(loc[:n], origin)
    folder = path.parent.resolve() if absolute else path.parent
    _set_base_dir(raw, folder)
    pricing = raw.get("pricing")
    if isinstance(pricing, dict) and isinstance(pricing.get("catalog"), str):
        catalog = Path(pricing["catalog"])
        if catalog.suffix in (".yaml", ".yml") and not catalog.is_absolute():
            pricing["catalog"] = str(folder / catalog)  # relative to the scenario file
    raw.setdefault("name", default_name(path))
    return raw, lines


def _read_yaml(path: Path, seen: tuple[Path, ...]) -> tuple[dict[str, Any], dict[tuple, int | str]]:
    if path.is_dir():
        raise ScenarioError(str(path), "is a directory; expected a scenario YAML file")
    if not path.is_file():
        raise ScenarioError(str(path), "no such file; expected a scenario YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(str(path), f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                                       f"{exc.start}); a scenario is a YAML text file") from None
    except OSError as exc:
        raise ScenarioError(str(path), f"cannot read the file: {exc.strerror or exc}") from None
    try:
        node, data = _bounded_yaml(text, str(path))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context_mark:  # e.g. "while parsing a flow sequence"
            problem = f"{exc.context} (line {exc.context_mark.line + 1}): {problem.removeprefix('but ')}"
        for cause, hint in _YAML_HINTS.items():
            if cause in problem:
                problem += f" ({hint})"
        raise ScenarioError(where, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(str(path), f"not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None or data == {}:
        raise ScenarioError(str(path), "the scenario is empty; give at least workload: and the fleet "
                                       "sections (see scenarios/messaging-1m.yaml), or extends: a base file")
    if not isinstance(data, dict):
        kind = "list" if isinstance(data, list) else "single value"  # never echo a file's content
        raise ScenarioError(str(path), f"got a YAML {kind}, not a scenario; a scenario must be a mapping of "
                                       "sections (name:, workload:, gateway:, ...)")
    _no_duplicate_keys(node, (), path)
    lines: dict[tuple, int | str] = {k: f"{path}:{n}" for k, n in _line_index(node, ()).items()}
    base = data.pop("extends", None)
    if base is None:
        return data, lines
    where = f"{lines.get(('extends',), path)}: extends"
    if not isinstance(base, str) or not base.strip():
        raise ScenarioError(where, f"got {base!r}; allowed: a path to a base scenario file, relative to "
                                   "this one")
    base_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
    if not base_path.is_file():
        raise ScenarioError(where, f"base scenario {str(base_path)!r} not found (the path is relative to "
                                   f"{str(path.parent)!r})")
    chain = (*seen, path.resolve())
    if base_path.resolve() in chain:
        loop = chain[chain.index(base_path.resolve()):]
        names = " -> ".join(p.name for p in (*loop, base_path.resolve()))
        raise ScenarioError(where, f"forms a cycle ({names}); allowed: a base that does not extend "
                                   "back to a file that extends it")
    base_data, base_lines = _read_yaml(base_path, chain)
    _set_base_dir(base_data, base_path.parent)
    base_data.pop("name", None)
    inherited = base_data.get("description")
    if "description" not in data and isinstance(inherited, str) and inherited:  # say whose it is
        base_data["description"] = f"extends {base}: {inherited}"
    return _deep_merge(base_data, data), {**base_lines, **lines}


MAX_YAML_BYTES = 1_000_000  # a scenario is a few kB; this bound keeps a pasted blob from being parsed
MAX_YAML_ALIASES = 1_000  # `*name` references in one document
MAX_YAML_NODES = 200_000  # values in the document once aliases are expanded (a "billion laughs" has ~1e9)


class _CountingLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting `*alias` references as it composes."""

    aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise _TooBig(f"more than {MAX_YAML_ALIASES:,} aliases (*name)")
        return super().compose_node(parent, index)  # type: ignore[no-any-return]


class _TooBig(Exception):
    pass


def _bounded_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """Compose and construct one YAML document within MAX_YAML_BYTES, MAX_YAML_ALIASES and
    MAX_YAML_NODES (aliases expanded), so an alias bomb is refused before it is expanded."""
    size = len(text.encode("utf-8"))
    allowed = ("allowed: a scenario within those bounds (a scenario needs a few kB and few if any "
               "anchors)")
    if size > MAX_YAML_BYTES:
        raise ScenarioError(source, f"the YAML document is {size:,} bytes, more than {MAX_YAML_BYTES:,}; "
                                    + allowed)
    loader = _CountingLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except _TooBig as exc:
            raise ScenarioError(source, f"the YAML document has {exc}; {allowed}") from None
        if node is None:
            return None, None
        expanded = _expanded_size(node, {}, set())
        if expanded > MAX_YAML_NODES:
            raise ScenarioError(source, f"the YAML document expands to {_count_text(expanded)} values "
                                        f"through its aliases, more than {MAX_YAML_NODES:,}; {allowed}")
        return node, loader.construct_document(node)
    finally:
        loader.dispose()


def _count_text(n: int) -> str:
    return f"{n:,}" if n < 10**9 else f"~{n:.1e}"


def _expanded_size(node: yaml.Node, memo: dict[int, int], stack: set[int]) -> int:
    """Values in `node` with every alias expanded (memoised by node, so it costs one pass)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in stack:  # a recursive alias (`&a [*a]`) expands without end
        return MAX_YAML_NODES + 1
    stack.add(key)
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(child, memo, stack) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_size(k, memo, stack) + _expanded_size(v, memo, stack) for k, v in node.value)
    stack.discard(key)
    memo[key] = total = min(total, 10**18)
    return total


def parse_value(text: str, source: str) -> Any:
    """A `--set` value as YAML, within the same bounds as a file; plain text if it is not YAML."""
    try:
        return _bounded_yaml(text, source)[1]
    except yaml.YAMLError:
        return text


_YAML_HINTS = {
    "mapping values are not allowed": "check the indentation, or quote a value that contains ': '",
    "'\\t'": "indent with spaces, not tabs",
}


def _no_duplicate_keys(node: yaml.Node, prefix: tuple, path: Path) -> None:
    """YAML silently keeps the last of two equal keys; a scenario treats that as a mistake."""
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                line = key.start_mark.line + 1
                if key.value in first:
                    dotted = ".".join(str(p) for p in (*prefix, key.value))
                    raise ScenarioError(f"{path}:{line}: {dotted}",
                                        f"duplicate key (first given at line {first[key.value]}); "
                                        "allowed: each key once")
                first[key.value] = line
            _no_duplicate_keys(value, (*prefix, key.value), path)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _no_duplicate_keys(value, (*prefix, i), path)


def _line_index(node: yaml.Node, prefix: tuple, line: int | None = None) -> dict[tuple, int]:
    """Field path -> line; a mapping entry's line is its key's (a block section starts there)."""
    out: dict[tuple, int] = {prefix: line or node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out.update(_line_index(value, (*prefix, key.value), key.start_mark.line + 1))
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            out.update(_line_index(value, (*prefix, i)))
    return out


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "dist" not in value:
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _set_base_dir(raw: Any, base_dir: Path) -> None:
    """Empirical distributions read files relative to the scenario that names them."""
    if isinstance(raw, dict):
        if raw.get("dist") == "empirical" and "base_dir" not in raw:
            raw["base_dir"] = str(base_dir)
        for value in raw.values():
            _set_base_dir(value, base_dir)


def _apply_override(raw: dict[str, Any], item: str, origin: str | None = None) -> tuple:
    """Set `dotted.path=value` (value parsed as YAML) in `raw`; returns the path as a tuple."""
    label = origin or f"--set {item}"
    example = "expected dotted.path=value, e.g. --set cassandra.nodes=12"
    if "=" not in item:
        raise ScenarioError(label, f"no '=' in the override; {example}")
    key, _, text = item.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not all(parts):
        raise ScenarioError(label, f"the path before '=' is empty or has an empty part; {example}")
    value = parse_value(text, label) if text.strip() else None
    target = raw
    for i, part in enumerate(parts[:-1]):
        nxt = target.get(part)
        if nxt is None:
            nxt = target[part] = {}
        if not isinstance(nxt, dict):
            prefix = ".".join(parts[: i + 1])
            raise ScenarioError(label, f"{prefix} is {nxt!r}, not a section; set it whole instead, "
                                       f"e.g. --set {prefix}=VALUE")
        target = nxt
    target[parts[-1]] = value
    return tuple(parts)


_DIST_TAGS = {"exponential", "deterministic", "lognormal", "gamma", "empirical"}
_DIST_ALLOWED = ("a number (deterministic) or a mapping with dist: one of "
                 + ", ".join(sorted(_DIST_TAGS)))


def _one_line(exc: ValidationError, lines: dict[tuple, int | str], source: str) -> ScenarioError:
    """The first pydantic error as one line: where, what was wrong, what is allowed."""
    err = exc.errors()[0]
    raw_loc = tuple(err["loc"])
    loc, model, is_dist = _walk(raw_loc)
    kind = err["type"]
    got = err.get("input")
    msg = err["msg"]
    if kind in ("value_error", "assertion_error"):
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        loc, msg = _refine(loc, model, msg)
        return ScenarioError(_where(loc, lines, source), msg)
    where = _where(loc, lines, source)
    name = str(loc[-1]) if loc else "scenario"
    if kind == "extra_forbidden":
        parent = _walk(raw_loc[:-1])[1]
        return ScenarioError(where, "unknown key" + _did_you_mean(str(raw_loc[-1]), _keys_of(parent)))
    if kind == "invalid_key":
        return ScenarioError(where, f"key {_show(got)} is not a field name; allowed: "
                                    f"{', '.join(_keys_of(_walk(raw_loc[:-1])[1]))}")
    discriminator = str(err.get("ctx", {}).get("discriminator", "'dist'")).strip("'")
    if kind == "union_tag_invalid":
        tag = str(err.get("ctx", {}).get("tag", got))
        tags = sorted(_DIST_TAGS) if discriminator == "dist" else list(_COMPONENT_KINDS)
        return ScenarioError(where, f"unknown {discriminator} {tag!r}" + _did_you_mean(tag, tags))
    if kind == "union_tag_not_found":
        if discriminator == "kind":
            return ScenarioError(where, f"no 'kind:' given; allowed: {', '.join(_COMPONENT_KINDS)}")
        return ScenarioError(where, f"no 'dist:' given; allowed: {_DIST_ALLOWED}")
    if kind == "missing":
        parent = _walk(raw_loc[:-1])[1]
        fields = getattr(parent, "model_fields", {})
        needed = [k for k, f in fields.items() if f.is_required() and k != "dist"]
        owner = f"a {_tag_of(parent)}" if _tag_of(parent) else (str(loc[-2]) if len(loc) > 1 else "it")
        return ScenarioError(where, f"required field is missing; {owner} needs: {', '.join(needed)}")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if is_dist:
            allowed = _DIST_ALLOWED
        else:
            allowed = f"a mapping with keys {', '.join(_keys_of(model))}" if model else "a mapping"
        if got is None:
            return ScenarioError(where, f"is empty; allowed: {allowed} (or leave {name} out for its default)")
        return ScenarioError(where, f"got {_show(got)}; allowed: {allowed}")
    if kind in ("literal_error", "enum"):
        return ScenarioError(where, f"got {_show(got)}; allowed: {err.get('ctx', {}).get('expected', msg)}")
    if kind.startswith(("int_", "float_", "greater_", "less_", "bool_", "string_", "list_")):
        what = {"int": "a whole number", "float": "a number", "bool": "true or false", "string": "text",
                "list": "a list, e.g. [a, b]"}.get(kind.split("_")[0])
        bounds = _bounds(name, _walk(raw_loc[:-1])[1])
        allowed = ", ".join(a for a in (what, bounds) if a)
        if allowed:
            return ScenarioError(where, f"got {_show(got)}; allowed: {allowed}")
    return ScenarioError(where, f"got {_show(got)}; {msg[0].lower()}{msg[1:]}")


def _show(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _where(loc: list | tuple, lines: dict[tuple, int | str], source: str) -> str:
    """`file:line: dotted.path`, or `dotted.path (from --set ...)` for a value set on the command line."""
    path = ".".join(str(p) for p in loc)
    label = _nearest_line(tuple(loc), lines)
    if label is None:
        return f"{source}: {path}" if path else source
    if isinstance(label, int):
        label = f"{source}:{label}"
    if label.startswith("--"):
        return f"{path} (from {label})" if path else label
    return f"{label}: {path}" if path else label


def _nearest_line(loc: tuple, lines: dict[tuple, int | str]) -> int | str | None:
    """Where the deepest given part of `loc` came from: a line number, `file:line` or `--set ...`."""
    for n in range(len(loc), 0, -1):
        for key in (loc[:n], tuple(str(p) for p in loc[:n])):  # YAML keys `1:` are text in `lines`
            if key in lines:
                return lines[key]
    return None


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    return f"{hint} allowed: {', '.join(known)}" if known else ""


def _models_in(annotation: Any) -> list[Any]:
    """The pydantic models an annotation admits (several for a distribution union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[Any] = []
    for arg in getattr(annotation, "__args__", ()):
        out += [m for m in _models_in(arg) if m not in out]
    return out


def _model_of(annotation: Any) -> Any:
    models = _models_in(annotation)
    return models[0] if len(models) == 1 else None


_COMPONENT_KINDS = ("gateway", "service", "cassandra", "redis", "kafka")


def _tag_of(model: Any) -> str | None:
    """The literal a union member is chosen by: a distribution's `dist`, a component's `kind`."""
    fields = getattr(model, "model_fields", {})
    field = fields.get("dist") or fields.get("kind")
    args = getattr(field.annotation, "__args__", ()) if field else ()
    return str(args[0]) if args else None


def _keys_of(model: Any) -> list[str]:
    keys = [k for k in getattr(model, "model_fields", {}) if k != "base_dir"]
    if "dist" in keys:  # distributions: dist first, clipping last
        keys = ["dist", *[k for k in keys if k not in ("dist", "min", "max")], "min", "max"]
    return keys


def _walk(raw_loc: tuple) -> tuple[list, Any, bool]:
    """A pydantic error location as the user's path (dist tags dropped), the model it ends in,
    and whether it ends at a distribution field."""
    model: Any = Scenario
    loc: list = []
    union: dict[str | None, Any] = {}
    keyed = False  # the last field was a map: this part is one of its keys (a user's name)
    for part in raw_loc:
        if union and part in union:
            model, union = union[part], {}
            continue
        if isinstance(part, str) and re.fullmatch(r"[\w-]+\[.*\]", part):  # a validator step
            continue
        if keyed:  # a map's key: the value's model (or union) carries on
            loc.append(part)
            keyed = False
            continue
        union = {}
        loc.append(part)
        field = getattr(model, "model_fields", {}).get(part) if isinstance(part, str) else None
        keyed = field is not None and getattr(field.annotation, "__origin__", None) is dict
        models = _models_in(field.annotation) if field is not None else []
        model = models[0] if len(models) == 1 else None
        if len(models) > 1:
            union = {_tag_of(m): m for m in models}
    return loc, model, bool(union)


def _refine(loc: list, model: Any, msg: str) -> tuple[list, str]:
    """A validator message that starts with a field name (`replication_factor (3) exceeds ...`)
    is about that field: move the name into the path and keep the rest."""
    match = re.match(r"([A-Za-z_][\w.]*)(.*)$", msg, re.S)
    if model is None or match is None:
        return loc, msg
    parts, rest = match[1].split("."), match[2]
    current: Any = model
    for part in parts:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return loc, msg
        current = _model_of(field.annotation)
    value = re.match(r" \(([^)]*)\) (.*)$", rest, re.S)
    if rest.startswith(": "):
        rest = rest[2:]
    elif value:
        rest = f"{value[1]} {value[2]}"
    elif rest.startswith(" "):
        rest = rest[1:]
    else:
        return loc, msg
    return [*loc, *parts], rest


def _bounds(name: str, model: Any) -> str:
    """`0 < sample <= 1` from a field's constraints, or ''."""
    field = getattr(model, "model_fields", {}).get(name)
    low = high = ""
    for m in getattr(field, "metadata", ()):
        for attr, side, op in (("gt", "low", "<"), ("ge", "low", "<="), ("lt", "high", "<"),
                               ("le", "high", "<=")):
            bound = getattr(m, attr, None)
            if bound is None:
                continue
            shown = f"{bound:,}" if isinstance(bound, int) else f"{bound:g}"
            if side == "low":
                low = f"{shown} {op} "
            else:
                high = f" {op} {shown}"
    if not (low or high):
        return ""
    if low and not high:  # read `x >= 0` rather than `0 <= x`
        op = low.split()[1]
        return f"{name} {'>' if op == '<' else '>='} {low.split()[0]}"
    return f"{low}{name}{high}"


def _bool_for_number(raw: Any, model: Any, loc: tuple) -> tuple[tuple, str] | None:
    """A YAML true/false given to a number field (pydantic would read it as 1 or 0)."""
    if not isinstance(raw, dict) or model is None:
        return None
    for key, value in raw.items():
        field = model.model_fields.get(key) if isinstance(key, str) else None
        if field is None:
            continue
        if isinstance(value, bool):
            kinds = _scalar_types(field.annotation)
            if bool not in kinds and kinds & {int, float}:
                what = "a whole number" if int in kinds else "a number"
                bounds = _bounds(key, model)
                return (*loc, key), f"got {str(value).lower()}; allowed: {what}" + (
                    f", {bounds}" if bounds else "")
        elif isinstance(value, dict):
            models = _models_in(field.annotation)
            sub = models[0] if len(models) == 1 else next(
                (m for m in models if _tag_of(m) == value.get("dist")), None)
            found = _bool_for_number(value, sub, (*loc, key))
            if found:
                return found
    return None


def _scalar_types(annotation: Any) -> set[type]:
    if isinstance(annotation, type):
        return set() if issubclass(annotation, BaseModel) else {annotation}
    out: set[type] = set()
    for arg in getattr(annotation, "__args__", ()):
        out |= _scalar_types(arg)
    return out


def _non_finite(obj: Any, loc: tuple) -> tuple[tuple, float] | None:
    """The first inf or nan anywhere in a validated scenario (`1e400` or `.inf` in YAML), inside
    models, lists (faults, SLOs) and mappings (prices, policies) alike."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (loc, obj)
    if isinstance(obj, BaseModel):
        items: Any = ((name, getattr(obj, name)) for name in type(obj).model_fields)
    elif isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list | tuple):
        items = enumerate(obj)
    else:
        return None
    for key, value in items:
        found = _non_finite(value, (*loc, key))
        if found:
            return found
    return None
