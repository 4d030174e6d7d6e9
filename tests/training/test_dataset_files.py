"""Preparing dataset files: decompressing Debian's Fashion-MNIST atomically, also when two sweep
runs prepare the same data folder at once."""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path
from typing import IO

import pytest

import lightning_app.data.datasets as datasets
from lightning_app.data.datasets import IDX_FILES, _gunzip, load_fashion_mnist
from lightning_app.errors import UserError
from tests.training.idx import write_mnist


def gzipped(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data))
    path.chmod(0o644)
    return path


def test_two_runs_decompressing_at_once_write_separate_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytes(range(256)) * 64
    source = gzipped(tmp_path / "images.gz", data)
    target = tmp_path / "raw" / "images"
    target.parent.mkdir()
    both_writing = threading.Barrier(2, timeout=30)
    written: list[str] = []
    copy = datasets.shutil.copyfileobj

    def copy_then_wait(src: IO[bytes], dst: IO[bytes]) -> None:
        copy(src, dst)
        written.append(str(dst.name))
        both_writing.wait()  # both runs are mid-write before either replaces the target

    monkeypatch.setattr(datasets.shutil, "copyfileobj", copy_then_wait)
    errors: list[BaseException] = []

    def prepare() -> None:
        try:
            _gunzip(source, target)
        except BaseException as err:  # reported by the main thread, where pytest sees it
            errors.append(err)

    threads = [threading.Thread(target=prepare) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(set(written)) == 2, f"both runs wrote into one file: {written}"
    assert target.read_bytes() == data
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask, "a plain open's mode, not 0600"
    assert [p.name for p in target.parent.iterdir()] == ["images"], "no temporary file is left"


def test_a_corrupt_archive_is_named_and_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "images.gz"
    source.write_bytes(b"not gzip at all")
    target = tmp_path / "raw" / "images"
    target.parent.mkdir()
    with pytest.raises(UserError, match=r"images\.gz: cannot decompress"):
        _gunzip(source, target)
    assert not any(target.parent.iterdir())


def test_fashion_mnist_is_prepared_from_debians_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = write_mnist(tmp_path / "made", folder="FashionMNIST", n_train=60, n_test=20)
    debian = tmp_path / "debian"
    debian.mkdir()
    for name in IDX_FILES:
        gzipped(debian / f"{name}.gz", (raw / name).read_bytes())
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", debian)
    data = tmp_path / "data"
    train_x, train_y, test_x, _ = load_fashion_mnist(data)  # no download: the files are there
    assert train_x.shape == (60, 28, 28) and len(train_y) == 60 and len(test_x) == 20
    prepared = data / "FashionMNIST" / "raw"
    assert sorted(p.name for p in prepared.iterdir()) == sorted(IDX_FILES)
    for name in IDX_FILES:
        assert (prepared / name).read_bytes() == (raw / name).read_bytes()
