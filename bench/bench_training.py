"""Training throughput and the data path, side by side with plain PyTorch, in one process.

    python bench/bench_training.py            # minutes on a CPU (BENCHMARKS.md: time, machine)

1. Samples/s of the BDRNN trained through the real LightningCLI path (``AppCLI``: our model,
   DataModule, W&B logger offline, checkpointing, progress bar) vs a plain PyTorch loop (the study's
   script: ``nn.LSTM`` + ``nn.Linear``, Adam, a for-loop) over the same in-memory batches in the
   same order, at (hidden 128, 2 layers, batch 100) and (hidden 10, 2 layers, batch 100). Two more
   references: a bare ``Trainer`` with the same model (Lightning's own per-step cost, the floor of
   any Lightning path) and the study's script as written (torchvision's DataLoader). The plain
   loop runs interleaved with each Lightning run (``Interleaved``): ratios are per run, then the
   median over repeats.
2. One epoch of batches from our DataModule vs torchvision's dataset + ToTensor + DataLoader, and
   the data's share of a training step.
3. The achieved FLOP rate of a training step vs this CPU's matmul rate (see ``step_flops``),
   measured in alternating rounds.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import lightning as L
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lightning_app.cli import AppCLI  # noqa: E402
from lightning_app.data import MNISTDataModule  # noqa: E402
from lightning_app.data.datasets import DEBIAN_FASHION_MNIST  # noqa: E402
from lightning_app.model import BDRNN  # noqa: E402

WARMUP = 3  # steps excluded from every rate (allocator, thread pool warm-up)


class PlainNetwork(nn.Module):
    """The study's network as plain PyTorch (yunjey's bidirectional RNN tutorial)."""

    def __init__(self, hidden: int, layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(28, hidden, layers, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


class PlainLoop:
    """The study's training loop (model, Adam, a for-loop), one step at a time."""

    def __init__(self, hidden: int, batches_of: Batches) -> None:
        torch.manual_seed(0)
        self.model = PlainNetwork(hidden, 2)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.003)
        self.loss_fn = nn.CrossEntropyLoss()
        self.batches = iter(batches_of)

    def step(self) -> None:
        images, labels = next(self.batches)
        loss = self.loss_fn(self.model(images.reshape(-1, 28, 28)), labels)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


class Interleaved:
    """Runs the plain loop in blocks between blocks of Lightning steps, and times both sides.

    Interleaving is what makes the ratio trustworthy on a shared VM whose speed changes by up
    to 2x within seconds: both sides are sampled over the same moments. Blocks of ~0.15 s
    rather than single steps keep each side's caches warm within a block (alternating every
    step evicts the Lightning loop's Python objects each time and would bias against it). The
    plain block runs inside the model's ``on_train_batch_start`` every ``block`` batches (a
    wrapped instance hook, not a callback: Lightning dispatches every hook to every callback,
    ~45 us per step). Lightning's time is everything between plain blocks: training steps,
    hooks, logging, progress bar, fetching and moving batches.
    """

    def __init__(self, plain: PlainLoop, model: L.LightningModule, block: int) -> None:
        self.plain, self.block = plain, block
        self.marks: list[tuple[float, float]] = []  # (start, end) of each plain block
        epoch_end = model.on_train_epoch_end

        def on_train_batch_start(batch: object, batch_idx: int) -> None:
            if batch_idx % block == 0:
                start = time.perf_counter()
                for _ in range(block):
                    self.plain.step()
                self.marks.append((start, time.perf_counter()))

        def on_train_epoch_end() -> None:
            self.marks.append((time.perf_counter(), math.nan))
            epoch_end()

        model.on_train_batch_start = on_train_batch_start  # type: ignore[method-assign,assignment]
        model.on_train_epoch_end = on_train_epoch_end  # type: ignore[method-assign]

    def rates(self, batch_size: int = 100) -> tuple[float, float]:
        """Samples/s of (Lightning, plain), the first block of each side left out as warm-up."""
        blocks = range(1, len(self.marks) - 1)
        plain = sum(self.marks[i][1] - self.marks[i][0] for i in blocks)
        lightning = sum(self.marks[i + 1][0] - self.marks[i][1] for i in blocks)
        samples = len(blocks) * self.block * batch_size
        return samples / lightning, samples / plain


