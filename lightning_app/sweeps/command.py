"""``python -m lightning_app sweep FILE``: run a W&B sweep file on this machine."""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import shlex
import sys
from argparse import ArgumentError, RawDescriptionHelpFormatter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jsonargparse import ActionConfigFile, ArgumentParser, DefaultHelpFormatter
from rich.console import Console

from lightning_app.errors import UserError
from lightning_app.paths import check_writable_dir
from lightning_app.sweeps import adaptive, value_types
from lightning_app.sweeps.commandline import CommandTemplate, check_command, local_command
from lightning_app.sweeps.gpus import (
    VISIBLE,
    check_needs,
    concurrent_runs,
    dry_run_allocations,
    environment_devices,
    run_needs,
    select_gpus,
)
from lightning_app.sweeps.launch import Launcher, LaunchError
from lightning_app.sweeps.launchers import LauncherKind, make_launcher
from lightning_app.sweeps.layout import SweepFolder
from lightning_app.sweeps.plan import LARGE_SWEEP, PlannedRun, plan_runs
from lightning_app.sweeps.progress import SweepProgress, format_duration
from lightning_app.sweeps.ray_backend import RaySweep, check_flags
from lightning_app.sweeps.repair import repair_state, state_needs_repair
from lightning_app.sweeps.runner import (
    RunnerOptions,
    Summary,
    SweepRunner,
    available_cores,
    run_environment,
    threads_per_run,
)
from lightning_app.sweeps.scheduling import Scheduler, make_scheduler
from lightning_app.sweeps.spec import SweepSpec, load_sweep
from lightning_app.sweeps.state import PLAN_FILE, STATE_FILE, StateStore, sweep_lock
from lightning_app.sweeps.validate import command_group, validate_runs
from lightning_app.wandb_mode import ModeChoice, WandbMode, resolve_mode

DESCRIPTION = f"""\
Run a sweep written in W&B's sweep format (method grid or random, parameters, command) on this
machine: each run is the sweep's command (python -m lightning_app fit --config ... ${{args}}) in
its own process, folder (SWEEP_DIR/<run>/: run.log, config.yaml, checkpoints, W&B files) and W&B
group (the sweep's name). W&B mode: --wandb-mode, else each run's own rule (online when wandb
has credentials, offline otherwise; see --help of fit for wandb.mode).

  python -m lightning_app sweep configs/sweeps/cpu/noise.yaml --workers 2
  python -m lightning_app sweep configs/sweeps/cpu/signal.yaml --workers 2 --retry 1
  python -m lightning_app sweep configs/sweeps/noise.yaml --gpus 0,1,2,3 --runs-per-gpu 4
  python -m lightning_app analyze --source sweeps/ --noise noise --signal signal --out report/

Runs start warm on Linux: one parent process imports torch, Lightning and wandb once
and each run is a fresh fork of it that runs the same command (about 10 s less per run on a
small CPU; the numbers are the same). --cold starts each run as a new process.

Every parameter value is parsed by the training CLI before any run starts. Run states are kept
in SWEEP_DIR/state.json: stop the runner (Ctrl-C, or even kill -9) and run the same command again
to finish the sweep; runs that were cut short start again from scratch (their files are moved to
SWEEP_DIR/attempts/), finished runs never run twice, failed runs are tried again. A damaged
state.json is refused; --repair rebuilds it from the run folders and goes on. A folder holds
one sweep file: another file, or other --count/--seed, needs another --dir. More than
{LARGE_SWEEP:,} runs start only with --yes.

GPUs: on a machine with CUDA devices every run gets its own GPU slot (--gpus, default all visible
devices; --runs-per-gpu K runs share a GPU) through CUDA_VISIBLE_DEVICES, so GPUs x K runs train
at once; a run with trainer.devices: N (DDP) gets N whole GPUs, a run with trainer.accelerator:
cpu none. --workers caps the runs at once. Without CUDA devices nothing changes (--workers N).

Adaptive replicates (--adaptive): the file's seed key lists the most seeds a configuration gets;
the runner adds them in rounds of --seeds-per-round, tests every parameter after each round
(signal-effects' F test at the round's share of alpha: group-sequential alpha spending) and
stops when every parameter is significant or futile, or --max-runs / --max-hours is spent.
Rounds and decisions are kept in SWEEP_DIR/adaptive.json; analyze reports how it stopped.

  python -m lightning_app sweep configs/sweeps/cpu/adaptive.yaml --adaptive --seeds-per-round 1

Many machines: --backend ray runs each run as a Ray task (CPU = --threads, default 1; GPU =
1/--runs-per-gpu or trainer.devices) on a private Ray instance on this machine, or with --address
on an existing cluster, whose nodes must see the sweep folder at the same path (a shared
filesystem; checked before any run starts). A run lost with its node starts again. Or, with
W&B's server: `wandb sweep FILE`, then `wandb agent ENTITY/PROJECT/SWEEP_ID` on each machine.

Exit status: 0 when every run is done, 1 if a run failed after its retries, 2 for a mistake in
the input, 130 when stopped.
"""


