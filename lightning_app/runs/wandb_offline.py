"""Read W&B run files (``offline-run-*/run-<id>.wandb``) straight from disk.

Each file is decoded in-process with wandb's own protobuf classes (no ``wandb sync``, no
subprocess per run): the ``run`` record gives id, name, group, sweep id, tags and the initial
config; ``config`` records update it; ``history`` records are the logged rows; an ``exit`` record
says the run ended (exit code 0: finished, otherwise failed). A file without an exit record belongs
to a run that is still writing (modified within ``running_grace_s``) or was killed (crashed); every
row written before the cut is kept.

Several files can hold the same run id. Copies with the same start time are the same run copied or
synced twice: the most complete one is read, the others are listed as skipped. Files with different
start times are the parts of a resumed run (``wandb.init(id=..., resume="allow")`` writes a new
file per process): they are merged in start order, a later part's values replacing an earlier
part's for the epochs both logged (training resumed from a checkpoint redoes them).

Only training goes into a history. A file whose job type is an evaluation (``validate``, ``test``,
``predict``: this tool gives those commands a run of their own, linked by ``trained_run``) is
listed as skipped with the run it evaluates. Older versions logged evaluations into the trained
run's own id; such a part is left out of the merge, with a warning on the training run, so the
final model's numbers never overwrite epoch 0.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from wandb.proto import wandb_internal_pb2 as pb

from lightning_app.runs.epoch_join import EPOCH_KEY, JoinedHistory, join_epochs
from lightning_app.runs.flat_config import flatten_config
from lightning_app.runs.runset import EVALUATION_JOB_TYPES, Run, RunWarning, SkippedRun
from lightning_app.runs.wandb_log import (
    FILE_HEADER_LEN,
    BadHeaderError,
    LogProblems,
    iter_payloads,
)

RUN_FILE = re.compile(r"^run-(?P<id>.+)\.wandb$")
RUN_DIR = re.compile(r"^(offline-)?run-")
RUNNING_GRACE_S = 300.0
"""A file without an exit record modified this recently is a live run, not a crashed one."""

_STATE_RANK = {"finished": 0, "failed": 1, "running": 2, "crashed": 3}


@dataclass(frozen=True)
class RunHeader:
    """What the ``run`` record says, enough to filter before reading the history."""

    id: str
    name: str
    group: str | None
    sweep_id: str | None
    tags: tuple[str, ...]
    job_type: str = ""
    start_time: float = 0.0
    """Seconds since the epoch when the writing process started the run."""


@dataclass
class FileResult:
    """One file read: a run, or the reason it was skipped; and any warnings about it."""

    path: Path
    run: Run | None = None
    start_time: float = 0.0
    skipped: str | None = None
    filtered_out: bool = False
    warnings: list[str] = field(default_factory=list)
    evaluation: tuple[str, str] | None = None
    """For an evaluation's file: its run id and job type (never merged into a history)."""
    group: str | None = None
    """The run's group, when its run record was read (even if the run is skipped)."""
    text_metrics: dict[str, int] = field(default_factory=dict)
    """Metrics the run logged as text at least once, with how many times (never numbers)."""
    empty_part_of: str | None = None
    """For a file with no history (or no run record yet): its run id, so that a resumed run's
    killed part is folded into the run its other parts make rather than listed as skipped."""


def find_run_files(root: Path) -> list[Path]:
    """Every ``run-*.wandb`` under ``root`` (a folder, searched recursively, or one file).

    A run directory is not descended into (its ``files/`` may hold large media), and symlinked
    folders such as ``latest-run`` are not followed, so no run is found twice through them.
    """
    if root.is_file():
        return [root]
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = [f for f in filenames if RUN_FILE.match(f)]
        found.extend(Path(dirpath, f) for f in here)
        if here and RUN_DIR.match(os.path.basename(dirpath)):
            dirnames.clear()
        else:
            dirnames.sort()
    return sorted(found)


