"""The sweep port (``lightning_app/sweeps/spec.py``) against W&B's own sweep config schema.

The schema is W&B's (``sweeps`` 0.2.0, vendored in ``data/`` with its licence). A distribution,
a setting or a top-level key that W&B adds or drops makes one of these tests fail, naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from lightning_app.errors import UserError
from lightning_app.sweeps.spec import DISTRIBUTIONS, METHODS, TOP_LEVEL_KEYS, parse_sweep

DATA = Path(__file__).with_name("data")
SCHEMA: dict[str, Any] = json.loads((DATA / "wandb-sweeps-schema.json").read_text())
REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "configs" / "sweeps").rglob("*.yaml"))

# Keys W&B's server and `wandb sweep` accept that the 0.2.0 schema predates (wandb 0.31's
# wandb/sdk/launch/sweeps and the server's own checks): the port accepts them too.
NEWER_THAN_SCHEMA = {"run_cap", "job", "image_uri", "metrics", "scheduler"}


def schema_distributions() -> dict[str, set[str]]:
    """Each distribution the schema names, with the settings it allows (``distribution`` apart)."""
    found: dict[str, set[str]] = {}

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties", {})
            enum = props.get("distribution", {}).get("enum") if isinstance(props, dict) else None
            if enum:
                for name in enum:
                    found.setdefault(name, set()).update(set(props) - {"distribution"})
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(SCHEMA["definitions"])
    return found


def test_every_distribution_of_the_schema_and_no_other() -> None:
    assert set(schema_distributions()) == set(DISTRIBUTIONS)


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_each_distribution_takes_the_schemas_settings(name: str) -> None:
    required, optional = DISTRIBUTIONS[name]
    assert {*required, *optional} == schema_distributions()[name]


def test_methods_and_top_level_keys_follow_the_schema() -> None:
    assert set(METHODS) == set(SCHEMA["properties"]["method"]["enum"])
    schema_keys = set(SCHEMA["properties"])
    assert schema_keys <= set(TOP_LEVEL_KEYS), schema_keys - set(TOP_LEVEL_KEYS)
    assert set(TOP_LEVEL_KEYS) - schema_keys == NEWER_THAN_SCHEMA


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_sweep_file_is_valid_for_wandb(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    known = {k: v for k, v in raw.items() if k not in NEWER_THAN_SCHEMA}
    jsonschema.validate(known, SCHEMA)


CASES = [
    {"values": [1, 2]},
    {"value": 3},
    {"min": 1, "max": 4},
    {"min": 0.1, "max": 0.5},
    {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25},
    {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
    {"distribution": "normal", "mu": 0, "sigma": 2},
    {"distribution": "q_beta", "a": 2, "b": 3, "q": 0.1},
    {"values": [1, 2], "probabilities": [0.5, 0.5]},
    {"distribution": "uniform", "min": 0, "max": 1, "q": 2},  # q is not uniform's
    {"distribution": "int_uniform", "min": 1},  # max missing
    {"distribution": "log_uniformm", "min": 1, "max": 2},
    {"value": 1, "values": [1]},
]


@pytest.mark.parametrize("settings", CASES, ids=lambda s: json.dumps(s, sort_keys=True))
def test_the_port_accepts_a_parameter_exactly_when_wandb_does(settings: dict[str, Any]) -> None:
    raw = {"method": "random", "parameters": {"model.x": settings}, "command": ["${args}"]}
    try:
        jsonschema.validate(raw, SCHEMA)
        wandb_accepts = True
    except jsonschema.ValidationError:
        wandb_accepts = False
    try:
        parse_sweep(raw, Path("case.yaml"))
        port_accepts = True
    except UserError:
        port_accepts = False
    assert port_accepts == wandb_accepts