def cli_beside(
    plain: PlainLoop, dataset: str, hidden: int, batches: int, workdir: Path, block: int
) -> Interleaved:
    """The real CLI path, as ``python -m lightning_app fit`` builds it, beside the plain loop."""
    os.chdir(workdir)
    cli = AppCLI(
        args=[
            "--config", str(REPO / "configs/quickstart.yaml"),
            f"--data.dataset={dataset}", f"--data.data_dir={workdir / 'data'}",
            "--data.batch_size=100", f"--model.hidden_size={hidden}", "--model.num_layers=2",
            "--trainer.max_epochs=1", f"--trainer.limit_train_batches={batches}",
            "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0",
            "--trainer.enable_model_summary=false", "--wandb.mode=offline",
        ],
        run=False,
    )  # fmt: skip
    interleaved = Interleaved(plain, cli.model, block)
    cli.trainer.fit(cli.model, cli.datamodule)
    import wandb

    # with run=False the caller ends the W&B run: wandb.init would return it to the next run
    wandb.finish()
    return interleaved


def bare_trainer_beside(
    plain: PlainLoop, dataset: str, hidden: int, batches: int, workdir: Path, block: int
) -> Interleaved:
    """A bare ``Trainer`` (no logger, checkpoint or bar): Lightning's own per-step cost."""
    L.seed_everything(0, verbose=False)
    model = BDRNN(hidden_size=hidden, num_layers=2, learning_rate=0.003)
    data = MNISTDataModule(dataset=dataset, data_dir=str(workdir / "data"), batch_size=100)  # type: ignore[arg-type]
    interleaved = Interleaved(plain, model, block)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=1, limit_train_batches=batches,
        limit_val_batches=0, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=workdir,
    )  # fmt: skip
    trainer.fit(model, data)
    return interleaved


def our_batches(data: MNISTDataModule) -> Batches:
    """The batches the Lightning side trains on, in the same order (epoch 0 of seed 0)."""
    loader = data.train_dataloader()
    loader.sampler.set_epoch(0)
    return loader


def torchvision_batches(workdir: Path) -> Batches:
    """The study's script as written: torchvision's dataset, ``ToTensor``, a shuffled loader."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    train = datasets.FashionMNIST(
        str(workdir / "data"), train=True, download=False, transform=transforms.ToTensor()
    )
    return DataLoader(train, batch_size=100, shuffle=True)


def data_path(data: MNISTDataModule, workdir: Path, with_torchvision: bool) -> dict[str, float]:
    """Seconds per epoch of batches (batch 100): ours vs torchvision + ToTensor + DataLoader."""
    start = time.perf_counter()
    n_ours = sum(len(labels) for _, labels in our_batches(data))
    t_ours = time.perf_counter() - start
    if not with_torchvision:
        return {"ours_s": t_ours, "ours_n": n_ours}
    start = time.perf_counter()
    n_tv = sum(len(labels) for _, labels in torchvision_batches(workdir))
    t_tv = time.perf_counter() - start
    # Scale to the same number of samples (ours excludes the validation split).
    return {"ours_s": t_ours * n_tv / n_ours, "torchvision_s": t_tv, "n": n_tv}


def step_flops(hidden: int, layers: int = 2, batch: int = 100, steps: int = 28) -> float:
    """FLOPs of one training step, counted analytically.

    Per layer, direction and time step an LSTM does 4 gate matmuls: 2 * 4H * (I + H) FLOPs per
    sample (I = 28 for the first layer, 2H above), plus the head 2 * 2H * 10. Backward costs about
    twice the forward (gradients w.r.t. inputs and weights), so a step is ~3x the forward.
    Elementwise gate activations are ignored (<5 % at these sizes).
    """
    forward = 0.0
    for layer in range(layers):
        inputs = 28 if layer == 0 else 2 * hidden
        forward += 2 * (2 * 4 * hidden * (inputs + hidden)) * steps
    forward += 2 * 2 * hidden * 10
    return 3 * forward * batch


def matmul_peak(seconds: float, n: int = 1024) -> float:
    """Achieved FLOP/s of a large float32 matmul: the practical ceiling of this CPU."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start)


