"""What a user's config mistake becomes: one line naming the key or file, never a traceback.

jsonargparse and Lightning report mistakes as multi-line union errors, usage text or exceptions
from deep inside the Trainer; the training CLI turns each into ``error: <one line>`` (exit 2).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import itertools
import re
import textwrap
import zipfile
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, NoReturn

import yaml
from lightning.pytorch.cli import LightningArgumentParser

from lightning_app.errors import UserError, fail, yaml_error

UNION_MISMATCH = "Does not validate against any of the Union subtypes"
BASES = {"model": "LightningModule", "data": "LightningDataModule"}


TYPED_ARGS: ContextVar[tuple[str, ...]] = ContextVar("TYPED_ARGS", default=())
"""The command line being parsed, so that an error names a flag as the user typed it."""


class OneLineErrorParser(LightningArgumentParser):
    """A user's config mistake is one line naming the key or file, not usage plus a traceback."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:  # jsonargparse's own switch: raise ArgumentError instead
            super().error(message, ex)
        fail(parse_error_line(message, TYPED_ARGS.get()) or f"{one_line(message)} (see --help)")


def one_line(message: str) -> str:
    """A parser's message as one line: said plainly when it is a value of the wrong type or a
    class that cannot be used (:func:`parse_error_line`), else its first three lines joined."""
    plain = parse_error_line(message)
    if plain is not None:
        return plain
    return " ".join([line.strip() for line in str(message).splitlines() if line.strip()][:3])


def parse_error_line(message: str, typed: Sequence[str] = ()) -> str | None:
    """jsonargparse's many-line complaint about one key, as ``<flag>: expected <what it
    accepts>, got '<value>'``; None when the message is not one this understands.

    A value refused inside the model's or DataModule's arguments (``--model.hidden_size=abc``,
    or ``hidden_size: abc`` in a config file or a sweep) reaches jsonargparse's top level as a
    union mismatch of the ``model`` key; its inner cause names the real key. ``typed`` is the
    command line: a key given there as ``--key`` is named as the flag, else as the config key.
    """
    found = re.match(r'\s*Parser key "([\w.]+)":\s*(.*)', str(message), re.S)
    if found is None:
        return None
    key, rest = found.groups()
    if key in BASES:
        problem = class_path_problem(message)
        if problem is not None:
            return _named(problem, typed)
    inner = re.search(
        r"Problem with given class_path '[\w.]+':\s*(Parser key \"[\w.]+\":.*?)"
        r"(?:\n\s*- Expected a <class 'NoneType'>|\n\s*Given value type|$)",
        rest,
        re.S,
    )
    if inner is not None:  # a class's argument: its own parser's complaint, under ``key``
        nested = re.sub(r'Parser key "', f'Parser key "{key}.', inner.group(1), count=1)
        return parse_error_line(textwrap.dedent(nested), typed)
    accepted = _accepted_types(rest)
    value = re.search(r"(?:Given value|Got value): (.*)", rest)
    if not accepted or value is None:
        return None
    return f"{_flag(key, typed)}: expected {accepted}, got {value.group(1).strip()!r}"


def _flag(key: str, typed: Sequence[str]) -> str:
    """``--key`` when the command line has that flag, else the config key itself."""
    flag = f"--{key}"
    return flag if any(a == flag or a.startswith(f"{flag}=") for a in typed) else key


def _named(problem: str, typed: Sequence[str]) -> str:
    """``problem`` (which starts with a key) with that key named as the flag typed, if it was."""
    key, sep, rest = problem.partition(":")
    if not sep or " " in key:
        return problem
    return f"{_flag(key, typed)}:{rest}"


_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true/false",
    "list": "a list",
    "dict": "a mapping",
    "NoneType": "null",
}
_TYPE_ORDER = ["an integer", "a number", "a string", "a list", "a mapping", "true/false", "null"]


def _accepted_types(rest: str) -> str | None:
    """What a key accepts, in words: its union's subtypes, or the one type it expected."""
    subtypes = re.search(r"Subtypes: \[(.*)\]\s*\n", rest)
    if subtypes is not None:
        names = _split_top_level(subtypes.group(1))
    else:
        expected = re.search(r"Expected an? (.+?)\. Got value", rest)
        if expected is None:
            return None
        names = [expected.group(1)]
    words: list[str] = []
    choices: list[str] = []
    for name in names:
        literal = re.fullmatch(r"typing\.Literal\[(.*)\]", name.strip())
        if literal is not None:
            choices += [c.strip("'\"") for c in _split_top_level(literal.group(1))]
            continue
        bare = re.sub(r"^<class '(.*)'>$", r"\1", name.strip())
        bare = re.sub(r"\[.*\]$", "", bare).rsplit(".", 1)[-1]
        word = _TYPE_WORDS.get(bare, f"a {bare}")
        if word not in words:
            words.append(word)
    words.sort(key=lambda w: _TYPE_ORDER.index(w) if w in _TYPE_ORDER else len(_TYPE_ORDER))
    if choices:
        words.insert(0, "one of " + ", ".join(dict.fromkeys(choices)))
    return " or ".join(words) if words else None


