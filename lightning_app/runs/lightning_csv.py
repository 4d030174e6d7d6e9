"""Read Lightning CSVLogger folders (``<save_dir>/<name>/version_<n>/metrics.csv``).

So that users of other loggers can run the analyses: each folder holding a ``metrics.csv`` is one
run. Its config is LightningCLI's ``config.yaml`` when the folder has one (the full resolved config,
read as dotted ``model.hidden_size`` keys), else ``hparams.yaml`` (the module's saved
hyperparameters, keys as written there). The run id is the folder's path below the source, its
group the logger ``name`` folder above ``version_<n>``. CSV logs record no run state: every run
reads as ``finished``.

A folder this tool's ``validate``/``test``/``predict`` logged into holds that command's config as
``config-<command>.yaml`` (``LogConfigCallback``): it is an evaluation's results, not a training
history, and is skipped like the W&B readers skip evaluation runs (:class:`CsvEvaluation`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from lightning_app.runs.epoch_join import EPOCH_KEY, join_epochs_frame
from lightning_app.runs.flat_config import flatten_config
from lightning_app.runs.runset import EVALUATION_JOB_TYPES, Run

METRICS_FILE = "metrics.csv"
CONFIG_FILES = ("config.yaml", "hparams.yaml")
_VERSION_DIR = re.compile(r"^version_\w+$")
# config-validate.yaml, config-test-2.yaml... as lightning_app.cli.config_filename names them
_EVALUATION_CONFIG = re.compile(
    rf"^config-({'|'.join(sorted(EVALUATION_JOB_TYPES))})(-\d+)?\.yaml$"
)


class CsvRunError(Exception):
    """A CSVLogger folder that cannot be read; the message is the one-line reason."""


class CsvEvaluation(CsvRunError):
    """A CSVLogger folder written by an evaluation command; listed as skipped, never read."""


def evaluation_command(run_dir: Path) -> str | None:
    """The evaluation command (``validate``...) whose config sits in ``run_dir``, if any."""
    for path in sorted(run_dir.glob("config-*.yaml")):
        found = _EVALUATION_CONFIG.match(path.name)
        if found:
            return found.group(1)
    return None


def find_metrics_files(root: Path) -> list[Path]:
    """Every ``metrics.csv`` under ``root`` (recursively), in path order."""
    if root.is_file():
        return [root]
    return sorted(root.rglob(METRICS_FILE))


def read_csv_run(
    metrics_path: Path, root: Path, *, epoch_key: str = EPOCH_KEY
) -> tuple[Run, list[str]]:
    """One CSVLogger folder as a run, with warnings; raises :class:`CsvRunError` with a reason."""
    run_dir = metrics_path.parent
    command = evaluation_command(run_dir)
    if command:
        raise CsvEvaluation(f"a {command} run: evaluation results, not a training history")
    try:
        raw = pd.read_csv(metrics_path)
    except pd.errors.EmptyDataError:
        raise CsvRunError("empty metrics.csv (no header, no rows)") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise CsvRunError(f"cannot read metrics.csv: {_one_line(err)}") from None
    warnings: list[str] = []
    numeric: dict[str, pd.Series] = {}
    for column in raw.columns:
        values = pd.to_numeric(raw[column], errors="coerce")
        garbage = int((values.isna() & raw[column].notna()).sum())
        if garbage == int(raw[column].notna().sum()) and garbage:
            warnings.append(f"column {column!r} is not numeric; ignored")
            continue
        if garbage:
            warnings.append(f"column {column!r} has {garbage} non-numeric values, read as missing")
        numeric[str(column)] = values.astype(float)
    if epoch_key not in numeric and "step" not in numeric:
        raise CsvRunError(f"metrics.csv has no {epoch_key!r} or 'step' column")
    joined = join_epochs_frame(pd.DataFrame(numeric), epoch_key=epoch_key)
    if joined.frame.shape[1] == 0 or joined.frame.empty:
        raise CsvRunError(
            f"no history: metrics.csv has {len(raw)} rows and no metric values with an epoch"
        )
    if joined.unplaced_rows:
        warnings.append(f"{joined.unplaced_rows} rows have no {epoch_key!r} or step; ignored")
    if joined.bad_epoch_rows:
        warnings.append(f"{joined.bad_epoch_rows} rows have a non-integer {epoch_key!r}; ignored")
    values = joined.frame.to_numpy()
    for metric, count in zip(joined.frame.columns, (np.isinf(values)).sum(axis=0), strict=True):
        if count:
            warnings.append(f"{metric} has {int(count)} inf values (kept as logged)")

    config, config_warning = _read_config(run_dir)
    if config_warning:
        warnings.append(config_warning)
    run_id = run_id_for(run_dir, root)
    group = run_dir.parent.name if _VERSION_DIR.match(run_dir.name) else None
    run = Run(
        id=run_id,
        name=run_id,
        group=group or None,
        state="finished",
        config=flatten_config(config),
        history=joined.frame,
    )
    return run, warnings


def _read_config(run_dir: Path) -> tuple[dict[str, Any], str | None]:
    for name in CONFIG_FILES:
        path = run_dir / name
        if not path.is_file():
            continue
        try:
            loaded = yaml.load(path.read_text(), Loader=_LenientLoader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            return {}, f"{name} unreadable, config left empty: {_one_line(err)}"
        if loaded is None:
            return {}, None
        if not isinstance(loaded, dict):
            return {}, f"{name} is not a mapping; config left empty"
        return loaded, None
    return {}, None


class _LenientLoader(yaml.SafeLoader):
    """SafeLoader that reads Python-object tags (``!!python/...`` from ``yaml.dump`` of hparams)
    as their plain YAML content instead of failing or executing anything."""


def _construct_tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_LenientLoader.add_multi_constructor("tag:yaml.org,2002:python/", _construct_tagged)
_LenientLoader.add_multi_constructor("!", _construct_tagged)


def run_id_for(run_dir: Path, root: Path) -> str:
    """The folder's path below the source, unique per run."""
    if root.is_file():
        root = root.parent
    if run_dir == root:
        return run_dir.name
    try:
        return run_dir.relative_to(root).as_posix()
    except ValueError:
        return run_dir.as_posix()


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
