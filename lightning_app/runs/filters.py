"""Which runs a read keeps: by group, sweep id, tag and state (a list means any of its values)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lightning_app.errors import UserError
from lightning_app.runs.runset import RUN_STATES, Run

Wanted = str | Iterable[str] | None


@dataclass(frozen=True)
class RunFilter:
    """``None`` for a field means "any"; sources apply it as early as they can."""

    groups: frozenset[str] | None = None
    sweeps: frozenset[str] | None = None
    tags: frozenset[str] | None = None
    states: frozenset[str] | None = None

    @classmethod
    def build(
        cls,
        *,
        group: Wanted = None,
        sweep: Wanted = None,
        tags: Wanted = None,
        state: Wanted = None,
    ) -> RunFilter:
        states = _as_set(state)
        if states is not None and not states <= set(RUN_STATES):
            bad = ", ".join(sorted(states - set(RUN_STATES)))
            states_known = ", ".join(RUN_STATES)
            raise UserError(f"--state: unknown run state {bad!r}; states are {states_known}")
        return cls(_as_set(group), _as_set(sweep), _as_set(tags), states)

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.groups, self.sweeps, self.tags, self.states))

    def header_ok(self, group: str | None, sweep_id: str | None, tags: Iterable[str]) -> bool:
        """Everything but the state, which a run file only reveals at its end."""
        if self.groups is not None and group not in self.groups:
            return False
        if self.sweeps is not None and sweep_id not in self.sweeps:
            return False
        return self.tags is None or not self.tags.isdisjoint(tags)

    def state_ok(self, state: str) -> bool:
        return self.states is None or state in self.states

    def run_ok(self, run: Run) -> bool:
        return self.header_ok(run.group, run.sweep_id, run.tags) and self.state_ok(run.state)

    def describe(self) -> str:
        parts = []
        for name, values in (
            ("group", self.groups),
            ("sweep", self.sweeps),
            ("tags", self.tags),
            ("state", self.states),
        ):
            if values is not None:
                parts.append(f"{name}={'|'.join(sorted(values))}")
        return ", ".join(parts)


def _as_set(value: Wanted) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset([value])
    return frozenset(str(v) for v in value)
