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
import zipfile
from pathlib import Path
from typing import Any, NoReturn

import yaml
from lightning.pytorch.cli import LightningArgumentParser

from lightning_app.errors import UserError, fail, yaml_error

UNION_MISMATCH = "Does not validate against any of the Union subtypes"
BASES = {"model": "LightningModule", "data": "LightningDataModule"}


class OneLineErrorParser(LightningArgumentParser):
    """A user's config mistake is one line naming the key or file, not usage plus a traceback."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:  # jsonargparse's own switch: raise ArgumentError instead
            super().error(message, ex)
        fail(class_path_problem(message) or f"{one_line(message)} (see --help)")


def one_line(message: str) -> str:
    """The first three non-empty lines of a parser's message, joined."""
    return " ".join([line.strip() for line in str(message).splitlines() if line.strip()][:3])


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
    value = re.search(
        r"Problem with given class_path '[\w.]+':\s+Parser key \"(\w+)\":\s+(.+)", message
    )
    if value is not None:  # a value of the wrong type for one of the class's arguments
        return f"{name}.{value.group(1)}: {value.group(2).strip()}"
    return None


def _unusable_class(name: str, class_path: str) -> str:
    module, _, attr = class_path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr) if module else None
    except ImportError as err:
        return f"{name}: cannot import {class_path}: {err}"
    except AttributeError:
        return f"{name}: {module} has no {attr}"
    if obj is None:
        return f"{name}: {class_path!r} is not a class path (package.module.Class)"
    return f"{name}: {class_path} is not a {BASES[name]}"


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
    paths = [b for a, b in itertools.pairwise(args) if a in ("-c", "--config")]
    paths += [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
    for path in paths:
        try:
            with open(path) as file:
                yaml.safe_load(file)
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