def read_run_file(
    path: Path,
    *,
    keep: Callable[[RunHeader], bool] = lambda header: True,
    epoch_key: str = EPOCH_KEY,
    running_grace_s: float = RUNNING_GRACE_S,
    now: float | None = None,
) -> FileResult:
    """Decode one ``.wandb`` file; never raises for bad data, the reason goes in the result."""
    result = FileResult(path)
    try:
        stat = path.stat()
        with path.open("rb") as fh:
            data = fh.read()
    except OSError as err:
        result.skipped = f"cannot read file: {err.strerror or err}"
        return result
    problems = LogProblems()
    try:
        decoded = _decode(iter_payloads(data, problems), keep, fallback_id=_file_run_id(path))
    except BadHeaderError as err:
        result.skipped = str(err)
        return result
    if decoded is None:
        result.filtered_out = True
        return result
    header, config, rows, exit_code, undecodable, nonfinite, text = decoded
    if header is None:
        result.empty_part_of = _file_run_id(path)  # the writer died before the run record
        result.skipped = _no_run_record_reason(len(data), problems)
        return result
    result.group = header.group
    result.text_metrics = text
    if header.job_type in EVALUATION_JOB_TYPES:
        result.evaluation = (header.id, header.job_type)
        trained = config.get("trained_run")
        of = f" of run {trained}" if trained else ""
        result.skipped = f"a {header.job_type} run{of}: evaluation results, not a training history"
        return result

    if exit_code is not None:
        state = "finished" if exit_code == 0 else "failed"
    else:
        age = (time.time() if now is None else now) - stat.st_mtime
        state = "running" if age < running_grace_s else "crashed"

    joined = join_epochs(rows, epoch_key=epoch_key)
    if joined.frame.empty or joined.frame.shape[1] == 0:
        result.skipped = _no_history_reason(rows, state, epoch_key, problems)
        result.empty_part_of = header.id
        return result

    result.warnings += _read_warnings(problems, undecodable, joined, nonfinite, epoch_key)
    result.start_time = header.start_time
    result.run = Run(
        id=header.id,
        name=header.name or header.id,
        group=header.group,
        sweep_id=header.sweep_id,
        tags=header.tags,
        state=state,
        config=flatten_config(config),
        history=joined.frame,
    )
    return result


def _no_run_record_reason(size: int, problems: LogProblems) -> str:
    """Why a file without a run record is skipped (damage, or a writer that died early)."""
    truncated = ""
    if problems.truncated_at is not None and not problems.damaged:
        truncated = (
            f"truncated .wandb file: it ends inside a record at byte {problems.truncated_at}; "
        )
    if problems.damaged:
        return f"no run record: {problems.describe()}"
    if size <= FILE_HEADER_LEN:
        return (
            f"empty run file (only its {size}-byte header): the process stopped, or is "
            "still starting, before wandb wrote its first records (wandb-core buffers them "
            "for up to ~15 s)"
        )
    return (
        f"{truncated}no run record in its {size} bytes: the process stopped before wandb wrote "
        "the run's start"
    )


def _read_warnings(
    problems: LogProblems,
    undecodable: int,
    joined: JoinedHistory,
    nonfinite: Mapping[str, int],
    epoch_key: str,
) -> list[str]:
    """What the reader noticed in a run it kept: damage, undecodable or unplaced rows, NaN."""
    warnings = []
    damage = problems.describe()
    if damage:
        cut = "truncated .wandb file: " if problems.truncated_at is not None else ""
        warnings.append(f"{cut}{damage}; {len(joined.frame)} epochs read")
    if undecodable:
        warnings.append(f"{undecodable} records could not be decoded and were ignored")
    if joined.unplaced_rows:
        warnings.append(
            f"{joined.unplaced_rows} logged rows have no {epoch_key!r} and no global step "
            "matching an epoch; ignored"
        )
    if joined.bad_epoch_rows:
        warnings.append(f"{joined.bad_epoch_rows} rows have a non-integer {epoch_key!r}; ignored")
    for metric, count in nonfinite.items():
        warnings.append(f"{metric} has {count} NaN/inf values (kept as logged)")
    return warnings


def _text_warnings(result: FileResult, run_id: str, where: str) -> list[RunWarning]:
    """A metric logged as text is named as text, so an analysis short of runs says why."""
    return [
        RunWarning(
            run_id,
            f"{where}: {metric} was logged as text {count} time(s); read as missing",
            not_numbers=metric,
        )
        for metric, count in result.text_metrics.items()
    ]


