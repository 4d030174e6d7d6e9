"""``sweep FILE --repair``: a damaged ``state.json`` (cut at every byte, or corrupted) is refused in
one line naming the flag, and ``--repair`` rebuilds it from the run folders: finished runs stay
done, a half-written one is moved aside as the runner moves an interrupted attempt and runs again,
every run ends done exactly once, and no file is deleted or changed."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from lightning_app.errors import UserError
from lightning_app.sweeps.layout import SweepFolder
from lightning_app.sweeps.repair import repair_state
from lightning_app.sweeps.state import StateStore
from tests.conftest import InProcess
from tests.sweeps.conftest import sweep_file
from tests.sweeps.fakes import SUCCEED, use_children

KEYS = ("0000-seed_everything=1", "0001-seed_everything=2", "0002-seed_everything=3")
HALF = KEYS[2]
WANDB = Path("wandb") / "offline-run-20260101_000000-abc" / "run-abc.wandb"


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture
def finished(
    tmp_path: Path, sweep_cli: Callable[..., InProcess], monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path]:
    """A sweep of three trivial runs, the last made half-written: its folder has a log and a W&B
    file but no exit record, as when the runner died before it saw the run end."""
    use_children(monkeypatch, lambda request: SUCCEED)
    path = sweep_file(tmp_path, {"seed_everything": {"values": [1, 2, 3]}}, name="rep")
    result = sweep_cli(str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    root = tmp_path / "sweeps" / "rep"
    for key in KEYS:
        assert json.loads((root / key / "exit.json").read_text())["exit_code"] == 0
    (root / HALF / "exit.json").unlink()
    (root / HALF / WANDB).parent.mkdir(parents=True)
    (root / HALF / WANDB).write_bytes(b":W&B\x00half")
    return path, root


def cuts(state: bytes) -> list[bytes]:
    """The state file cut at every byte offset (but the one that only drops the last newline)."""
    return [state[:n] for n in range(len(state)) if state[:n].strip() != state.strip()]


def corruptions(state: bytes) -> list[bytes]:
    flipped = bytearray(state)
    flipped[len(state) // 2] ^= 0xFF
    return [
        bytes(flipped),
        b"\x00" * len(state),
        b"[]",
        b'{"runs": []}',
        b'{"runs": {"x": {"status": "done"}}}',
        b'{"runs": {"x": {"status": "done", "attempts": [{"number": 1, "bogus": 2}]}}}',
    ]


def test_a_state_damaged_at_every_byte_is_refused_in_one_line_then_repaired(
    finished: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, root = finished
    monkeypatch.setattr("lightning_app.files._fsync", lambda path, flags: None)  # speed only
    state = (root / "state.json").read_bytes()
    original = files(root)
    variants = cuts(state)
    assert len(variants) == len(state) - 1
    variants += corruptions(state)
    work = tmp_path / "work"
    shutil.copytree(root, work)
    moved = f"attempts/{HALF}/1-interrupted"
    for number, data in enumerate(variants):
        (work / "state.json").write_bytes(data)
        with pytest.raises(UserError) as refused:
            StateStore(work)
        (line,) = str(refused.value).splitlines()
        assert line.endswith("rerun with --repair to rebuild it from the run folders"), line
        repaired = repair_state(SweepFolder(work), KEYS, now=1_700_000_000 + number)
        assert repaired.done == KEYS[:2] and repaired.moved == (HALF,) and not repaired.failed
        runs = StateStore(work).runs
        assert [runs[k].status for k in KEYS] == ["done", "done", "pending"]
        assert runs[HALF].attempts[-1].moved_to == f"attempts/{HALF}/1-interrupted"
        damaged_copy = repaired.damaged_copy
        assert damaged_copy is not None and damaged_copy.read_bytes() == data
        if number % 50 == 0:  # every file compared at every 50th variant (the moves are alike)
            after = files(work)
            for name, content in original.items():
                if name == "state.json":
                    continue
                if name.startswith(HALF + "/"):  # moved aside whole, its W&B file hidden
                    name = moved + name[len(HALF) :]
                    name = name + ".interrupted" if name.endswith(".wandb") else name
                assert after[name] == content, name
        # Undo the repair for the next variant (renames, cheaper than a fresh copy of the tree).
        damaged_copy.unlink()
        (work / moved / f"{WANDB}.interrupted").rename(work / moved / WANDB)
        (work / moved).rename(work / HALF)


def test_the_command_names_repair_and_repair_finishes_the_sweep_once(
    finished: tuple[Path, Path],
    sweep_cli: Callable[..., InProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, root = finished
    state = root / "state.json"
    state.write_bytes(state.read_bytes()[:57])
    before = files(root)
    launcher = use_children(monkeypatch, lambda request: SUCCEED)

    refused = sweep_cli(str(path))
    assert refused.returncode == 2 and not launcher.requests
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("error: sweeps/rep/state.json: unreadable") and "--repair" in line
    assert files(root) == before

    repaired = sweep_cli(str(path), "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "repaired state.json: 2 run(s) done, 0 failed, 1 half-written" in repaired.stdout
    assert [r.key for r in launcher.requests] == [HALF]  # finished runs never run twice
    runs = StateStore(root).runs
    assert all(runs[k].status == "done" for k in KEYS)
    assert [a.outcome for a in runs[HALF].attempts] == ["interrupted", "done"]
    assert runs[HALF].attempts[0].moved_to == f"attempts/{HALF}/1-interrupted"
    kept = root / "attempts" / HALF / "1-interrupted"
    assert (kept / f"{WANDB}.interrupted").read_bytes() == b":W&B\x00half"
    (damaged,) = root.glob("state.json.damaged-*")
    assert damaged.read_bytes() == before["state.json"]
    after = Counter(files(root).values())
    assert not Counter(before.values()) - after  # every file's content is still there

    again = sweep_cli(str(path), "--repair")  # a readable state: nothing to repair
    assert again.returncode == 0 and "nothing to repair" in again.stdout
    assert len(launcher.requests) == 1

    state.unlink()  # a deleted state file: rebuilt too, and no finished run runs again
    rebuilt = sweep_cli(str(path), "--repair")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "repaired state.json: 3 run(s) done, 0 failed, 0 half-written" in rebuilt.stdout
    assert len(launcher.requests) == 1 and all(
        r.status == "done" for r in StateStore(root).runs.values()
    )
