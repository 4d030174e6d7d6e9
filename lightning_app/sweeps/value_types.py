"""What a sweep value must be, told from the key's own type, in words a sweep file's author reads.

The training parser checks a value of ``model.hidden_size`` against the whole ``model`` argument
(a Union of classes), so its complaint names the Union, not the key. Here the key's own type is
looked up (an option's type hint, or the selected model's or DataModule's ``__init__``
annotation) and the value is checked against that type alone, with jsonargparse, so the message
says ``expected an integer``. Only used to explain a value the training parser already refused.
"""

from __future__ import annotations

import importlib
import json
import types
import typing
from argparse import ArgumentError
from collections.abc import Sequence
from functools import cache
from typing import Any

from jsonargparse import ArgumentParser

CLASS_KEYS = ("model", "data")
"""Config sections whose keys are the ``__init__`` arguments of the class the config selects."""
WORDS: dict[Any, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    type(None): "null",
}


def key_type(parser: Any, config: Any, name: str) -> Any | None:
    """The type hint of ``name`` (``wandb.tags``, ``model.hidden_size``) in a subcommand's
    ``parser`` and parsed ``config``; None when it cannot be told."""
    action = parser._option_string_actions.get(f"--{name}")
    hint = getattr(action, "_typehint", None)
    if hint is not None:
        return hint
    section, _, arg = name.partition(".")
    if section not in CLASS_KEYS or not arg or "." in arg:
        return None
    try:
        class_path = config[section]["class_path"]
        module, _, attr = str(class_path).rpartition(".")
        cls = getattr(importlib.import_module(module), attr)
        return typing.get_type_hints(cls.__init__).get(arg)
    except Exception:  # an explanation only: the parser's own message stands
        return None


def is_list(hint: Any) -> bool:
    """A list-typed key (``list[str]``, ``list[str] | None``)."""
    if typing.get_origin(hint) in (list, Sequence):
        return True
    return _is_union(hint) and any(is_list(arg) for arg in typing.get_args(hint))


def describe(hint: Any) -> str:
    """The values ``hint`` accepts, as a sentence's object: ``an integer``, ``a list``..."""
    if hint in WORDS:
        return WORDS[hint]
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(str(choice) for choice in typing.get_args(hint))
    if is_list(hint) and not _is_union(hint):
        return "a list"
    if _is_union(hint):
        return " or ".join(dict.fromkeys(describe(arg) for arg in typing.get_args(hint)))
    return f"a {getattr(hint, '__name__', str(hint))}"


def describe_flag(hint: Any) -> str:
    """As :func:`describe`, without the null an optional flag takes when it is left out."""
    if _is_union(hint):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return " or ".join(dict.fromkeys(describe(arg) for arg in args))
    return describe(hint)


def accepts(hint: Any, text: str) -> bool:
    """Whether the training CLI takes ``--key=text`` for a key of type ``hint``."""
    try:
        _parser(hint).parse_args([f"--value={text}"])
    except (ArgumentError, TypeError, ValueError):
        return False
    return True


def list_advice(name: str, values: Sequence[Any]) -> str:
    """What to write instead of plain values for a list-typed key: one list per run."""
    lists = json.dumps([[v] if not isinstance(v, list) else v for v in values], ensure_ascii=False)
    return (
        f"{name} takes a list, and each value is passed as written (as `wandb agent` does); "
        f"for one per run write values: {lists}"
    )


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


@cache
def _parser(hint: Any) -> ArgumentParser:
    parser = ArgumentParser(exit_on_error=False, default_env=False)
    parser.add_argument("--value", type=hint)
    return parser


__all__ = ["accepts", "describe", "describe_flag", "is_list", "key_type", "list_advice"]
