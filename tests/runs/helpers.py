"""Specs of the session's W&B runs and small helpers shared by the run-history tests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def cli_config(hidden_size: int = 128, seed: int = 0, lr: float = 0.001) -> dict[str, Any]:
    """A resolved LightningCLI config as the training code logs it (nested)."""
    return {
        "seed_everything": seed,
        "model": {"hidden_size": hidden_size, "num_layers": 2, "learning_rate": lr},
        "data": {"batch_size": 100, "root": "data/"},
        "trainer": {"max_epochs": 4, "accelerator": "cpu", "devices": 1},
    }


# name -> spec (see wandb_writer.py); the name is how tests refer to a run.
RUN_SPECS: dict[str, dict[str, Any]] = {
    "noise0": {
        "group": "noise",
        "tags": ["cpu", "seeds"],
        "config": cli_config(seed=0),
        "epochs": 4,
        "acc0": 0.50,
    },
    "noise1": {
        "group": "noise",
        "tags": ["cpu", "seeds"],
        "config": cli_config(seed=1),
        "epochs": 4,
        "acc0": 0.52,
    },
    "noise2": {
        "group": "noise",
        "tags": ["cpu", "seeds"],
        "config": cli_config(seed=2),
        "epochs": 4,
        "acc0": 0.49,
        # WandbLogger.log_hyperparams updates the config after init
        "config_update": {"model": {"hidden_size": 128, "dropout": 0.1}},
    },
    "signal64": {
        "group": "signal",
        "tags": ["cpu", "grid"],
        "config": cli_config(hidden_size=64),
        "epochs": 4,
        "acc0": 0.40,
    },
    "failed": {
        "group": "signal",
        "tags": ["grid"],
        "config": cli_config(hidden_size=32),
        "epochs": 2,
        "acc0": 0.30,
        "exit_code": 1,
    },
    "nohistory": {"group": "empty", "config": cli_config(), "epochs": 0},
    "lossonly": {
        "group": "odd",
        "config": cli_config(),
        "epochs": 3,
        "acc0": 0.2,
        "metrics": ["train/loss"],
    },
    "nonfinite": {
        "group": "odd",
        "config": cli_config(),
        "epochs": 2,
        "acc0": 0.6,
        "extra_rows": [
            {"train/loss": "nan", "epoch": 2, "trainer/global_step": 30},
            {"val/acc": "inf", "trainer/global_step": 30},
            {"test/acc": "-inf", "epoch": 2, "trainer/global_step": 30},
        ],
    },
    # a run killed after epoch 2 and resumed from its checkpoint: two files, one run id
    "resumed_a": {
        "group": "resumed",
        "id": "resumed01",
        "config": cli_config(),
        "epochs": 3,
        "acc0": 0.3,
        "exit_code": 1,
    },
    "resumed_b": {
        "group": "resumed",
        "id": "resumed01",
        "resume": "allow",
        "config": cli_config(),
        "start_epoch": 2,
        "epochs": 3,
        "acc0": 0.35,
    },
    "long": {
        "group": "long",
        "config": cli_config(),
        "epochs": 150,
        "acc0": 0.1,
        "metrics": ["train/loss", "val/acc", "test/acc", "lr-Adam", "grad_norm"],
    },
}


@dataclass(frozen=True)
class WandbRuns:
    """The session's offline runs: the ``wandb/`` root, and each spec name's id and file."""

    root: Path
    ids: dict[str, str]

    def file(self, name: str) -> Path:
        run_id = self.ids[name]
        # wandb adds "-1" to the folder of a second part started within the same second
        matches = sorted(
            self.root.glob(f"offline-run-*-{run_id}*/run-{run_id}.wandb"),
            key=lambda p: (len(p.parent.name), p.parent.name),  # same length until "-1"
        )
        if len(matches) > 1:  # a resumed run: its parts in start order, named by spec order
            parts = [n for n, i in self.ids.items() if i == run_id]
            return matches[parts.index(name)]
        (match,) = matches
        return match

    def run_dir(self, name: str) -> Path:
        return self.file(name).parent


def tree_snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Path -> (sha256, size, mtime_ns) of every file below ``root`` (links not followed)."""
    snap = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            snap[str(path.relative_to(root))] = ("link-or-dir", 0, 0)
            continue
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            digest = "unreadable"
        stat = path.lstat()
        snap[str(path.relative_to(root))] = (digest, stat.st_size, stat.st_mtime_ns)
    return snap


def record_offsets(data: bytes) -> list[tuple[int, str]]:
    """(offset, kind) of every record of a whole ``.wandb`` file, kind as ``"history"``,
    ``"run"``...: where to cut a real file to damage it at a known place."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    from lightning_app.runs.wandb_log import BLOCK_LEN, CHUNK_HEADER_LEN, FILE_HEADER_LEN

    found = []
    pos, start, pending = FILE_HEADER_LEN, FILE_HEADER_LEN, b""
    while pos + CHUNK_HEADER_LEN <= len(data):
        if BLOCK_LEN - pos % BLOCK_LEN < CHUNK_HEADER_LEN:
            pos += BLOCK_LEN - pos % BLOCK_LEN
            continue
        _, length, chunk_type = struct.unpack_from("<IHB", data, pos)
        if chunk_type == 0:  # zero fill at the end
            break
        if chunk_type in (1, 2):  # FULL or FIRST: a record starts here
            start, pending = pos, b""
        pending += data[pos + CHUNK_HEADER_LEN : pos + CHUNK_HEADER_LEN + length]
        pos += CHUNK_HEADER_LEN + length
        if chunk_type in (1, 4):  # FULL or LAST: the record is whole
            record = pb.Record()
            record.ParseFromString(pending)
            found.append((start, str(record.WhichOneof("record_type"))))
    return found


def first_record_offset(data: bytes, kind: str) -> int:
    """Byte offset of the first ``kind`` record of a whole ``.wandb`` file."""
    return next(offset for offset, found in record_offsets(data) if found == kind)