def combine_same_run(results: Sequence[FileResult], root: Path) -> list[FileResult]:
    """One result per run id: duplicate copies skipped, parts of a resumed run merged (see the
    module docstring). The returned list keeps the order of ``results``."""
    by_id: dict[str, list[FileResult]] = {}
    for res in results:
        if res.run is not None:
            by_id.setdefault(res.run.id, []).append(res)
    for res in results:
        if res.evaluation is not None and res.evaluation[0] in by_id:
            _fold_evaluation_part(res, by_id[res.evaluation[0]][0], root)
    for files in by_id.values():
        if len(files) < 2:
            continue
        parts: dict[float, list[FileResult]] = {}
        for res in files:
            parts.setdefault(res.start_time, []).append(res)
        kept = []
        for copies in parts.values():
            copies.sort(key=_completeness)
            best = copies[0]
            kept.append(best)
            for other in copies[1:]:
                _skip_as_copy_of(other, best, root)
        if len(kept) > 1:
            _merge_resumed(sorted(kept, key=lambda r: r.start_time), root)
    # A part without history of a run read from its other parts (killed before wandb wrote an
    # epoch or even the run record, then resumed) is not a skipped run: the run is there; say
    # so on the run instead.
    read = {res.run.id: res for res in results if res.run is not None}
    for res in results:
        owner = read.get(res.empty_part_of or "")
        if owner is not None and res.skipped is not None:
            owner.warnings.append(f"{_rel(res.path, root)}: a part without history ({res.skipped})")
            res.skipped = None
    return list(results)


def _fold_evaluation_part(part: FileResult, training: FileResult, root: Path) -> None:
    """An evaluation logged into a trained run's own id (older versions): a warning, not data."""
    assert part.evaluation is not None
    training.warnings.append(
        f"{_rel(part.path, root)}: a {part.evaluation[1]} part logged into this run's id "
        "was left out of its training history"
    )
    part.skipped = None


def _skip_as_copy_of(other: FileResult, best: FileResult, root: Path) -> None:
    assert best.run is not None
    other.run = None
    other.warnings = []
    other.skipped = (
        f"duplicate run id: another copy of this run, {_rel(best.path, root)}, is read "
        f"instead ({best.run.state}, {len(best.run.history)} epochs)"
    )


def _merge_resumed(parts: list[FileResult], root: Path) -> None:
    """Fold the parts of a resumed run into the first one (in start order); empty the others."""
    first, last = parts[0], parts[-1]
    runs = [p.run for p in parts if p.run is not None]
    history = pd.concat([r.history for r in runs]).groupby(level=0, sort=True).last()
    config: dict[str, Any] = {}
    for run in runs:
        config.update(run.config)
    assert first.run is not None and last.run is not None
    spans = ", ".join(
        f"{_rel(p.path, root)} (epochs {_span(p.run.history.index)})" for p in parts if p.run
    )
    warnings = [w for p in parts for w in p.warnings]
    first.run = Run(
        id=last.run.id,
        name=last.run.name,
        group=last.run.group,
        sweep_id=last.run.sweep_id,
        tags=last.run.tags,
        state=last.run.state,
        config=config,
        history=history,
    )
    first.warnings = [f"resumed run: merged {len(parts)} files: {spans}", *warnings]
    for part in parts[1:]:
        part.run = None
        part.warnings = []
        part.skipped = None  # merged, not skipped


def _span(index: pd.Index) -> str:
    return f"{index.min()}..{index.max()}" if len(index) else "none"


def to_skipped(result: FileResult, root: Path) -> SkippedRun:
    reason = f"{_rel(result.path, root)}: {result.skipped}"
    return SkippedRun(_file_run_id(result.path), reason, group=result.group)


def to_warnings(result: FileResult, root: Path) -> list[RunWarning]:
    run_id = result.run.id if result.run is not None else _file_run_id(result.path)
    where = _rel(result.path, root)
    return [RunWarning(run_id, f"{where}: {w}") for w in result.warnings] + _text_warnings(
        result, run_id, where
    )


# -- decoding ----------------------------------------------------------------------------------
_Decoded = tuple[
    RunHeader | None,
    dict[str, Any],
    list[dict[str, float]],
    int | None,
    int,
    dict[str, int],
    dict[str, int],
]


