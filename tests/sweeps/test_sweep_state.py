"""The run-state store: atomic rewrites (even under SIGKILL) and one runner per sweep folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lightning_app.errors import UserError
from lightning_app.sweeps.state import Attempt, StateStore, sweep_lock, write_json_durable
from tests.sweeps.conftest import app_env

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from lightning_app.sweeps.state import write_json_durable
    path = Path(sys.argv[1])
    i = 0
    while True:
        i += 1
        write_json_durable(path, {"runs": {}, "i": i, "pad": "x" * (i % 5000)})
    """
)


def test_readers_and_a_sigkilled_writer_only_ever_see_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_json_durable(path, {"runs": {}, "i": 0, "pad": ""})
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], env=app_env(), stderr=subprocess.PIPE
    )
    seen: set[int] = set()
    deadline = time.monotonic() + 4
    try:
        while time.monotonic() < deadline and writer.poll() is None and len(seen) < 200:
            data = json.loads(path.read_text())  # never a partial file
            assert len(data["pad"]) == data["i"] % 5000
            seen.add(data["i"])
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert writer.returncode == -signal.SIGKILL, writer.stderr.read() if writer.stderr else ""
    assert len(seen) > 5, "the writer made no progress"
    data = json.loads(path.read_text())  # whole after the kill, too
    assert len(data["pad"]) == data["i"] % 5000
    StateStore(tmp_path)  # a new store clears the temporary file a kill may leave
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failed_write_leaves_the_old_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(tmp_path)
    store.get("0000-a").attempts.append(Attempt(number=1, started=1.0))
    store.get("0000-a").status = "running"
    store.save()
    before = (tmp_path / "state.json").read_text()

    real_write = Path.write_text

    def torn_write(self: Path, text: str, *args: object, **kwargs: object) -> int:
        real_write(self, text[:25])  # part of the new state reaches the disk, then:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", torn_write)
    store.get("0000-a").status = "done"
    with pytest.raises(OSError):
        store.save()
    assert (tmp_path / "state.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    monkeypatch.undo()
    reread = StateStore(tmp_path)
    assert reread.status("0000-a") == "running"
    assert reread.runs["0000-a"].attempts[0].started == 1.0
    assert reread.status("0001-never-started") == "pending"


def test_a_second_runner_cannot_take_a_live_sweep_folder(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\n"
            "from lightning_app.sweeps.state import sweep_lock\n"
            "with sweep_lock(Path(sys.argv[1])):\n    print('locked', flush=True)\n"
            "    time.sleep(60)\n",
            str(tmp_path),
        ],
        env=app_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with (
            pytest.raises(UserError, match=rf"in use by another sweep runner \(pid {holder.pid}\)"),
            sweep_lock(tmp_path),
        ):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)  # the kernel drops the lock with the process
        holder.wait()
    with sweep_lock(tmp_path):
        pass


def test_unreadable_state_is_reported_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(UserError, match="unreadable sweep state"):
        StateStore(tmp_path)
    assert (tmp_path / "state.json").read_text() == "{not json"


def test_rewritten_files_get_a_plain_opens_permissions(tmp_path: Path) -> None:
    """Sweep state, tidy tables and the API cache are shared files: 0666 less the umask, as any
    file the user writes, not the 0600 of a private temporary file."""
    path = tmp_path / "state.json"
    umask = os.umask(0o027)
    try:
        write_json_durable(path, {"runs": {}})
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
