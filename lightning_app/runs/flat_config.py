"""Run configs as flat dotted keys (``model.hidden_size``), the names sweep files and analyses use.

W&B stores the config as nested JSON, sometimes with each top-level value wrapped as
``{"value": ..., "desc": ...}`` (the server's raw config, old ``config.yaml`` files) and with its
own bookkeeping under ``_wandb``. LightningCLI's resolved config nests subclass arguments as
``{"class_path": ..., "init_args": {...}}``; jsonargparse accepts ``--model.hidden_size`` for those
too, so ``init_args`` is dropped from the dotted name to keep one name per argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

INTERNAL_KEYS = frozenset({"_wandb", "wandb_version", "__path__"})


def flatten_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten a (possibly W&B-wrapped) nested run config into dotted keys.

    Top-level keys starting with ``_`` and W&B/jsonargparse bookkeeping keys are dropped; lists are
    kept as values; empty mappings produce no key.
    """
    flat: dict[str, Any] = {}
    for key, value in config.items():
        key = str(key)
        if key in INTERNAL_KEYS or key.startswith("_"):
            continue
        _flatten_into(flat, key, _unwrap(value))
    return flat


def _unwrap(value: Any) -> Any:
    """W&B's top-level ``{"value": v, "desc": d}`` wrapping -> ``v``."""
    if isinstance(value, Mapping) and "value" in value and set(value) <= {"value", "desc"}:
        return value["value"]
    return value


def _flatten_into(flat: dict[str, Any], prefix: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        flat[prefix] = value
        return
    for key, sub in value.items():
        key = str(key)
        if key in INTERNAL_KEYS:
            continue
        if key == "init_args" and "class_path" in value and isinstance(sub, Mapping):
            _flatten_into(flat, prefix, sub)
        else:
            _flatten_into(flat, f"{prefix}.{key}", sub)
