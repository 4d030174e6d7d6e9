"""Framing of W&B's ``.wandb`` transaction log: the bytes between the file and its protobufs.

A ``.wandb`` file is a LevelDB-style log (https://github.com/google/leveldb/blob/main/doc/log_format.md)
with W&B's own file header::

    header := ident ":W&B" (4 bytes) | magic 0xBEE1 (uint16 LE) | version 0 (uint8)
    then 32 KiB blocks of chunks:
    chunk  := crc32 (uint32 LE) | length (uint16 LE) | type (uint8) | data[length]

``crc32`` is zlib's CRC-32 of the type byte followed by the data (not LevelDB's masked CRC-32C).
A payload that does not fit in one block is split into FIRST, MIDDLE..., LAST chunks; a block ends
with zero padding when fewer than 7 bytes remain. Each payload is one serialized
``wandb_internal_pb2.Record``.

This module only frames: it yields payloads and describes what stopped it (a truncated tail, a
damaged chunk), so the caller keeps every record written before a crash. It never raises on bad
data except for a header that is not a W&B log at all (:class:`BadHeaderError`).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

HEADER_IDENT = b":W&B"
HEADER_MAGIC = 0xBEE1
HEADER_VERSION = 0
FILE_HEADER_LEN = 7
CHUNK_HEADER_LEN = 7
BLOCK_LEN = 32 * 1024

FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4

_FILE_HEADER = struct.Struct("<4sHB")
_CHUNK_HEADER = struct.Struct("<IHB")
# CRC of each chunk type byte: the running CRC a chunk's checksum starts from.
_TYPE_CRC = {t: zlib.crc32(bytes([t])) for t in (FULL, FIRST, MIDDLE, LAST)}


class BadHeaderError(ValueError):
    """The bytes do not start with a W&B log header this reader understands."""


@dataclass
class LogProblems:
    """What went wrong while framing, for a one-line warning; empty when the file is intact."""

    truncated_at: int | None = None
    """Offset where the file ends inside a chunk or a multi-chunk payload (a killed writer)."""
    damaged: list[int] = field(default_factory=list)
    """Offsets of damaged chunks; reading resumed at the next block after each."""
    skipped_bytes: int = 0

    def describe(self) -> str | None:
        parts = []
        if self.damaged:
            where = ", ".join(str(o) for o in self.damaged[:3])
            more = f" and {len(self.damaged) - 3} more" if len(self.damaged) > 3 else ""
            parts.append(f"damaged data at byte {where}{more} ({self.skipped_bytes} bytes skipped)")
        if self.truncated_at is not None:
            parts.append(f"file ends inside a record at byte {self.truncated_at}")
        return "; ".join(parts) or None


def check_header(data: bytes | memoryview) -> None:
    """Raise :class:`BadHeaderError` with a one-line reason unless ``data`` starts a W&B log."""
    if len(data) == 0:
        raise BadHeaderError("empty file (0 bytes)")
    if len(data) < FILE_HEADER_LEN:
        raise BadHeaderError(f"file too short for a W&B header ({len(data)} bytes)")
    ident, magic, version = _FILE_HEADER.unpack_from(data, 0)
    if ident != HEADER_IDENT or magic != HEADER_MAGIC:
        raise BadHeaderError(
            f"not a W&B run file (header {bytes(data[:FILE_HEADER_LEN])!r}, "
            "expected b':W&B' 0xBEE1)"
        )
    if version != HEADER_VERSION:
        raise BadHeaderError(
            f"unsupported W&B log format version {version} (this reader knows {HEADER_VERSION})"
        )


def iter_payloads(data: bytes, problems: LogProblems) -> Iterator[memoryview | bytes]:
    """Yield each record payload in ``data`` (a whole ``.wandb`` file), recording damage in
    ``problems``; a damaged chunk skips to the next block, as LevelDB's own reader does."""
    check_header(data)
    view = memoryview(data)
    size = len(data)
    pos = FILE_HEADER_LEN
    pending: list[memoryview] | None = None  # chunks of a FIRST..LAST payload
    pending_start = 0

    while pos < size:
        left_in_block = BLOCK_LEN - pos % BLOCK_LEN
        if left_in_block < CHUNK_HEADER_LEN:
            pos += left_in_block  # block trailer: zero padding
            continue
        if pos + CHUNK_HEADER_LEN > size:
            problems.truncated_at = pos  # even all-zero: a CRC may start with zero bytes
            break
        crc, length, kind = _CHUNK_HEADER.unpack_from(view, pos)
        if crc == 0 and length == 0 and kind == 0:
            # Zero fill: preallocated or never-written space at the tail of a killed run's file.
            if any(view[pos:size]):
                pos = _skip_damage(problems, pos, size)
                pending = None
                continue
            break
        start = pos + CHUNK_HEADER_LEN
        end = start + length
        if CHUNK_HEADER_LEN + length > left_in_block or kind not in _TYPE_CRC:
            pos = _skip_damage(problems, pos, size)
            pending = None
            continue
        if end > size:
            problems.truncated_at = pos
            pending = None
            break
        chunk = view[start:end]
        if zlib.crc32(chunk, _TYPE_CRC[kind]) != crc:
            pos = _skip_damage(problems, pos, size)
            pending = None
            continue
        pos = end

        if kind == FULL:
            if pending is not None:  # a FIRST..LAST payload lost its tail: drop it
                problems.damaged.append(pending_start)
                pending = None
            yield chunk
        elif kind == FIRST:
            if pending is not None:
                problems.damaged.append(pending_start)
            pending = [chunk]
            pending_start = start - CHUNK_HEADER_LEN
        elif pending is None:
            # MIDDLE/LAST without a FIRST: the start was skipped with a damaged block.
            problems.skipped_bytes += CHUNK_HEADER_LEN + length
        elif kind == MIDDLE:
            pending.append(chunk)
        else:  # LAST
            pending.append(chunk)
            yield b"".join(pending)
            pending = None

    if pending is not None and problems.truncated_at is None:
        problems.truncated_at = pending_start


def _skip_damage(problems: LogProblems, pos: int, size: int) -> int:
    """Record damage at ``pos`` and return the start of the next block (or ``size``)."""
    next_block = min(size, (pos // BLOCK_LEN + 1) * BLOCK_LEN)
    problems.damaged.append(pos)
    problems.skipped_bytes += next_block - pos
    return next_block


def frame_payloads(payloads: Iterable[bytes]) -> bytes:
    """A whole ``.wandb`` file holding ``payloads``: the inverse of :func:`iter_payloads`.

    wandb-core writes the real files; this exists to build test and benchmark files from
    records (and is checked to reproduce wandb's own files byte for byte).
    """
    out = bytearray(_FILE_HEADER.pack(HEADER_IDENT, HEADER_MAGIC, HEADER_VERSION))
    for payload in payloads:
        data = memoryview(bytes(payload))
        first = True
        while True:
            left_in_block = BLOCK_LEN - len(out) % BLOCK_LEN
            if left_in_block < CHUNK_HEADER_LEN:
                out += bytes(left_in_block)
                continue
            room = left_in_block - CHUNK_HEADER_LEN
            piece, data = data[:room], data[room:]
            last = len(data) == 0
            kind = FULL if first and last else FIRST if first else LAST if last else MIDDLE
            out += _CHUNK_HEADER.pack(zlib.crc32(piece, _TYPE_CRC[kind]), len(piece), kind)
            out += piece
            first = False
            if last:
                break
    return bytes(out)
