"""One-line option errors for the ``analyze`` and ``export`` parsers.

jsonargparse reports a bad option as the whole usage text followed by a message that names the
parser key (``signal_effects.error``), not the flag typed (``--signal-effects.error``), and a Union
type as several lines of subtypes. :class:`OneLineOptionParser` turns every such message into
``error: <flag>: expected <what the option accepts>; got <value>`` (exit 2), reading what the
option accepts from its type, so a new option or plugin needs no message of its own.
"""

from __future__ import annotations

import difflib
import itertools
import re
import types
import typing
from collections.abc import Sequence
from typing import Any, NoReturn

import yaml
from jsonargparse import ArgumentParser, Namespace

from lightning_app.errors import fail, yaml_error

_KEY = re.compile(r'^Parser key "([^"]+)":\s*(.*)$', re.DOTALL)
_GIVEN = re.compile(r"(?:Given value|Got value):\s*(.*)$", re.MULTILINE)
_CONFIG_MESSAGES = ("Problems parsing config", "Option '", "Unexpected config")
_PLAIN = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "text",
}


class OneLineOptionParser(ArgumentParser):
    """An ``ArgumentParser`` whose every error is one line naming the flag as the user typed it."""

    _argv: list[str]

    def parse_args(  # type: ignore[override]  # jsonargparse's own signature
        self, args: Sequence[str] | None = None, namespace: Namespace | None = None, **kwargs: Any
    ) -> Namespace:
        self._argv = [str(a) for a in (args or [])]
        return super().parse_args(args, namespace, **kwargs)

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:  # jsonargparse's own switch: raise ArgumentError instead
            super().error(message, ex)
        fail(option_error_line(self, message, getattr(self, "_argv", [])))


def option_error_line(parser: ArgumentParser, message: str, argv: Sequence[str]) -> str:
    """jsonargparse's ``message`` about ``argv`` as one line naming the flag and what it takes."""
    text = str(message).strip()
    key = _KEY.match(text)
    config = _config_file(argv)
    if config and (text.startswith(_CONFIG_MESSAGES) or (key and key.group(1) == "config")):
        return _config_problem(config, text)
    if key is not None:
        return _bad_value(parser, key.group(1), key.group(2), argv)
    if text.startswith("unrecognized arguments:"):
        return _unrecognized(parser, text.split(":", 1)[1].split(), argv)
    missing = re.match(r"the following arguments are required: (.+)", text)
    if missing is not None:
        flags = [_flag_of(parser, k.strip(), argv) for k in missing.group(1).split(",")]
        verb = "is" if len(flags) == 1 else "are"
        return f"{', '.join(flags)} {verb} required (see --help)"
    arg = re.match(r"argument ([^:\s/]+)(?:/\S+)?: expected one argument", text)
    if arg is not None:
        return f"{arg.group(1)}: expected a value after it"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def accepted_values(hint: Any) -> str:
    """What a type hint accepts, said plainly: ``one of signal, noise, pooled``, ``an integer``."""
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    words: list[str] = []
    choices: list[str] = []
    for option in options:
        if option is type(None):
            continue
        if typing.get_origin(option) is typing.Literal:
            choices += [str(v) for v in typing.get_args(option)]
        elif option in _PLAIN:
            words.append(_PLAIN[option])
        elif typing.get_origin(option) in (list, tuple, Sequence):
            words.append("a list")
        else:
            words.append(getattr(option, "__name__", str(option)))
    if choices:
        words.append(f"one of {', '.join(choices)}" if len(choices) > 1 else repr(choices[0]))
    return " or ".join(words) or "no value"


def _bad_value(parser: ArgumentParser, key: str, problem: str, argv: Sequence[str]) -> str:
    flag = _flag_of(parser, key, argv)
    where = flag if _typed(flag, argv) else _config_key(flag, argv)
    action = _action(parser, key)
    hint = getattr(action, "_typehint", None)
    given = _GIVEN.search(problem)
    if hint is not None and given is not None:
        return f"{where}: expected {accepted_values(hint)}; got {given.group(1).strip()!r}"
    first = next((line.strip() for line in problem.splitlines() if line.strip()), "invalid value")
    return f"{where}: {first}"


def _unrecognized(parser: ArgumentParser, extra: list[str], argv: Sequence[str]) -> str:
    if not extra:
        return "unrecognized arguments (see --help)"
    first = extra[0]
    if not first.startswith("-"):
        index = list(argv).index(first) if first in argv else -1
        before = argv[index - 1] if index > 0 else ""
        switch = _action(parser, _dest_of(parser, before)) if before.startswith("--") else None
        if switch is not None and switch.nargs == 0:
            return f"{before}: takes no value (a switch); got {first!r}"
        return f"unexpected argument {first!r}: options are given as --name VALUE (see --help)"
    name = first.split("=", 1)[0]
    known = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]}?" if close else " (see --help)"
    return f"{name}: unknown option{hint}"


def _action(parser: ArgumentParser, key: str | None) -> Any:
    return next((a for a in parser._actions if key and a.dest == key), None)


def _dest_of(parser: ArgumentParser, flag: str) -> str | None:
    name = flag.split("=", 1)[0]
    return next((a.dest for a in parser._actions if name in a.option_strings), None)


def _flag_of(parser: ArgumentParser, key: str, argv: Sequence[str]) -> str:
    """The option string of parser key ``key``, as typed in ``argv`` when it is there."""
    action = _action(parser, key)
    strings = [s for s in getattr(action, "option_strings", []) if s.startswith("--")]
    for string in strings:
        if _typed(string, argv):
            return string
    return strings[0] if strings else f"--{key}"


def _typed(flag: str, argv: Sequence[str]) -> bool:
    return any(a == flag or a.startswith(f"{flag}=") for a in argv)


def _config_key(flag: str, argv: Sequence[str]) -> str:
    """``--config FILE: key`` when a value came from a config file, else the flag itself."""
    config = _config_file(argv)
    return f"--config {config}: {flag[2:]}" if config else flag


def _config_file(argv: Sequence[str]) -> str | None:
    """The last ``--config`` file in ``argv`` (the one whose values win), if any."""
    files = [b for a, b in itertools.pairwise(argv) if a == "--config"]
    files += [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    return files[-1] if files else None


def _config_problem(config: str, text: str) -> str:
    """A config file jsonargparse could not use: malformed YAML (with its line), an unknown key,
    or not a mapping of options."""
    try:
        with open(config) as file:
            loaded = yaml.safe_load(file)
    except yaml.YAMLError as err:
        return f"--config {yaml_error(config, err)}"
    except OSError as err:
        return f"--config {config}: cannot read it ({err.strerror or err})"
    if not isinstance(loaded, dict):
        return f"--config {config}: expected a mapping of options (option: value), not {loaded!r}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), text)
    return f"--config {config}: {first}"


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)