START_VAR = "LIGHTNING_APP_START"
Start = Literal["warm", "cold"]


class _HelpFormatter(DefaultHelpFormatter, RawDescriptionHelpFormatter):
    """jsonargparse's help with the description's line breaks kept."""


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m lightning_app sweep",
        description=DESCRIPTION,
        default_env=False,
        formatter_class=_HelpFormatter,
        exit_on_error=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with these options.")
    parser.add_argument("sweep_file", type=str, help="The W&B sweep YAML file.")
    parser.add_argument(
        "--workers",
        type=int | None,
        default=None,
        help="Runs at a time; the CPU cores are split between them (default 1; with GPUs: "
        "GPUs x runs-per-gpu, and --workers caps that).",
    )
    parser.add_argument(
        "--gpus",
        type=str | None,
        default=None,
        help="GPUs to run on, numbered as this process sees them (0,1,2,3), or none (runs see "
        "every device, as without slots). Default: every visible CUDA device (after "
        "CUDA_VISIBLE_DEVICES); none on a machine without CUDA.",
    )
    parser.add_argument(
        "--runs-per-gpu",
        type=int | None,
        default=None,
        help="Runs sharing one GPU (default 1). A run with trainer.devices: N takes N whole GPUs.",
    )
    parser.add_argument(
        "--threads",
        type=int | None,
        default=None,
        help="CPU threads per run (default: available cores // runs at once, at least 1).",
    )
    parser.add_argument(
        "--retry", type=int, default=0, help="Times a failed run is tried again (K)."
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="Check the sweep and print each run's command."
    )
    parser.add_argument("--yes", action="store_true", help=f"Allow more than {LARGE_SWEEP:,} runs.")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="Rebuild a damaged SWEEP_DIR/state.json from the run folders, then run the sweep: "
        "finished runs stay done, half-written ones are moved to SWEEP_DIR/attempts/ and start "
        "again, nothing is deleted (the damaged file is kept as state.json.damaged-<time>).",
    )
    parser.add_argument(
        "--dir", type=str | None, default=None, help="Sweep folder (default: sweeps/<name>)."
    )
    parser.add_argument(
        "--count",
        type=int | None,
        default=None,
        help="Run at most this many runs (random sweeps: the number of draws, default run_cap).",
    )
    parser.add_argument(
        "--seed", type=int | None, default=None, help="Seed of a random sweep's draws (default 0)."
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="Start every run as a new Python process (python -m lightning_app fit ...) instead "
        f"of forking it from a parent that imported torch, Lightning and wandb once (the warm "
        f"start, the default on Linux; ${START_VAR}=cold does the same). Use it while you edit "
        "lightning_app's own code mid-sweep (warm runs use the code as it was when the sweep "
        "started) or to rule the warm start out when debugging.",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="Require the warm start: exit 2 if the preloaded parent cannot start, instead of "
        "starting runs cold.",
    )
    parser.add_argument(
        "--backend",
        type=Literal["local", "ray"],
        default="local",
        help="Where runs execute: local (processes on this machine) or ray (a Ray task each, on "
        'whichever node Ray picks; pip install -e ".[ray]"). With ray, --threads is each run\'s '
        "CPU request (default 1) and --workers defaults to as many runs as the cluster holds.",
    )
    parser.add_argument(
        "--address",
        type=str | None,
        default=None,
        help="With --backend ray: the Ray cluster to join, HOST:PORT (what `ray start --head` "
        "prints) or auto (the cluster this machine belongs to); run the command on one of its "
        "nodes. Default: a private Ray instance on 127.0.0.1, stopped when the command ends.",
    )
    parser.add_argument(
        "--wandb-mode",
        type=WandbMode | None,  # the one definition: its order is the one every message shows
        default=None,
        help="W&B mode of the runs, given to them as $WANDB_MODE: it outranks a config file's "
        "wandb.mode, not a --wandb.mode in the sweep file. Default: each run's own rule "
        "($WANDB_MODE, the config file, else online when wandb has credentials, else offline).",
    )
    adaptive.add_arguments(parser)
    return parser


