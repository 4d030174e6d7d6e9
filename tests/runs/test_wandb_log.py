"""The .wandb framing layer: real files from wandb-core, truncation, damage, block boundaries."""

from __future__ import annotations

import random
import re
import struct

import pytest

from lightning_app.runs.wandb_log import (
    BLOCK_LEN,
    BadHeaderError,
    LogProblems,
    check_header,
    frame_payloads,
    iter_payloads,
)


def payloads(data: bytes) -> tuple[list[bytes], LogProblems]:
    problems = LogProblems()
    return [bytes(p) for p in iter_payloads(data, problems)], problems


@pytest.mark.parametrize("name", ["noise0", "long"])
def test_reframing_real_files_reproduces_them_byte_for_byte(wandb_runs, name):
    # wandb-core wrote these; decoding to payloads and framing again must give the same bytes,
    # which pins down header, CRC seed, chunk types and block padding against the real writer.
    data = wandb_runs.file(name).read_bytes()
    records, problems = payloads(data)
    assert problems.describe() is None
    assert frame_payloads(records) == data
    if name == "long":
        assert len(data) > 3 * BLOCK_LEN  # the file really spans several blocks


def chunk_kinds(data: bytes) -> list[tuple[int, int]]:
    """(type, length) of every chunk, and (0, n) for n bytes of block padding."""
    kinds, pos = [], 7
    while pos < len(data):
        left = BLOCK_LEN - pos % BLOCK_LEN
        if left < 7:
            kinds.append((0, left))
            pos += left
            continue
        _, length, kind = struct.unpack_from("<IHB", data, pos)
        kinds.append((kind, length))
        pos += 7 + length
    return kinds


@pytest.mark.parametrize("left", range(10))
@pytest.mark.parametrize("second", [0, 1, 100, 3 * BLOCK_LEN + 5])
def test_frame_then_scan_round_trips_at_block_edges(left, second):
    # the first record leaves exactly `left` bytes in the first block: < 7 means zero padding,
    # 7 means a chunk header fits but no data (an empty FIRST chunk, or an empty FULL record)
    rng = random.Random(left * 1000 + second)
    first = rng.randbytes(BLOCK_LEN - 2 * 7 - left)
    records = [first, rng.randbytes(second), rng.randbytes(BLOCK_LEN - 3)]
    data = frame_payloads(records)
    kinds = chunk_kinds(data)
    if 0 < left < 7:
        assert kinds[1] == (0, left)
    elif left == 7:
        assert kinds[1] == ((1, 0) if second == 0 else (2, 0))
    got, problems = payloads(data)
    assert got == records
    assert problems.describe() is None


def test_every_truncation_yields_a_prefix_and_says_where(wandb_runs):
    data = wandb_runs.file("noise1").read_bytes()
    full, _ = payloads(data)
    for cut in range(7, len(data)):
        got, problems = payloads(data[:cut])
        assert got == full[: len(got)]
        ends_on_boundary = frame_payloads(got) == data[:cut]
        assert (problems.truncated_at is None) == ends_on_boundary, cut


def test_damaged_chunk_skips_to_next_block_and_keeps_the_rest(wandb_runs):
    data = bytearray(wandb_runs.file("long").read_bytes())
    full, _ = payloads(bytes(data))
    offset = 100  # inside the first block's records
    data[offset] ^= 0xFF
    got, problems = payloads(bytes(data))
    assert problems.damaged and problems.skipped_bytes > 0
    assert "damaged data at byte" in (problems.describe() or "")
    # records before the damage and after the next block are all there, in order
    assert got[0] == full[0]
    assert got[-1] == full[-1]
    assert len(full) // 2 < len(got) < len(full)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file (0 bytes)"),
        (b":W&", "file too short for a W&B header (3 bytes)"),
        (b"PK\x03\x04\x14\x00\x00\x00", "not a W&B run file"),
        (struct.pack("<4sHB", b":W&B", 0xBEE1, 1), "unsupported W&B log format version 1"),
    ],
)
def test_bad_headers_give_one_line_reasons(data, reason):
    with pytest.raises(BadHeaderError, match=re.escape(reason)) as err:
        check_header(data)
    assert "\n" not in str(err.value)


def test_zero_filled_tail_is_the_end_not_damage():
    data = frame_payloads([b"a", b"bc"]) + bytes(500)
    got, problems = payloads(data)
    assert got == [b"a", b"bc"]
    assert problems.describe() is None


def test_cut_inside_a_chunk_header_starting_with_zero_bytes_is_a_truncation():
    # found by the every-offset test: a CRC's low byte can be 0, so a 1-byte tail of zeros is
    # the start of a real chunk header, not zero fill
    record = next(
        str(i).encode() for i in range(10_000) if frame_payloads([b"a", str(i).encode()])[15] == 0
    )
    data = frame_payloads([b"a", record])
    got, problems = payloads(data[:16])
    assert got == [b"a"]
    assert problems.truncated_at == 15