def _decode(
    payloads: Iterator[memoryview | bytes],
    keep: Callable[[RunHeader], bool],
    fallback_id: str,
) -> _Decoded | None:
    """Records -> (header, nested config, history rows, exit code, undecodable, non-finite and
    text counts per metric);
    ``None`` as soon as the run record shows the run is filtered out."""
    header: RunHeader | None = None
    config: dict[str, Any] = {}
    rows: list[dict[str, float]] = []
    exit_code: int | None = None
    undecodable = 0
    nonfinite: dict[str, int] = {}
    text: dict[str, int] = {}
    record = pb.Record()  # type: ignore[attr-defined]  # generated protobuf class
    for payload in payloads:
        try:
            record.ParseFromString(payload)
        except Exception:  # protobuf's DecodeError; a record whose CRC matched but cannot parse
            undecodable += 1
            continue
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row = {}
            for item in record.history.item:
                value = _item_value(item)
                if value is not None:
                    key = item.key or ".".join(item.nested_key)
                    row[key] = value
                    if not math.isfinite(value) and key[:1] != "_":
                        nonfinite[key] = nonfinite.get(key, 0) + 1
                elif _is_text(item):
                    key = item.key or ".".join(item.nested_key)
                    text[key] = text.get(key, 0) + 1
            rows.append(row)
        elif kind == "run":
            run = record.run
            _apply_config(config, run.config)
            header = RunHeader(
                id=run.run_id or fallback_id,
                name=run.display_name,
                group=run.run_group or None,
                sweep_id=run.sweep_id or None,
                tags=tuple(run.tags),
                job_type=run.job_type,
                start_time=run.start_time.seconds + run.start_time.nanos / 1e9,
            )
            if not keep(header):
                return None
        elif kind == "config":
            _apply_config(config, record.config)
        elif kind == "exit":
            exit_code = record.exit.exit_code
    return header, config, rows, exit_code, undecodable, nonfinite, text


def _item_value(item: Any) -> float | None:
    """A history item as a float; ``None`` for text, media, tables and other non-numbers."""
    text = item.value_json
    if text:
        try:
            return float(text)  # JSON numbers, and W&B's "NaN" / "Infinity" / "-Infinity"
        except ValueError:
            pass
        try:
            value = json.loads(text)
        except ValueError:
            return None
    else:
        which = item.WhichOneof("value")
        if which is None or which in ("none", "text", "json"):
            return None
        value = getattr(item, which)
    if isinstance(value, (bool, int, float)):
        return float(value)
    return None


def _is_text(item: Any) -> bool:
    """Whether a history item that is not a number is plain text (a JSON string)."""
    if not item.value_json:
        return item.WhichOneof("value") == "text"
    try:
        return isinstance(json.loads(item.value_json), str)
    except ValueError:
        return False


def _apply_config(config: dict[str, Any], record: Any) -> None:
    for item in record.update:
        path = [item.key] if item.key else list(item.nested_key)
        try:
            value = json.loads(item.value_json) if item.value_json else None
        except ValueError:
            value = item.value_json
        target = config
        for part in path[:-1]:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = target[part] = {}
            target = nxt
        if path:
            target[path[-1]] = value
    for item in record.remove:
        path = [item.key] if item.key else list(item.nested_key)
        parent: Any = config
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path:
            parent.pop(path[-1], None)


def _no_history_reason(
    rows: list[dict[str, float]], state: str, epoch_key: str, problems: LogProblems
) -> str:
    if not rows and problems.truncated_at is not None and not problems.damaged:
        return (
            f"truncated .wandb file: it ends inside a record at byte {problems.truncated_at}, "
            "before any metrics"
        )
    if not rows and problems.damaged:
        return f"damaged .wandb file, no metrics read: {problems.describe()}"
    if not rows:
        ended = {"crashed": " before it was killed", "running": " yet"}.get(state, "")
        return f"no history: the run logged no metrics{ended} (state {state})"
    return (
        f"no usable history: {len(rows)} logged rows, none with an {epoch_key!r} or a global "
        "step that maps to one"
    )


def _completeness(res: FileResult) -> tuple[int, int, int, str]:
    assert res.run is not None
    try:
        size = res.path.stat().st_size
    except OSError:
        size = 0
    return (_STATE_RANK.get(res.run.state, 9), -len(res.run.history), -size, str(res.path))


def _file_run_id(path: Path) -> str:
    match = RUN_FILE.match(path.name)
    return match.group("id") if match else path.name


def _rel(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root)
    except ValueError:
        return str(path)
    return str(rel) if str(rel) != "." else path.name