def _split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside any brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def class_path_problem(message: str) -> str | None:
    """The parse error of a ``model``/``data`` class, said plainly: a class that cannot be
    imported or is not a LightningModule/DataModule, or an argument its ``__init__`` lacks."""
    key = re.search(r'Parser key "(model|data)"', message)
    if key is None:
        return None
    name = key.group(1)
    path = re.search(r"Expected a path but (\S+) either not accessible or invalid", message)
    if path is not None:
        return _unusable_class(name, path.group(1))
    option = re.search(
        r"Problem with given class_path '([\w.]+)':\s+Option '(\w+)' is not accepted", message
    )
    if option is not None:
        class_path, arg = option.groups()
        known = _init_args(class_path)
        close = difflib.get_close_matches(arg, known, n=1)
        hint = f" (did you mean {name}.{close[0]}?)" if close else ""
        return f"{name}.{arg} is not an argument of {class_path}{hint}"
    return None


def _unusable_class(name: str, class_path: str) -> str:
    module, _, attr = class_path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr) if module else None
    except ImportError as err:
        return f"{name}: cannot import {class_path}: {err}"
    except AttributeError:
        close = difflib.get_close_matches(attr, _classes_in(module, name), n=3)
        hint = f" (did you mean {' or '.join(f'{module}.{c}' for c in close)}?)" if close else ""
        return f"{name}: {module} has no {attr}{hint}"
    if obj is None:
        return f"{name}: {class_path!r} is not a class path (package.module.Class)"
    return f"{name}: {class_path} is not a {BASES[name]}"


def _classes_in(module: str, name: str) -> list[str]:
    """The LightningModule (``model``) or LightningDataModule (``data``) classes ``module``
    offers, for a did-you-mean."""
    import lightning as L

    base = L.LightningModule if name == "model" else L.LightningDataModule
    found = vars(importlib.import_module(module))
    return sorted(k for k, v in found.items() if isinstance(v, type) and issubclass(v, base))


def _init_args(class_path: str) -> list[str]:
    module, _, attr = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    except (ImportError, AttributeError, TypeError, ValueError):
        return []


def refused_class_message(err: BaseException) -> str:
    """One line for a class that refused its config values: the user's own ``UserError`` if the
    class raised one, else which kind of class, and its first complaint."""
    lines = str(err).splitlines()
    subtypes = next((x for x in lines if x.startswith("Subtypes:")), "")
    first = re.search(r"\[(?:list\[)?<?(?:class ')?([\w.]+)", subtypes)
    kind = first.group(1).rsplit(".", 1)[-1] if first else "class"
    errors = [x.strip()[2:] for x in lines if x.startswith("  - ")]
    reason = errors[0] if errors else lines[0]
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, UserError):
            if kind in BASES.values():  # the model's or data's own message names its key
                return str(cause)
            reason = str(cause)
            break
        cause = cause.__cause__ or cause.__context__
    return f"a {kind} in the config could not be built: {reason}"


def trainer_problem(err: Exception) -> str:
    """Lightning's own check of a Trainer argument (``max_epochs`` must be ...), naming the key."""
    text = one_line(str(err))
    arg = re.search(r"`(\w+)`", text)
    return f"trainer.{arg.group(1)}: {text}" if arg else f"trainer: {text}"


def check_config_files(args: list[str]) -> None:
    """Name the file when a ``--config`` YAML is malformed (jsonargparse's message does not)."""
    paths = [(a, b) for a, b in itertools.pairwise(args) if a in ("-c", "--config")]
    paths += [("--config", a.split("=", 1)[1]) for a in args if a.startswith("--config=")]
    for flag, path in paths:
        try:
            with open(path) as file:
                yaml.safe_load(file)
        except IsADirectoryError:
            fail(f"{flag}: {path} is a folder, not a config file")
        except OSError:
            continue  # jsonargparse reports missing files with the key's name
        except yaml.YAMLError as err:
            fail(yaml_error(path, err))


def checkpoint_problem(ckpt_path: Any) -> str | None:
    """Why ``--ckpt_path`` is not a checkpoint file torch can load, if it is not one."""
    if ckpt_path is None or ckpt_path in ("last", "best", "hpc", "registry"):
        return None  # Lightning's own names for checkpoints it finds
    if "://" in str(ckpt_path):
        return None  # a remote file: Lightning's fsspec reads it
    path = Path(str(ckpt_path))
    if not path.exists():
        return f"ckpt_path: {path} does not exist"
    if path.is_dir():
        return f"ckpt_path: {path} is a folder, not a checkpoint file"
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive since torch 1.6
        return f"ckpt_path: {path} is not a checkpoint (not a file written by torch.save)"
    return None
