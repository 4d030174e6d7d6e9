"""Read and check a sweep file written in W&B's own sweep format.

The same file goes to ``wandb sweep FILE`` (W&B's server runs it on many machines) and to
``python -m lightning_app sweep FILE`` (this machine), so the checks here follow W&B's sweep
config schema (the ``sweeps`` package's ``config/schema.json``): the same top-level keys, the same
parameter kinds and how a kind is inferred when ``distribution`` is left out. Whatever W&B would
reject is rejected here with one line naming the key, before anything runs.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lightning_app.errors import UserError, yaml_error

METHODS = ("grid", "random", "bayes", "custom")
LOCAL_METHODS = ("grid", "random")
TOP_LEVEL_KEYS = (
    "apiVersion",
    "kind",
    "controller",
    "description",
    "program",
    "job",
    "image_uri",
    "entity",
    "project",
    "method",
    "command",
    "name",
    "run_cap",
    "metric",
    "metrics",
    "scheduler",
    "early_terminate",
    "parameters",
)
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # W&B's propertyNames pattern

# Each distribution: (required keys, optional keys with W&B's defaults).
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "constant": (("value",), {}),
    "categorical": (("values",), {}),
    "categorical_w_probabilities": (("values", "probabilities"), {}),
    "int_uniform": (("min", "max"), {}),
    "uniform": (("min", "max"), {}),
    "q_uniform": (("min", "max"), {"q": 1.0}),
    "log_uniform": (("min", "max"), {}),
    "log_uniform_values": (("min", "max"), {}),
    "q_log_uniform": (("min", "max"), {"q": 1.0}),
    "q_log_uniform_values": (("min", "max"), {"q": 1.0}),
    "inv_log_uniform": (("min", "max"), {}),
    "inv_log_uniform_values": (("min", "max"), {}),
    "normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "log_normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_log_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "beta": ((), {"a": 1.0, "b": 1.0}),
    "q_beta": ((), {"a": 1.0, "b": 1.0, "q": 1.0}),
}
GRID_KINDS = ("constant", "categorical", "int_uniform", "q_uniform")  # as W&B's grid search


@dataclass(frozen=True)
class SweepParameter:
    """One swept config key: its W&B distribution and that distribution's settings."""

    name: str
    distribution: str
    config: Mapping[str, Any]

    def grid_values(self) -> list[Any]:
        """The values a grid takes, enumerated as W&B's grid search does."""
        cfg = self.config
        if self.distribution == "constant":
            return [cfg["value"]]
        if self.distribution == "categorical":
            return list(cfg["values"])
        if self.distribution == "int_uniform":
            return list(range(cfg["min"], cfg["max"] + 1))
        if self.distribution == "q_uniform":  # numpy.arange(min, max, q): max itself excluded
            return [cfg["min"] + i * cfg["q"] for i in range(self.grid_size())]
        raise ValueError(f"{self.distribution} has no grid values")

    def grid_size(self) -> int:
        """Number of grid values, computed without listing them (a huge grid stays cheap)."""
        cfg = self.config
        if self.distribution == "int_uniform":
            return int(cfg["max"] - cfg["min"] + 1)
        if self.distribution == "q_uniform":
            return max(0, math.ceil((cfg["max"] - cfg["min"]) / cfg["q"]))
        return len(self.grid_values())


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep file: what to run and how W&B would describe it."""

    path: Path
    raw: Mapping[str, Any]
    name: str
    method: str
    parameters: tuple[SweepParameter, ...]
    command: tuple[str, ...]
    program: str | None
    run_cap: int | None

    @property
    def digest(self) -> str:
        """Identity of the file's content (comments and key order do not count, nor a
        ``program`` the command does not use: ``wandb agent`` needs the key, no run sees it, and
        adding it must not orphan a sweep folder started without it)."""
        raw = self.raw
        if "${program}" not in self.command:
            raw = {key: value for key, value in raw.items() if key != "program"}
        return spec_digest(raw)


def spec_digest(raw: Mapping[str, Any]) -> str:
    text = json.dumps(raw, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def load_sweep(path: str | Path) -> SweepSpec:
    """Read ``path`` and check everything that can be checked without the training CLI."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such sweep file") from None
    except UnicodeDecodeError as err:
        raise UserError(
            f"{path}: not a text file in UTF-8 (byte {err.object[err.start]:#04x} at offset "
            f"{err.start})"
        ) from None
    except OSError as err:
        raise UserError(f"{path}: cannot read sweep file: {err.strerror or err}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UserError(yaml_error(path, err)) from None
    if raw is None:
        raise UserError(f"{path}: the sweep file is empty")
    if not isinstance(raw, dict):
        raise UserError(
            f"{path}: a sweep file is a YAML mapping with method, parameters and command, "
            f"not a {type(raw).__name__}"
        )
    return parse_sweep(raw, path)


def parse_sweep(raw: Mapping[str, Any], path: Path) -> SweepSpec:
    """Check a sweep file's content (already parsed from YAML)."""
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise UserError(f"{path}: unknown key {key!r}{_did_you_mean(str(key), TOP_LEVEL_KEYS)}")
    method = raw.get("method")
    if method is None:
        raise UserError(f"{path}: no method: add 'method: grid' or 'method: random'")
    if method not in METHODS:
        raise UserError(
            f"{path}: unknown method {method!r}; W&B sweeps know {', '.join(METHODS[:3])}"
            f"{_did_you_mean(str(method), METHODS)}"
        )
    if method not in LOCAL_METHODS:
        raise UserError(
            f"{path}: method {method!r} needs W&B's sweep server: run it with `wandb sweep "
            f"{path}` and `wandb agent`; this local runner runs grid and random sweeps"
        )
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UserError(
            f"{path}: name {name!r} must be letters, digits, '_', '.' or '-' (it is the W&B "
            "group and the sweep's folder name)"
        )
    run_cap = raw.get("run_cap")
    if run_cap is not None and (isinstance(run_cap, bool) or not isinstance(run_cap, int)):
        raise UserError(f"{path}: run_cap must be a positive integer, got {run_cap!r}")
    if run_cap is not None and run_cap < 1:
        raise UserError(f"{path}: run_cap must be a positive integer, got {run_cap}")
    program = raw.get("program")
    if program is not None and not isinstance(program, str):
        raise UserError(f"{path}: program must be a string, got {program!r}")
    params_raw = raw.get("parameters")
    if not params_raw:
        raise UserError(f"{path}: no parameters: a sweep needs at least one under 'parameters'")
    if not isinstance(params_raw, dict):
        raise UserError(f"{path}: parameters must be a mapping of config keys to settings")
    parameters = tuple(
        parse_parameter(str(name), params_raw[name], path) for name in sorted(params_raw)
    )
    command = raw.get("command")
    if command is None:
        raise UserError(
            f"{path}: no command: add e.g. command: [${{env}}, ${{interpreter}}, -m, "
            "lightning_app, fit, --config, configs/quickstart.yaml, ${args}]"
        )
    if not isinstance(command, list) or not command:
        raise UserError(f"{path}: command must be a non-empty list of strings")
    for item in command:
        if isinstance(item, (dict, list)) or item is None:
            raise UserError(f"{path}: command items must be strings, got {item!r}")
    return SweepSpec(
        path=path,
        raw=raw,
        name=name,
        method=str(method),
        parameters=parameters,
        command=tuple(str(item) for item in command),
        program=program,
        run_cap=run_cap,
    )


def parse_parameter(name: str, settings: Any, path: Path) -> SweepParameter:
    """One ``parameters`` entry, its distribution inferred the way W&B's schema does."""
    where = f"{path}: parameters.{name}"
    if not PARAM_NAME.match(name):
        raise UserError(f"{where}: not a valid parameter name (letters, digits, '_', '.', '-')")
    if not isinstance(settings, dict):
        raise UserError(
            f"{where}: must be a mapping such as {{values: [...]}} or {{value: ...}}, "
            f"got {settings!r}"
        )
    if "parameters" in settings:
        raise UserError(
            f"{where}: nested parameters are not supported; name the config key with dots "
            f"instead (e.g. {name}.hidden_size), which is how the training CLI spells it"
        )
    distribution = settings.get("distribution") or _infer_distribution(settings)
    if distribution not in DISTRIBUTIONS:
        raise UserError(
            f"{where}: unknown distribution {distribution!r}"
            f"{_did_you_mean(str(distribution), DISTRIBUTIONS)}"
        )
    required, optional = DISTRIBUTIONS[distribution]
    allowed = {*required, *optional, "distribution"}
    for key in settings:
        if key not in allowed:
            raise UserError(f"{where}: {key!r} is not a setting of distribution {distribution}")
    for key in required:
        if key not in settings:
            raise UserError(f"{where}: distribution {distribution} needs {key!r}")
    config = {**optional, **{k: v for k, v in settings.items() if k != "distribution"}}
    _check_numbers(where, distribution, config)
    return SweepParameter(name, distribution, config)


def _infer_distribution(settings: Mapping[str, Any]) -> str:
    """W&B's rule when ``distribution`` is absent: values, value, or min/max (int or float)."""
    if "values" in settings:
        return "categorical_w_probabilities" if "probabilities" in settings else "categorical"
    if "value" in settings:
        return "constant"
    if "min" in settings and "max" in settings:
        ints = all(_is_int(settings[k]) for k in ("min", "max"))
        return "int_uniform" if ints else "uniform"
    return "missing (give value, values, or min and max)"


def _check_numbers(where: str, distribution: str, cfg: dict[str, Any]) -> None:
    if "values" in cfg:
        values = cfg["values"]
        if not isinstance(values, list):
            raise UserError(f"{where}: values must be a list, got {values!r}")
        if not values:
            raise UserError(f"{where}: values is empty, so the sweep has no runs")
        seen: set[str] = set()
        for value in values:
            if _value_hash(value) in seen:  # W&B's grid would run it once
                raise UserError(f"{where}: values lists {value!r} twice")
            seen.add(_value_hash(value))
    if "probabilities" in cfg:
        probs = cfg["probabilities"]
        if not isinstance(probs, list) or len(probs) != len(cfg["values"]):
            raise UserError(f"{where}: probabilities must list one number per value")
        if any(not _is_number(p) or p < 0 for p in probs) or not math.isclose(sum(probs), 1.0):
            raise UserError(f"{where}: probabilities must be non-negative and sum to 1")
    for key in ("min", "max", "q", "mu", "sigma", "a", "b"):
        if key in cfg and not _is_number(cfg[key]):
            raise UserError(f"{where}: {key} must be a number, got {cfg[key]!r}")
    if distribution == "int_uniform" and not all(_is_int(cfg[k]) for k in ("min", "max")):
        raise UserError(f"{where}: int_uniform needs integer min and max")
    if "min" in cfg and cfg["min"] >= cfg["max"]:
        raise UserError(f"{where}: min {cfg['min']} is not less than max {cfg['max']}")
    if distribution.endswith("_values") and cfg["min"] <= 0:
        raise UserError(f"{where}: {distribution} needs min > 0, got {cfg['min']}")
    if "q" in cfg and cfg["q"] <= 0:
        raise UserError(f"{where}: q must be positive, got {cfg['q']}")
    for key in ("sigma", "a", "b"):
        if key in cfg and cfg[key] < 0:
            raise UserError(f"{where}: {key} must not be negative, got {cfg[key]}")


def _value_hash(value: Any) -> str:
    """Values W&B's grid treats as equal (it maps integral floats to ints) hash alike."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True, default=str)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
