"""What every probe of a bad input asserts: exit 2, one ``error:`` line, no traceback.

Shared by the probe suites (``tests/*/test_probes.py``); each suite also checks that its folders
were left as they were.
"""

from __future__ import annotations

from typing import Any


def one_line_error(result: Any, needle: str) -> str:
    """The single ``error:`` line of a refused command, which must contain ``needle``."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert needle in lines[0], lines[0]
    return lines[0]
