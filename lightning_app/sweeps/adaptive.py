"""``sweep FILE --adaptive``: run every configuration with a few seeds, add seeds while undecided.

The sweep file is a grid whose seed key (``seed_everything``, ``model.init_seed``, ... : seeds are
replicates, never parameters) lists the most seeds each configuration may get; ``wandb agent``
runs all of them (the fixed design). ``--adaptive`` runs the same runs in rounds of
``--seeds-per-round`` seeds, every configuration each round, and after each round makes a *look*:
signal-effects' test on every run so far, at that look's level of a group-sequential design
(``lightning_app.analysis.sequential``). It stops when every parameter is significant or futile,
or the budget is spent (``--max-runs``: fewer seeds than the file lists; ``--max-hours``: no round
after the first starts that would end past it; nothing times a round before one has run).

The looks are planned before the first run (their number and information fractions follow from
the seeds the budget allows) and recorded in ``SWEEP_DIR/adaptive.json``, written atomically
after every look: a killed runner, rerun with the same command, finishes the round it was in and
goes on from the last recorded look; a recorded look is never made again. ``analyze --source``
on the sweep folder (or one above it) reads that file and reports how the sweep stopped.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from rich.console import Console

from lightning_app import adaptive_record
from lightning_app.errors import UserError
from lightning_app.sweeps.layout import SweepFolder
from lightning_app.sweeps.plan import PlannedRun
from lightning_app.sweeps.runner import Summary
from lightning_app.sweeps.spec import SweepSpec
from lightning_app.sweeps.state import STATE_FILE, StateStore

if TYPE_CHECKING:  # the statistics load pandas and scipy: imported where a look is made
    from lightning_app.analysis import sequential

FORMAT = 1
DEFAULT_SEEDS_PER_ROUND = 2
FLAGS = ("seeds_per_round", "max_runs", "max_hours", "alpha", "spending", "power", "metric")


@dataclass(frozen=True)
class AdaptiveOptions:
    """The ``--adaptive`` flags (the design part is fixed when the sweep starts)."""

    seeds_per_round: int = DEFAULT_SEEDS_PER_ROUND
    max_runs: int | None = None
    max_hours: float | None = None
    alpha: float = 0.05
    spending: sequential.Spending = "obrien-fleming"
    power: float = 0.8
    metric: str = "test/acc"

    def design_options(self) -> dict[str, Any]:
        """What shapes the decisions; a rerun must give the same (``--max-hours`` may change)."""
        data = asdict(self)
        data.pop("max_hours")
        return data


def add_arguments(parser: Any) -> None:
    """The ``--adaptive`` options of the sweep command."""
    parser.add_argument(
        "--adaptive",
        action="store_true",
        help="Adaptive replicates: run every configuration with --seeds-per-round seeds of the "
        "file's seed key, test every parameter (signal-effects' F test, Holm), add seeds in "
        "rounds only while a parameter is undecided and could still be found within the "
        "budget. Each look is tested at its share of alpha (group-sequential alpha spending), "
        "so looking after every round keeps the false-positive rate at alpha. The file's seed "
        "values are the most seeds a configuration gets. See docs/statistics.md.",
    )
    parser.add_argument(
        "--seeds-per-round",
        type=int | None,
        default=None,
        help=f"--adaptive: seeds added to every configuration per round (default "
        f"{DEFAULT_SEEDS_PER_ROUND}); the file's seed values are used in their order.",
    )
    parser.add_argument(
        "--max-runs",
        type=int | None,
        default=None,
        help="--adaptive: most runs in all (default: the whole grid); at least one round.",
    )
    parser.add_argument(
        "--max-hours",
        type=float | None,
        default=None,
        help="--adaptive: no round starts that would end after this many hours of running, "
        "estimated from the runs so far; the first round, the least the design needs, always "
        "runs (--max-runs bounds it). May change between reruns.",
    )
    parser.add_argument(
        "--alpha",
        type=float | None,
        default=None,
        help="--adaptive: false-positive rate over all looks and parameters (default 0.05).",
    )
    parser.add_argument(
        "--spending",
        type=Literal["obrien-fleming", "pocock"] | None,
        default=None,
        help="--adaptive: alpha-spending function (default obrien-fleming: little alpha early, "
        "most at the last look; pocock: evenly).",
    )
    parser.add_argument(
        "--power",
        type=float | None,
        default=None,
        help="--adaptive: a parameter that the whole budget would find with less than this "
        "power is futile (default 0.8).",
    )
    parser.add_argument(
        "--metric",
        type=str | None,
        default=None,
        help="--adaptive: the metric tested at each look, at the last epoch (default test/acc).",
    )


def options_from(args: Any) -> AdaptiveOptions | None:
    """The adaptive options, or None without ``--adaptive``; contradictions are one line."""
    given = [name for name in FLAGS if getattr(args, name, None) is not None]
    if not args.adaptive:
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise UserError(f"{flag} applies only with --adaptive")
        return None
    if args.count is not None:
        raise UserError(
            "--count and --adaptive contradict each other: --count cuts the grid, --adaptive "
            "runs it whole in seed rounds; cap an adaptive sweep with --max-runs"
        )
    options = AdaptiveOptions(
        **{name: getattr(args, name) for name in given},  # the rest keep their defaults
    )
    if options.seeds_per_round < 1:
        raise UserError(f"--seeds-per-round must be at least 1, got {options.seeds_per_round}")
    if options.max_runs is not None and options.max_runs < 1:
        raise UserError(f"--max-runs must be at least 1, got {options.max_runs}")
    if options.max_hours is not None and not options.max_hours > 0:
        raise UserError(f"--max-hours must be positive, got {options.max_hours:g}")
    if not 0 < options.alpha < 1:
        raise UserError(f"--alpha must be between 0 and 1, got {options.alpha:g}")
    if not 0 < options.power < 1:
        raise UserError(f"--power must be between 0 and 1, got {options.power:g}")
    return options


@dataclass(frozen=True)
class Rounds:
    """The adaptive plan: which planned runs each round adds, and the looks' design."""

    seed_key: str
    seeds: list[Any]
    """The seeds the budget allows, in the file's order."""
    per_round: int
    params: list[str]
    """The parameters tested (the grid's other varying keys)."""
    configurations: int
    rounds: list[list[PlannedRun]]
    design: sequential.Design

    @property
    def looks(self) -> int:
        return len(self.rounds)

    @property
    def max_runs(self) -> int:
        return self.configurations * len(self.seeds)

    def runs_through(self, look: int) -> list[PlannedRun]:
        """The runs of rounds 1..look (1-based)."""
        return [run for chunk in self.rounds[:look] for run in chunk]

    def seeds_through(self, look: int) -> list[Any]:
        return self.seeds[: round(self.design.fractions[look - 1] * len(self.seeds))]