def flop_rates(data: MNISTDataModule, hidden: int, rounds: int = 5) -> list[tuple[float, float]]:
    """(achieved, peak) FLOP/s of the plain loop's steps and of the matmul, in alternating rounds.

    Each round times ~1 s of training steps and then ~1 s of matmul, so both are measured at the
    same moments of a VM whose speed drifts.
    """
    plain = PlainLoop(hidden, our_batches(data))
    for _ in range(WARMUP):
        plain.step()
    results = []
    for _ in range(rounds):
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < 1.0:
            plain.step()
            steps += 1
        achieved = step_flops(hidden) * steps / (time.perf_counter() - start)
        results.append((achieved, matmul_peak(seconds=1.0)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    dataset = "fashion-mnist" if DEBIAN_FASHION_MNIST.is_dir() else "mnist-5k"
    workdir = Path(tempfile.mkdtemp(prefix="bench-training-"))
    cpu = platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    print(f"machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {threads} threads")
    print(f"data: {dataset}")

    data = MNISTDataModule(dataset=dataset, data_dir=str(workdir / "data"), batch_size=100)
    data.setup("fit")
    with_torchvision = dataset == "fashion-mnist"
    print(
        "\nSamples/s, median (min-max) over repeats. Each Lightning run has a plain loop"
        " interleaved with it in blocks of ~0.15 s (see Interleaved); the ratio is per run,"
        " then the median."
        "\n\n| model | Lightning CLI | plain loop, same batches | CLI / plain | bare Trainer "
        "| bare / plain |"
        + (" CLI / study script as written (torchvision DataLoader) |" * with_torchvision)
    )  # fmt: skip
    print("|---" * (6 + with_torchvision) + "|")

    def cell(rates: list[float]) -> str:
        return f"{statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"

    def ratio(pairs: list[tuple[float, float]]) -> str:
        per_run = [light / plain for light, plain in pairs]
        low, high = min(per_run), max(per_run)
        return f"**{statistics.median(per_run):.2f}x** ({low:.2f}-{high:.2f})"

    for hidden, batches, block in ((128, 60, 2), (10, 500, 20)):
        cli, bare, study = [], [], []
        for _ in range(args.repeats):
            side = PlainLoop(hidden, our_batches(data))
            cli.append(cli_beside(side, dataset, hidden, batches, workdir, block).rates())
            side = PlainLoop(hidden, our_batches(data))
            bare.append(bare_trainer_beside(side, dataset, hidden, batches, workdir, block).rates())
            if with_torchvision:
                side = PlainLoop(hidden, torchvision_batches(workdir))
                study.append(cli_beside(side, dataset, hidden, batches, workdir, block).rates())
        print(
            f"| hidden {hidden}, 2 layers, batch 100 | {cell([c for c, _ in cli])} "
            f"| {cell([p for _, p in cli])} | {ratio(cli)} | {cell([b for b, _ in bare])} "
            f"| {ratio(bare)} |" + (f" {ratio(study)} |" if with_torchvision else "")
        )
        if hidden == 128:
            step_s = 100 / statistics.median(p for _, p in cli)

    timing = data_path(data, workdir, with_torchvision)
    per_batch = timing["ours_s"] / (timing.get("n", 0) or timing["ours_n"]) * 100
    print("\n| data path, one epoch, batch 100 | seconds |\n|---|---|")
    print(f"| ours (index in-memory tensors) | {timing['ours_s']:.3f} |")
    if "torchvision_s" in timing:
        print(f"| torchvision + ToTensor + DataLoader | {timing['torchvision_s']:.2f} |")
        print(f"| speed-up | {timing['torchvision_s'] / timing['ours_s']:.0f}x |")
    print(f"\ndata per batch: {per_batch * 1e3:.3f} ms = {per_batch / step_s:.2%} of a hidden-128 "
          "training step")  # fmt: skip

    print("\n| hidden | FLOP/step | achieved GFLOP/s (plain) | matmul GFLOP/s | fraction |")
    print("|---|---|---|---|---|")
    for hidden in (128, 10):
        rounds = flop_rates(data, hidden)
        achieved, peak = ([r[i] / 1e9 for r in rounds] for i in (0, 1))
        fraction = [a / p for a, p in zip(achieved, peak, strict=True)]
        flops = step_flops(hidden) / 1e9
        print(f"| {hidden} | {flops:.3f} G | {min(achieved):.1f}-{max(achieved):.1f} "
              f"| {min(peak):.1f}-{max(peak):.1f} | {statistics.median(fraction):.1%} "
              f"({min(fraction):.1%}-{max(fraction):.1%}) |")  # fmt: skip


if __name__ == "__main__":
    main()
