"""Discovery of analyses: the one place that reads the ``lightning_app.analyses`` entry points.

Built-ins and third-party plugins are found the same way, so a plugin is a package that declares::

    [project.entry-points."lightning_app.analyses"]
    my-analysis = "my_package.module:MyAnalysis"

A plugin that cannot be imported, or whose target is not an :class:`Analysis`, does not stop the
others: :meth:`Registry.load` returns it as a :class:`LoadFailure` the command reports.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from lightning_app.analysis.base import Analysis

ENTRY_POINT_GROUP = "lightning_app.analyses"


@dataclass(frozen=True)
class AnalysisEntry:
    """One registered analysis, not yet imported."""

    name: str
    target: str
    """``module:Class`` as declared."""
    package: str
    """Distribution that declared it, ``name version``."""
    entry_point: EntryPoint


@dataclass(frozen=True)
class LoadFailure:
    """An entry point that did not yield a usable analysis class."""

    entry: AnalysisEntry
    reason: str


@dataclass(frozen=True)
class Registry:
    """The registered analyses by name, plus duplicate names (first declaration wins)."""

    entries: dict[str, AnalysisEntry]
    duplicates: tuple[AnalysisEntry, ...] = ()

    @classmethod
    def discover(cls) -> Registry:
        """Read the entry-point group of every installed distribution."""
        entries: dict[str, AnalysisEntry] = {}
        duplicates = []
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            package = f"{dist.name} {dist.version}" if dist is not None else "unknown package"
            entry = AnalysisEntry(ep.name, ep.value, package, ep)
            if ep.name in entries:
                if entries[ep.name].target != ep.value:
                    duplicates.append(entry)
                continue
            entries[ep.name] = entry
        return cls(entries, tuple(duplicates))

    def names(self) -> list[str]:
        return list(self.entries)

    def load(
        self, names: list[str] | None = None
    ) -> tuple[dict[str, type[Analysis]], list[LoadFailure]]:
        """Import the named analyses (all by default); failures are returned, not raised."""
        loaded: dict[str, type[Analysis]] = {}
        failures = [
            LoadFailure(d, f"name already used by {self.entries[d.name].package}; ignored")
            for d in self.duplicates
            if names is None or d.name in names
        ]
        for name in names if names is not None else self.names():
            entry = self.entries[name]
            try:
                loaded[name] = load_class(entry)
            except Exception as err:  # a broken plugin must not stop the others
                failures.append(LoadFailure(entry, f"{type(err).__name__}: {err}"))
        return loaded, failures


def load_class(entry: AnalysisEntry) -> type[Analysis]:
    """Import an entry point's target and check that it is a usable :class:`Analysis`."""
    obj = entry.entry_point.load()
    if not (inspect.isclass(obj) and issubclass(obj, Analysis)):
        raise TypeError(f"{entry.target} is not a subclass of lightning_app.analysis.Analysis")
    if inspect.isabstract(obj):
        raise TypeError(f"{entry.target} does not implement run()")
    if obj.name != entry.name:
        raise TypeError(
            f"{entry.target}.name is {obj.name!r} but its entry point is named {entry.name!r}; "
            f"make them equal"
        )
    if not obj.summary_line():
        raise TypeError(f"{entry.target} has no description")
    return obj