def plan_rounds(spec: SweepSpec, runs: Sequence[PlannedRun], options: AdaptiveOptions) -> Rounds:
    """Split the grid's runs into seed rounds; every input mistake is one line, before any run."""
    from lightning_app.analysis import sequential
    from lightning_app.analysis.parameters import is_seed_key

    where = f"--adaptive: {spec.path}"
    if spec.method != "grid":
        raise UserError(
            f"{where}: method {spec.method}; adaptive replicates needs method grid (every "
            "configuration gets the same seeds, so seeds add replicates to every configuration)"
        )
    seed_params = [p for p in spec.parameters if is_seed_key(p.name)]
    varying_seeds = [p for p in seed_params if p.grid_size() >= 2]
    if not varying_seeds:
        have = f" ({seed_params[0].name} has one value)" if seed_params else ""
        raise UserError(
            f"{where}: no seed key to vary{have}; list the seeds a configuration may get, e.g. "
            "seed_everything: {values: [0, 1, 2, 3, 4, 5]}"
        )
    if len(varying_seeds) > 1:
        names = ", ".join(p.name for p in varying_seeds)
        raise UserError(f"{where}: several seed keys vary ({names}); rounds add one seed key")
    seed = varying_seeds[0]
    params = [
        p.name for p in spec.parameters if p is not seed and p.grid_size() >= 2
    ]  # constants are not parameters; other seed keys are constant here
    params = [name for name in params if not is_seed_key(name)]
    if not params:
        raise UserError(f"{where}: only the seed varies; there is no hyperparameter to test")
    all_seeds = seed.grid_values()
    configurations = len(runs) // len(all_seeds)
    per_round = options.seeds_per_round
    if per_round > len(all_seeds):
        raise UserError(
            f"--seeds-per-round {per_round}: {spec.path} lists only {len(all_seeds)} values of "
            f"{seed.name}"
        )
    budget = options.max_runs if options.max_runs is not None else len(runs)
    one_round = configurations * per_round
    if budget < one_round:
        raise UserError(
            f"--max-runs {budget} is smaller than one round: {configurations} configurations x "
            f"{per_round} seed(s) = {one_round} runs"
        )
    seeds = all_seeds[: min(len(all_seeds), budget // configurations)]
    fractions = sequential.equal_rounds(len(seeds), per_round)
    index = {_norm(s): i for i, s in enumerate(seeds)}
    chunks: list[list[PlannedRun]] = [[] for _ in fractions]
    bounds = [round(f * len(seeds)) for f in fractions]
    for run in runs:
        position = index.get(_norm(run.params[seed.name]))
        if position is None:
            continue  # a seed beyond the budget
        chunks[next(i for i, b in enumerate(bounds) if position < b)].append(run)
    design = sequential.Design(options.alpha, options.spending, fractions, options.power)
    return Rounds(seed.name, list(seeds), per_round, params, configurations, chunks, design)


def describe_rounds(rounds: Rounds) -> list[str]:
    """The plan in words (printed at the start and by --dry-run)."""
    levels = ", ".join(f"{level:.3g}" for level in rounds.design.levels)
    return [
        f"adaptive: {rounds.configurations} configurations, seeds of {rounds.seed_key} "
        f"{_seed_text(rounds.seeds)} in {rounds.looks} round(s) of {rounds.per_round}; at most "
        f"{rounds.max_runs} runs; testing {', '.join(rounds.params)}",
        f"adaptive: look levels ({rounds.design.spending} spending of alpha "
        f"{rounds.design.alpha:g}): {levels}",
    ]


# -- the record -----------------------------------------------------------------------------------


def _has_runs(folder: SweepFolder) -> bool:
    """Whether the folder's state records runs (a damaged state: it did once)."""
    try:
        return bool(StateStore(folder.root).runs)
    except UserError:
        return True


def check_folder(folder: SweepFolder, options: AdaptiveOptions | None) -> None:
    """Refuse to mix a fixed and an adaptive sweep in one folder, or change the design."""
    if not folder.exists():
        return
    path = adaptive_record.path_in(folder.root)
    if options is None:
        if path.is_file():
            raise UserError(
                f"{folder.root} holds an adaptive sweep; rerun it with --adaptive (and its "
                "options), or pass --dir for a fixed sweep"
            )
        return
    if not path.is_file():
        if (folder.root / STATE_FILE).is_file() and _has_runs(folder):
            raise UserError(
                f"{folder.root} holds a fixed sweep started without --adaptive; pass --dir for "
                "an adaptive one"
            )
        return
    stored = adaptive_record.load(path).get("options", {})
    for name, value in options.design_options().items():
        if stored.get(name) != value:
            flag = "--" + name.replace("_", "-")
            raise UserError(
                f"{folder.root} was started with {flag} {stored.get(name)}, not {value}; the "
                "looks were planned with it: rerun with the same options or pass --dir"
            )


def _new_record(spec: SweepSpec, rounds: Rounds, options: AdaptiveOptions) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "name": spec.name,
        "options": options.design_options(),
        "design": {
            "alpha": rounds.design.alpha,
            "spending": rounds.design.spending,
            "power": rounds.design.power,
            "correction": rounds.design.correction,
            "futility_confidence": rounds.design.futility_confidence,
            "test": "type II F test of each parameter in an additive model of the signal runs, "
            "signal residuals as error, Holm over the parameters (signal-effects' test)",
            "metric": options.metric,
            "seed_key": rounds.seed_key,
            "seeds": rounds.seeds,
            "seeds_per_round": rounds.per_round,
            "configurations": rounds.configurations,
            "params": rounds.params,
            "looks": rounds.looks,
            "fractions": list(rounds.design.fractions),
            "levels": [float(x) for x in rounds.design.levels],
            "max_runs": rounds.max_runs,
        },
        "elapsed_s": 0.0,
        "looks": [],
        "decisions": {},
        "stopped": None,
    }


# -- the loop -------------------------------------------------------------------------------------

RunRound = Callable[[list[PlannedRun]], Summary]
"""Runs the given runs (those not done yet) with the sweep's runner; returns its summary."""
Report = Callable[[Summary, int], None]
"""Prints a round's summary line (the round's runs so far: summary, their number)."""


@dataclass(frozen=True)
class AdaptiveOutcome:
    """How :func:`run_adaptive` ended: the design stopped, or a round did not finish."""

    unfinished: Summary | None = None
    """The summary of a round that was stopped or had a failed run (the sweep stops there and
    the command exits as a fixed sweep would); None when the design ran to its stop."""


def run_adaptive(
    console: Console,
    folder: SweepFolder,
    spec: SweepSpec,
    rounds: Rounds,
    options: AdaptiveOptions,
    run_round: RunRound,
    report: Report,
    workers: int,
) -> AdaptiveOutcome:
    """Run rounds and make looks until the design stops; resumable at any instant."""
    path = adaptive_record.path_in(folder.root)
    record = adaptive_record.load(path) if path.is_file() else _new_record(spec, rounds, options)
    if not path.is_file():
        adaptive_record.write(path, record)
    for line in describe_rounds(rounds):
        console.print(line)
    if record["stopped"]:
        _print_end(console, record)
        return AdaptiveOutcome()
    for look in range(len(record["looks"]) + 1, rounds.looks + 1):
        todo = rounds.runs_through(look)
        store = StateStore(folder.root)
        fresh = all(store.status(run.key) == "pending" for run in rounds.rounds[look - 1])
        if look > 1 and fresh and options.max_hours is not None:
            estimate = _round_estimate(store, rounds.rounds[look - 1], workers)
            if record["elapsed_s"] + estimate > options.max_hours * 3600:
                _stop(record, look - 1, rounds, "max-hours", _hours_reason(record, estimate))
                adaptive_record.write(path, record)
                _print_end(console, record)
                return AdaptiveOutcome()
        console.print(
            f"adaptive: round {look} of {rounds.looks}: seeds "
            f"{_seed_text(rounds.seeds_through(look))} ({len(todo)} runs so far)"
        )
        summary = run_round(todo)
        record["elapsed_s"] += summary.elapsed_s
        adaptive_record.write(path, record)
        report(summary, len(todo))
        if summary.stopped or summary.failed:
            return AdaptiveOutcome(unfinished=summary)
        result = make_look(folder, spec, rounds, options, look)
        _record_look(record, rounds, look, result)
        adaptive_record.write(path, record)
        console.print(_look_line(record["looks"][-1], rounds))
        if record["stopped"]:
            break
    _print_end(console, record)
    return AdaptiveOutcome()


@dataclass(frozen=True)
class LookData:
    run_ids: list[str]
    epoch: int
    codes: dict[str, np.ndarray]
    y: np.ndarray


def measure(
    folder: SweepFolder, spec: SweepSpec, rounds: Rounds, metric: str, look: int
) -> LookData:
    """The metric at the last common epoch of the runs of rounds 1..look, with their values."""
    from lightning_app.analysis.parameters import explicit_parameters
    from lightning_app.runs import load_runs

    runs = load_runs(str(folder.root), group=spec.name, progress=False)
    wanted = {_norm(s) for s in rounds.seeds_through(look)}
    config = runs.config
    if rounds.seed_key not in config.columns:
        raise UserError(f"look {look}: the runs in {folder.root} did not log {rounds.seed_key}")
    keep = config[rounds.seed_key].map(_norm).isin(wanted) & (runs.meta["state"] == "finished")
    ids = [str(i) for i in config.index[keep.to_numpy()]]
    expected = len(rounds.runs_through(look))
    if len(ids) != expected:
        raise UserError(
            f"look {look}: found {len(ids)} finished runs of sweep {spec.name} in {folder.root} "
            f"for {expected} done; a run folder was moved or its W&B file is damaged"
        )
    subset = runs.subset(ids)
    matrix = subset.metric_matrix(metric)
    finite = np.isfinite(matrix.values).all(axis=0)
    if not finite.any():
        raise UserError(
            f"look {look}: no epoch has {metric!r} in every run of sweep {spec.name} "
            "(--metric names what the runs log, e.g. test/acc)"
        )
    column = int(np.flatnonzero(finite)[-1])
    params = explicit_parameters(subset.config.loc[matrix.run_ids], rounds.params)
    return LookData(
        [str(i) for i in matrix.run_ids],
        int(matrix.epochs[column]),
        {p.name: p.codes for p in params},
        matrix.values[:, column],
    )


def make_look(
    folder: SweepFolder, spec: SweepSpec, rounds: Rounds, options: AdaptiveOptions, look: int
) -> dict[str, Any]:
    """Look ``look``: signal-effects' test on every run so far, at the look's level."""
    from lightning_app.analysis import sequential

    data = measure(folder, spec, rounds, options.metric, look)
    design = rounds.design
    level = float(design.levels[look - 1])
    result = sequential.look(data.codes, data.y, level, design, rounds.max_runs)
    model_df = int(result.df_num.sum())
    params: dict[str, Any] = {}
    for row, name in enumerate(result.params):
        k = int(result.df_num[row]) + 1
        f2 = float(result.corrected_f2[row, 0])
        needed = sequential.runs_needed(f2, k, design, len(result.params), model_df)
        params[name] = {
            "values": k,
            "f_statistic": _num(result.statistic[row, 0]),
            "df_num": int(result.df_num[row]),
            "df_denom": int(result.df_denom),
            "p_value": _num(result.pvalue[row, 0]),
            "p_adjusted": _num(result.pvalue_adjusted[row, 0]),
            "significant": bool(result.significant[row, 0]),
            "futile": bool(result.futile[row, 0]),
            "power_at_budget": _num(result.power_at_budget[row, 0]),
            "runs_needed_per_value": needed,
            "runs_per_value_at_budget": rounds.max_runs // k,
        }
    return {
        "look": look,
        "runs": len(data.run_ids),
        "seeds": len(rounds.seeds_through(look)),
        "epoch": data.epoch,
        "level": level,
        "spent": float(sum(design.levels[:look])),
        "params": params,
        "time": time.time(),
    }


def _record_look(record: dict[str, Any], rounds: Rounds, look: int, result: dict[str, Any]) -> None:
    """Add look ``look``'s decisions to the record and say whether a next round starts."""
    decisions: dict[str, Any] = record["decisions"]
    last = look == rounds.looks
    for name, res in result["params"].items():
        if decisions.get(name, {}).get("status") == "significant":
            continue  # a decision once made stands
        if res["significant"]:
            decisions[name] = {
                "status": "significant",
                "look": look,
                "text": (
                    f"significant at look {look} of {rounds.looks} ({result['runs']} runs): "
                    f"F({res['df_num']}, {res['df_denom']}) = {_g(res['f_statistic'])}, "
                    f"Holm-adjusted p = {_g(res['p_adjusted'])} < {result['level']:.3g}"
                ),
            }
            continue
        at_budget = _g(res["power_at_budget"], ".2f")
        p_text = f"Holm-adjusted p = {_g(res['p_adjusted'])} (level {result['level']:.3g})"
        if last:
            status, text = "not significant", f"not significant by the last look {look}: {p_text}"
        elif res["futile"]:
            status = "futile"
            text = (
                f"futile at look {look} ({result['runs']} runs): {p_text}; with all "
                f"{rounds.max_runs} runs its test would find the largest effect the data allow "
                f"with power {at_budget} < {rounds.design.power:g}"
            )
        else:
            status = "undecided"
            text = f"open at look {look}: {p_text}; power with the whole budget {at_budget}"
        decisions[name] = {"status": status, "look": look, "text": text}
    statuses = {d["status"] for d in decisions.values()}
    result["continue"] = not last and "undecided" in statuses
    if statuses == {"significant"}:
        _stop(record, look, rounds, "decided", "every parameter is significant", result)
    elif not result["continue"] and not last:
        reason = "every parameter is decided (significant, or futile within the budget)"
        _stop(record, look, rounds, "decided", reason, result)
    elif last:
        reason = f"the last planned look ({rounds.max_runs} runs, the budget)"
        _stop(record, look, rounds, "last-look", reason, result)
    record["looks"].append(result)


def _stop(
    record: dict[str, Any],
    look: int,
    rounds: Rounds,
    code: str,
    reason: str,
    result: dict[str, Any] | None = None,
) -> None:
    runs = result["runs"] if result else (record["looks"][-1]["runs"] if record["looks"] else 0)
    record["stopped"] = {"look": look, "runs": runs, "code": code, "reason": reason}
    if code == "last-look" or code == "max-hours":
        for decision in record["decisions"].values():
            if decision["status"] == "undecided":
                decision["status"] = "not significant"


def _look_line(result: dict[str, Any], rounds: Rounds) -> str:
    parts = []
    for name, res in result["params"].items():
        word = "significant" if res["significant"] else "futile" if res["futile"] else "open"
        parts.append(f"{name} {word} (p adj. {_g(res['p_adjusted'])})")
    then = "next round" if result.get("continue") else "stop"
    return (
        f"adaptive: look {result['look']} of {rounds.looks} ({result['runs']} runs, epoch "
        f"{result['epoch']}, level {result['level']:.3g}): {'; '.join(parts)} -> {then}"
    )


def _print_end(console: Console, record: dict[str, Any]) -> None:
    stopped = record["stopped"]
    if not stopped:
        return
    console.print(
        f"adaptive: stopped after look {stopped['look']} with {stopped['runs']} of "
        f"{record['design']['max_runs']} runs: {stopped['reason']}"
    )
    for name, decision in record["decisions"].items():
        console.print(f"  {name}: {decision['text']}")


def _round_estimate(store: StateStore, chunk: Sequence[PlannedRun], workers: int) -> float:
    durations = [r.duration for r in store.runs.values() if r.status == "done" and r.duration]
    mean = float(np.mean(durations)) if durations else 0.0
    return mean * math.ceil(len(chunk) / max(1, workers))


def _hours_reason(record: dict[str, Any], estimate: float) -> str:
    return (
        f"--max-hours: {record['elapsed_s'] / 3600:.2f} h run so far and the next round "
        f"would take about {estimate / 3600:.2f} h more"
    )


def _seed_text(seeds: Sequence[Any]) -> str:
    if len(seeds) > 6:
        return f"{seeds[0]}..{seeds[-1]} ({len(seeds)})"
    return ",".join(str(s) for s in seeds)


def _norm(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True, default=str)


def _g(value: float | None, spec: str = ".3g") -> str:
    return "n/a" if value is None else format(value, spec)


def _num(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
