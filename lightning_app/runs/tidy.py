"""The tidy form of a RunSet: one row per run x epoch, as a DataFrame, CSV or Parquet file.

Columns, in order: ``id``, ``name``, ``group``, ``sweep_id``, ``tags``, ``state``, ``epoch``, one
column per metric (``test/acc``), then one per config key, prefixed ``config.`` so a config key can
never shadow a metric (``config.model.hidden_size``). Reading needs only ``id`` and ``epoch``;
missing meta columns default (name = id, state = finished), so a table written by any tool works.

Types survive a round trip: in Parquet, config columns keep their type when all values share one
(bool, int, float or str) and are stored as JSON text otherwise (lists, mixed types), listed in the
file's metadata; ``tags`` is a list column. In CSV, every config cell and ``tags`` are JSON, except
that plain strings are written bare (``adam``) -- a bare cell that is not valid JSON reads back as a
string, so hand-written CSVs need no quoting.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lightning_app.errors import UserError
from lightning_app.files import replacing
from lightning_app.runs.output_paths import check_output_file
from lightning_app.runs.runset import (
    CONFIG_PREFIX,
    EPOCH,
    ID,
    META_COLUMNS,
    RUN_STATES,
    TIDY_LEADING,
    Run,
    RunSet,
    RunWarning,
    SkippedRun,
    tidy_frame,
)

TIDY_SUFFIXES = (".csv", ".parquet")
_JSON_COLUMNS_KEY = b"lightning_app.json_columns"


def check_tidy_path(path: Path, flag: str = "") -> None:
    """Refuse a path ``write_tidy`` cannot write, before any work (``flag``: the option that gave
    it, e.g. ``--to``): an unknown suffix, a folder there, a missing or unwritable folder."""
    check_output_file(path, flag)
    if path.suffix.lower() not in TIDY_SUFFIXES:
        name = f"{flag} {path}" if flag else str(path)
        raise UserError(f"{name}: unknown table type {path.suffix!r}; use .parquet or .csv")


def write_tidy(runset: RunSet, path: Path) -> None:
    """Write ``runset`` as ``.parquet`` or ``.csv`` (by suffix), replacing the file atomically."""
    check_tidy_path(path)
    frame = tidy_frame(runset)
    with replacing(path) as tmp:
        if path.suffix.lower() == ".parquet":
            pq.write_table(_to_arrow(frame), tmp)
        else:
            _to_csv_frame(frame).to_csv(tmp, index=False)


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    json_columns: list[str] = []
    for name in frame.columns:
        values = frame[name]
        if name == "tags":
            arrays[name] = pa.array(values.tolist(), type=pa.list_(pa.string()))
        elif name == EPOCH:
            arrays[name] = pa.array(values.to_numpy(dtype=np.int64))
        elif name.startswith(CONFIG_PREFIX):
            py = values.tolist()
            arrow_type = _single_scalar_type(py)
            if arrow_type is None:
                json_columns.append(name)
                py = [None if v is None else json.dumps(_plain(v)) for v in py]
                arrow_type = pa.string()
            arrays[name] = pa.array(py, type=arrow_type)
        elif name in TIDY_LEADING:
            arrays[name] = pa.array(values.tolist(), type=pa.string())
        else:
            arrays[name] = pa.array(values.to_numpy(dtype=float))
    table = pa.table(arrays)
    return table.replace_schema_metadata({_JSON_COLUMNS_KEY: json.dumps(json_columns).encode()})


def _single_scalar_type(values: Sequence[Any]) -> pa.DataType | None:
    types = {type(v) for v in values if v is not None}
    if len(types) != 1:
        return None if types else pa.string()
    kind = types.pop()
    return {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}.get(kind)


def _to_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["tags"] = [json.dumps(list(t)) for t in frame["tags"]]
    for name in frame.columns:
        if name.startswith(CONFIG_PREFIX):
            out[name] = [encode_cell(v) for v in frame[name]]
    return out


def encode_cell(value: Any) -> str:
    """A config value as one CSV cell that :func:`decode_cell` turns back into the same value."""
    if _missing(value):
        return ""
    if isinstance(value, str):
        if value == "":
            return '""'
        try:
            json.loads(value)
        except ValueError:
            return value  # bare: reads back as this string
        return json.dumps(value)  # "1", "true", "[1]" as strings must stay strings
    return json.dumps(_plain(value))


def decode_cell(cell: str) -> Any:
    if cell == "":
        return None
    try:
        return json.loads(cell)
    except ValueError:
        return cell


# -- table -> runs ------------------------------------------------------------------------------
def read_tidy_runs(path: Path) -> tuple[list[Run], list[SkippedRun], list[RunWarning]]:
    """Runs in a tidy ``.csv``/``.parquet`` file, the runs skipped (with the reason) and
    warnings. Raises :class:`UserError` if the file is not a tidy table."""
    frame, json_columns = _read_table(path)
    for required in (ID, EPOCH):
        if required not in frame.columns:
            raise UserError(
                f"{path}: not a tidy run table (no {required!r} column); expected columns "
                "id, epoch, <metrics>, config.<key> (see `python -m lightning_app export`)"
            )
    csv = path.suffix.lower() == ".csv"
    skipped: list[SkippedRun] = []
    warnings: Warnings = []

    frame[ID] = frame[ID].astype(str)
    config_cols = [c for c in frame.columns if c.startswith(CONFIG_PREFIX)]
    metric_cols = [c for c in frame.columns if c not in TIDY_LEADING and c not in config_cols]
    frame = _whole_epochs(frame, warnings)
    history = _history(frame, _metrics(frame, metric_cols, path, warnings), warnings)

    firsts = frame.drop_duplicates(ID)
    _warn_inconsistent(frame, [c for c in (*META_COLUMNS, *config_cols) if c in frame], warnings)
    runs: list[Run] = []
    by_run = dict(iter(history.groupby(level=0, sort=False)))
    for _, row in firsts.iterrows():
        run_id = row[ID]
        state = _text(row.get("state")) or "finished"
        if state not in RUN_STATES:
            reason = f"unknown state {state!r} (expected one of {RUN_STATES})"
            skipped.append(SkippedRun(run_id, reason, group=_text(row.get("group"))))
            continue
        hist = by_run.get(run_id)
        if hist is None or hist.dropna(axis=1, how="all").empty:
            reason = "no history: no rows with an epoch and a metric value"
            text = _text_cells(frame, run_id, metric_cols)
            if text:
                reason = f"no history: its metric values are not numbers ({text})"
            skipped.append(SkippedRun(run_id, reason, group=_text(row.get("group"))))
            continue
        hist = hist.droplevel(0).dropna(axis=1, how="all")
        config = _row_config(row, config_cols, csv=csv, json_columns=json_columns)
        runs.append(
            Run(
                id=run_id,
                name=_text(row.get("name")) or run_id,
                group=_text(row.get("group")),
                sweep_id=_text(row.get("sweep_id")),
                tags=_tags(row.get("tags")),
                state=state,
                config=config,
                history=hist,
            )
        )
    return runs, skipped, warnings


Warnings = list[RunWarning]


def _whole_epochs(frame: pd.DataFrame, warnings: Warnings) -> pd.DataFrame:
    """The rows whose epoch is a whole number, the epoch as int64; the others are listed."""
    epochs = pd.to_numeric(frame[EPOCH], errors="coerce")
    bad_epoch = ~(np.isfinite(epochs) & (epochs == np.round(epochs)))
    for run_id, count in frame.loc[bad_epoch, ID].value_counts(sort=False).items():
        warnings.append(
            RunWarning(str(run_id), f"{count} rows without a whole-number epoch; ignored")
        )
    frame = frame.loc[~bad_epoch]
    frame[EPOCH] = epochs[~bad_epoch].astype(np.int64)
    return frame


def _metrics(
    frame: pd.DataFrame, metric_cols: list[str], path: Path, warnings: Warnings
) -> dict[str, np.ndarray]:
    """Each metric column as floats: a column of text is ignored, stray text cells are missing."""
    metrics: dict[str, np.ndarray] = {}
    for col in metric_cols:
        values = pd.to_numeric(frame[col], errors="coerce").astype(float)
        if pd.api.types.is_numeric_dtype(frame[col]):
            garbage = pd.Series(False, index=frame.index)
        else:
            text = frame[col].astype(str).str.strip().str.lower()
            garbage = values.isna() & frame[col].notna() & ~text.isin(["", "nan", "none"])
        if garbage.any() and garbage.sum() == (values.notna() | garbage).sum():
            message = f"{path.name}: column {col!r} is not numeric; ignored"
            warnings.append(RunWarning("", message, not_numbers=col))
            continue
        for run_id, rows in frame.loc[garbage].groupby(ID, sort=False):
            message = f"{col} has {len(rows)} non-numeric values, read as missing"
            warnings.append(RunWarning(str(run_id), message, not_numbers=col))
        metrics[col] = values.to_numpy()
    return metrics


def _history(
    frame: pd.DataFrame, metrics: dict[str, np.ndarray], warnings: Warnings
) -> pd.DataFrame:
    """The (id, epoch) x metric history; of rows sharing an epoch, the last values are kept."""
    keyed = pd.DataFrame(metrics, index=pd.MultiIndex.from_arrays([frame[ID], frame[EPOCH]]))
    dup = keyed.index.duplicated(keep=False)
    if dup.any():
        for run_id, count in pd.Series(keyed.index[dup].get_level_values(0)).value_counts().items():
            message = f"{count} rows share an epoch with another row; last values kept"
            warnings.append(RunWarning(str(run_id), message))
    history = keyed.groupby(level=[0, 1], sort=True).last()
    history.index = history.index.set_names([ID, EPOCH])
    return history


def _row_config(
    row: pd.Series, config_cols: list[str], *, csv: bool, json_columns: set[str]
) -> dict[str, Any]:
    """A run's config from its first row: CSV cells decoded, Parquet's JSON columns parsed."""
    config: dict[str, Any] = {}
    for col in config_cols:
        value = row[col]
        if csv:
            value = decode_cell(value)
        elif col in json_columns and isinstance(value, str):
            value = json.loads(value)
        if not _missing(value):
            config[col[len(CONFIG_PREFIX) :]] = _plain(value)
    return config


def _read_table(path: Path) -> tuple[pd.DataFrame, set[str]]:
    try:
        if path.suffix.lower() == ".parquet":
            table = pq.read_table(path)
            meta = table.schema.metadata or {}
            json_columns = set(json.loads(meta.get(_JSON_COLUMNS_KEY, b"[]")))
            frame = pd.DataFrame(
                {
                    name: (
                        table.column(name).to_numpy()
                        if pa.types.is_floating(table.column(name).type)
                        else pd.Series(table.column(name).to_pylist(), dtype=object)
                    )
                    for name in table.column_names
                }
            )
            return frame, json_columns
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        return frame, set()
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: empty file") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pa.ArrowException) as err:
        raise UserError(f"{path}: cannot read table: {' '.join(str(err).split())}") from None


def _warn_inconsistent(frame: pd.DataFrame, columns: list[str], warnings: Warnings) -> None:
    """Meta and config must be constant within a run; say where they are not (first row wins)."""
    if not columns or frame.empty:
        return
    hashable = pd.DataFrame({ID: frame[ID].to_numpy()}, index=frame.index)
    for c in columns:
        values = frame[c]
        if values.dtype == object:  # may hold lists (unhashable): compare their JSON text
            values = values.map(lambda v: json.dumps(_plain(v), default=str))
        hashable[c] = values
    counts = hashable.groupby(ID, sort=False).nunique()
    for run_id, row in counts.iterrows():
        varying = [c for c in columns if row[c] > 1]
        if varying:
            message = f"{', '.join(varying)} differ between rows; the first row's is used"
            warnings.append(RunWarning(str(run_id), message))


def _text_cells(frame: pd.DataFrame, run_id: str, metric_cols: list[str]) -> str:
    """A run's metric cells that are not numbers, one example per column (``acc: 'oops'``)."""
    rows = frame.loc[frame[ID] == run_id]
    found = []
    for col in metric_cols:
        cells = rows[col].dropna()
        bad = cells[pd.to_numeric(cells, errors="coerce").isna()]
        bad = bad[~bad.astype(str).str.strip().str.lower().isin(["", "nan", "none"])]
        if len(bad):
            found.append(f"{col}: {bad.iloc[0]!r}")
    return ", ".join(found)


def _tags(value: Any) -> tuple[str, ...]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ()
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(str(t) for t in value)
    text = str(value).strip()
    if not text:
        return ()
    if text.startswith("["):
        try:
            return tuple(str(t) for t in json.loads(text))
        except ValueError:
            pass
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _text(value: Any) -> str | None:
    if _missing(value):
        return None
    text = str(value)
    return text or None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    """numpy scalars/arrays -> Python values, so JSON and equality behave."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