def main(argv: list[str]) -> None:
    """Entry point of ``python -m lightning_app sweep``."""
    args = parse_flags(build_parser(), argv)
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    if args.runs_per_gpu is not None and args.runs_per_gpu < 1:
        raise UserError(f"--runs-per-gpu must be at least 1, got {args.runs_per_gpu}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    if args.retry < 0:
        raise UserError(f"--retry must be 0 or more, got {args.retry}")
    check_flags(args.address, args.gpus, args.warm, args.backend)
    start = "cold" if args.backend == "ray" else start_method(args.cold, args.warm, os.environ)
    adaptive_options = adaptive.options_from(args)
    spec = load_sweep(args.sweep_file)
    template = check_command(spec)
    folder = SweepFolder(Path(args.dir) if args.dir else Path("sweeps") / spec.name)
    if not args.dry_run:  # a dry run writes nothing, so a read-only --dir is fine for it
        check_writable_dir(folder.root, "--dir" if args.dir else "--dir (default)")
    adaptive.check_folder(folder, adaptive_options)
    options = _plan_options(spec, args.count, args.seed)
    if args.repair and args.dry_run:
        raise UserError("--repair rewrites the sweep's state; it does not go with --dry-run")
    if args.repair and not folder.exists():
        raise UserError(f"--repair: {folder.root} holds no sweep ({PLAN_FILE} missing)")
    if folder.exists():
        stored = folder.check_compatible(spec, options)
        options = {name: stored.get(name) for name in options}
        runs = [PlannedRun(i, r["key"], r["params"]) for i, r in enumerate(stored["runs"])]
    else:
        runs = plan_runs(
            spec, count=options.get("count"), seed=options.get("seed") or 0, yes=args.yes
        )
    rounds = adaptive.plan_rounds(spec, runs, adaptive_options) if adaptive_options else None
    job = SweepJob(
        args=args,
        spec=spec,
        template=template,
        folder=folder,
        runs=runs,
        plan_options=options,
        start=start,
        gpus=_gpus(args.gpus, args.runs_per_gpu) if args.backend == "local" else [],
        console=Console(highlight=False, soft_wrap=True),
        rounds=rounds,
        adaptive_options=adaptive_options,
    )
    early: Launcher | None = None
    if start == "warm" and not args.dry_run and not job.gpus:  # preload while runs are checked
        early_env = run_environment(
            threads_per_run(args.workers or 1, args.threads), args.wandb_mode
        )
        early = make_launcher("warm", early_env, note=job.note)
        early.begin()
    with contextlib.closing(early) if early is not None else contextlib.nullcontext():
        code = _check_and_run(job, early)
    if code:
        raise SystemExit(code)


def parse_flags(parser: ArgumentParser, argv: list[str]) -> Any:
    """The command's flags, or one line naming the flag as typed and what it accepts."""
    try:
        return parser.parse_args(argv)
    except ArgumentError as err:
        raise UserError(flag_error(parser, str(err))) from None


def flag_error(parser: ArgumentParser, message: str) -> str:
    """jsonargparse's multi-line complaint as one line: ``--workers 'abc': expected an integer``."""
    key = re.search(r'Parser key "([^"]+)"', message)
    given = re.search(r"(?:Given|Got) value: (.*)", message)
    action = next((a for a in parser._actions if key and a.dest == key.group(1)), None)
    hint = getattr(action, "_typehint", None)
    if action is not None and action.option_strings and hint is not None and given is not None:
        flag = max(action.option_strings, key=len)
        return f"{flag} {given.group(1).strip()!r}: expected {value_types.describe_flag(hint)}"
    unknown = re.match(r"unrecognized arguments: (\S+)", message, re.IGNORECASE)
    if unknown is not None:
        flags = [f for a in parser._actions for f in a.option_strings if f.startswith("--")]
        close = difflib.get_close_matches(unknown.group(1).split("=")[0], flags, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"{' '.join(message.split())}{hint}"
    if action is not None and action.option_strings and key is not None:
        rest = message[key.end() :].lstrip(": ")
        return f"{max(action.option_strings, key=len)}: {' '.join(rest.split())}"
    return " ".join(message.split())


@dataclass(frozen=True)
class SweepJob:
    """One ``sweep`` invocation: its flags, the sweep file, the folder, the runs, how they start."""

    args: Any
    spec: SweepSpec
    template: CommandTemplate
    folder: SweepFolder
    runs: list[PlannedRun]
    plan_options: dict[str, Any]
    """The options that shaped the plan (``--count``, ``--seed``), stored with it."""
    start: Start
    gpus: list[str]
    """The GPUs the runs get slots on (empty: no slots)."""
    console: Console
    rounds: adaptive.Rounds | None
    adaptive_options: adaptive.AdaptiveOptions | None

    def runner_args(self, run: PlannedRun) -> list[str]:
        run_dir = self.folder.run_dir(run.key)
        return [f"--run_dir={run_dir}", f"--wandb.dir={run_dir}", f"--wandb.group={self.spec.name}"]

    def command(self, run: PlannedRun) -> list[str]:
        """The run's argv (``wandb agent``'s, plus the runner's own arguments)."""
        return local_command(self.template, run.params, self.spec.program, self.runner_args(run))

    def note(self, line: str) -> None:
        self.console.print(line)


@dataclass(frozen=True)
class RunSetup:
    """How the runs run, worked out once every run parsed: how many at once, with what."""

    workers: int
    threads: int
    env: dict[str, str]
    needs: dict[str, int]
    """GPUs each run needs by key (only with GPU slots or Ray)."""
    ray: RaySweep | None

    def scheduler(self, gpus: list[str], runs_per_gpu: int) -> Scheduler:
        requests = self.ray.requests if self.ray is not None else None
        return make_scheduler(
            self.threads, gpus=gpus, runs_per_gpu=runs_per_gpu, needs=self.needs,
            ray_requests=requests,
        )  # fmt: skip


def _check_and_run(job: SweepJob, launcher: Launcher | None) -> int:
    """Parse every run with the training CLI, then dry-run or run them; the exit status.

    ``launcher`` is one started early (the warm start preloads while runs are checked); else
    the launcher is built here once the runs' threads are known.
    """
    args, spec, console = job.args, job.spec, job.console
    first = validate_runs(
        job.template,
        job.runs,
        spec.parameters,
        job.runner_args(job.runs[0]),
        str(spec.path),
    )
    setup = _setup(job)
    subcommand = first.get("subcommand") or "fit"
    flags = [a for a in job.command(job.runs[0]) if a.startswith("--wandb.mode")]
    configured = first[subcommand]["wandb"]["mode"]
    mode = resolve_mode(flag=configured if flags else None, config=configured, env=setup.env)
    _print_header(job, setup, mode, command_group(job.template))
    if job.rounds is not None and args.dry_run:
        for line in adaptive.describe_rounds(job.rounds):
            console.print(line)
    if args.dry_run:
        visible = _dry_run_devices(
            job.runs, setup.needs, job.gpus, args.runs_per_gpu or 1, setup.workers
        )
        _print_dry_run(console, job.folder, job.runs, job.command, setup.threads, mode, visible)
        return 0
    if launcher is None:  # nothing was preloaded (GPUs: threads known only now; Ray: cold)
        kind: LauncherKind = "ray" if setup.ray is not None else job.start
        launcher = make_launcher(kind, setup.env, note=job.note)
    if args.warm:
        try:
            launcher.prepare()
        except LaunchError as err:
            launcher.close()
            raise UserError(f"--warm: {err}") from None
    with contextlib.closing(launcher):
        return _run(job, setup, launcher)


def _setup(job: SweepJob) -> RunSetup:
    """Each run's GPU needs, Ray's cluster and requests, runs at once and threads per run."""
    args, spec = job.args, job.spec
    needs: dict[str, int] = {}
    if job.gpus or args.backend == "ray":
        needs = run_needs(job.template, job.runs, job.runner_args(job.runs[0]), str(spec.path))
    if job.gpus:
        check_needs(needs, job.gpus, str(spec.path))
    ray = None
    if args.backend == "ray":
        ray = RaySweep.open(
            address=args.address,
            needs=needs,
            threads=args.threads,
            runs_per_gpu=args.runs_per_gpu,
            workers=args.workers,
            folder=job.folder.root,
            where=str(spec.path),
            dry_run=args.dry_run,
        )
        workers, threads = ray.workers, ray.threads
    else:
        workers = concurrent_runs(args.workers, len(job.gpus), args.runs_per_gpu or 1, needs)
        threads = threads_per_run(workers, args.threads)
    env = run_environment(threads, args.wandb_mode)
    return RunSetup(workers, threads, env, needs, ray)


def _print_header(
    job: SweepJob, setup: RunSetup, mode: ModeChoice, command_group: str | None
) -> None:
    """The sweep's first line, and notes on flags that leave slots idle or cores oversubscribed.

    ``command_group`` is the W&B group the command alone sets (its config, a --wandb.group):
    the runner's --wandb.group=<sweep name> comes last and wins, which the line says.
    """
    args, spec, console, gpus = job.args, job.spec, job.console, job.gpus
    workers, threads = setup.workers, setup.threads
    runs_per_gpu = args.runs_per_gpu or 1
    cores = available_cores()
    where = setup.ray.describe() if setup.ray is not None else f"on {cores} core(s)"
    slots = f"{len(gpus)} GPU(s) ({','.join(gpus)}) x {runs_per_gpu} run(s) each, " if gpus else ""
    console.print(
        f"sweep {spec.name}: {spec.method}, {len(job.runs)} runs, folder {job.folder.root}; "
        f"{slots}{workers} worker(s) x {threads} thread(s) {where}; W&B {mode}; "
        f"{job.start} start; W&B group: {spec.name} ({_group_note(spec.name, command_group)})"
    )
    if gpus and args.workers is not None and args.workers < len(gpus) * runs_per_gpu:
        console.print(
            f"note: --workers {args.workers} leaves GPU slots idle "
            f"({len(gpus)} GPU(s) x {runs_per_gpu} run(s) each)"
        )
    elif gpus and args.workers is not None and workers < args.workers:
        console.print(
            f"note: at most {workers} GPU run(s) at once ({len(gpus)} GPU(s) x {runs_per_gpu}); "
            "--runs-per-gpu puts more runs on each GPU"
        )
    if setup.ray is None and workers * threads > cores:
        console.print(
            f"warning: {workers} workers x {threads} threads exceed {cores} cores; "
            "runs will compete for the CPU"
        )
    if spec.raw.get("early_terminate") or spec.raw.get("metric"):
        console.print("note: metric and early_terminate are for W&B's server; ignored here")


def _group_note(name: str, command_group: str | None) -> str:
    if command_group is None or command_group == name:
        return "the sweep's name"
    return (
        f"the sweep's name; the config's {command_group!r} is overridden, also under `wandb "
        f"agent` once the command adds --wandb.group={name}"
    )


def start_method(cold: bool, warm: bool, environ: Mapping[str, str]) -> Start:
    """How runs start: ``--cold``/``--warm``, else ``$LIGHTNING_APP_START``, else warm on Linux.

    Elsewhere the default is cold: macOS's system libraries are not safe to use in a fork of a
    process that loaded them (why Python's multiprocessing spawns there), Windows cannot fork.
    """
    if cold and warm:
        raise UserError("--cold and --warm contradict each other; give one of them")
    if cold or warm:
        return "cold" if cold else "warm"
    value = environ.get(START_VAR, "").strip().lower()
    if value in ("cold", "warm"):
        return "cold" if value == "cold" else "warm"
    if value:
        raise UserError(f"${START_VAR}={environ[START_VAR]!r}: expected cold or warm")
    return "warm" if sys.platform.startswith("linux") else "cold"


def _gpus(flag: str | None, runs_per_gpu: int | None) -> list[str]:
    """The GPUs the sweep's runs get (empty: no slots, every run sees what the runner sees)."""
    if flag is not None and flag.strip().lower() == "none":
        if runs_per_gpu is not None:
            raise UserError("--runs-per-gpu needs GPUs, and --gpus none turns them off")
        return []
    gpus = select_gpus(flag, environment_devices(), os.environ)
    if not gpus and runs_per_gpu is not None:
        where = f" (CUDA_VISIBLE_DEVICES={os.environ[VISIBLE]})" if VISIBLE in os.environ else ""
        raise UserError(
            f"--runs-per-gpu {runs_per_gpu}: this machine has no CUDA device that torch can "
            f"see{where}; use --workers to run several runs on the CPU"
        )
    return gpus


def _dry_run_devices(
    runs: list[PlannedRun],
    needs: dict[str, int],
    gpus: list[str],
    runs_per_gpu: int,
    workers: int,
) -> list[str | None]:
    """Each run's CUDA_VISIBLE_DEVICES if all runs took equally long (None: not set)."""
    if not gpus:
        return [None] * len(runs)
    placed = dry_run_allocations([needs[run.key] for run in runs], gpus, runs_per_gpu, workers)
    return [allocation.visible(gpus) for allocation in placed]


def _plan_options(spec: SweepSpec, count: int | None, seed: int | None) -> dict[str, Any]:
    """The options that shape the plan, stored with it so a restart runs the same runs."""
    if spec.method == "random":
        return {"count": count, "seed": seed}
    if seed is not None:
        raise UserError("--seed only applies to random sweeps (a grid draws nothing)")
    return {"count": count}


def _print_dry_run(
    console: Console,
    folder: SweepFolder,
    runs: list[PlannedRun],
    command: Any,
    threads: int,
    mode: ModeChoice,
    visible: list[str | None],
) -> None:
    store = StateStore(folder.root) if folder.exists() else None
    console.print(
        f"each run: OMP_NUM_THREADS={threads}, W&B {mode.mode}, log in {folder.root}/<run>/run.log"
    )
    if any(devices is not None for devices in visible):
        console.print(
            f"{VISIBLE} below: where each run goes if all runs take equally long (the runner "
            "gives each run the next free slot when it starts; empty: a CPU run sees no GPU)"
        )
    for run, devices in zip(runs, visible, strict=True):
        status = store.status(run.key) if store is not None else "pending"
        prefix = f"{VISIBLE}={shlex.quote(devices)} " if devices is not None else ""
        console.print(
            f"[{status}] {run.key}: {prefix}{shlex.join(command(run))}",
            soft_wrap=True,
            markup=False,
        )


def _run(job: SweepJob, setup: RunSetup, launcher: Launcher) -> int:
    """Run the sweep (in rounds when adaptive) under the folder's lock; the exit status."""
    args, spec, folder, console = job.args, job.spec, job.folder, job.console
    folder.root.mkdir(parents=True, exist_ok=True)
    with sweep_lock(folder.root):
        if not folder.exists():
            folder.create(spec, job.runs, job.plan_options)
        else:  # another runner may have started it between our check and the lock
            folder.check_compatible(spec, job.plan_options)
        if args.repair:
            _repair(job)
        progress = SweepProgress(console, spec.name)

        def run_runs(todo: list[PlannedRun]) -> Summary:
            runner = SweepRunner(
                folder,
                todo,
                job.command,
                RunnerOptions(
                    workers=setup.workers,
                    threads=setup.threads,
                    retry=args.retry,
                    wandb_mode=args.wandb_mode,
                ),
                progress,
                scheduler=setup.scheduler(job.gpus, args.runs_per_gpu or 1),
                launcher=launcher,
            )
            recovered = runner.recover()
            done = sum(runner.store.status(r.key) == "done" for r in todo)
            if done or recovered:
                console.print(
                    f"resuming: {done} of {len(todo)} runs done; "
                    f"{len(recovered)} interrupted run(s) start again from scratch"
                )
            return runner.run()

        def report(summary: Summary, total: int) -> None:
            _finish(console, spec, folder, summary, total)

        if job.rounds is not None:
            outcome = adaptive.run_adaptive(
                console,
                folder,
                spec,
                job.rounds,
                job.adaptive_options or adaptive.AdaptiveOptions(),
                run_runs,
                report,
                setup.workers,
            )
            return exit_status(outcome.unfinished) if outcome.unfinished is not None else 0
        summary = run_runs(job.runs)
    report(summary, len(job.runs))
    return exit_status(summary)


def _repair(job: SweepJob) -> None:
    """``--repair``: rebuild a damaged or missing state file (the caller holds the lock)."""
    if not state_needs_repair(job.folder):
        job.note(f"--repair: {job.folder.root / STATE_FILE} reads fine; nothing to repair")
        return
    job.note(repair_state(job.folder, [run.key for run in job.runs]).describe())


def exit_status(summary: Summary) -> int:
    """130 when the runner was stopped, 1 when a run failed after its retries, else 0."""
    if summary.stopped:
        return 130
    return 1 if summary.failed else 0


def _finish(
    console: Console, spec: SweepSpec, folder: SweepFolder, summary: Summary, total: int
) -> None:
    """The sweep's (or a round's) summary line, and what to do about failed or stopped runs."""
    durations = summary.durations
    mean = f", mean run {sum(durations) / len(durations):.1f} s" if durations else ""
    console.print(
        f"sweep {spec.name}: {summary.done} of {total} done, {len(summary.failed)} failed"
        f"{', stopped' if summary.stopped else ''} in {format_duration(summary.elapsed_s)}"
        f" ({summary.ran} started{mean}); runs in {folder.root}"
    )
    for key in summary.failed:
        console.print(f"failed: {key}: see {folder.log_path(key)}")
    for key in summary.lost:
        console.print(f"lost: {key}: its Ray node or worker died mid-run; it was started again")
    if summary.stopped:
        console.print(
            f"stopped: {summary.interrupted} run(s) were interrupted; run the same command "
            "again to finish the sweep"
        )


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
