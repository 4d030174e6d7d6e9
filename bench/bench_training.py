"""Training throughput and the data path, side by side with plain PyTorch, in one process.

    python bench/bench_training.py            # about 3-5 minutes on a 2-core CPU

1. Samples/s of the BDRNN trained through the real LightningCLI path (``AppCLI``: our model,
   DataModule, W&B logger offline, checkpointing, progress bar) vs a plain PyTorch loop (the study's
   script: ``nn.LSTM`` + ``nn.Linear``, Adam, a for-loop) over the same in-memory batches in the
   same order, at (hidden 128, 2 layers, batch 100) and (hidden 10, 2 layers, batch 100).
   Runs alternate (L, P, L, P, ...) so a busy machine slows both alike; medians are reported.
2. One epoch of batches from our DataModule vs torchvision's dataset + ToTensor + DataLoader, and
   the data's share of a training step.
3. The achieved FLOP rate of a training step vs this CPU's matmul rate (see ``step_flops``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lightning_app.cli import AppCLI  # noqa: E402
from lightning_app.data import MNISTDataModule  # noqa: E402
from lightning_app.data.datasets import DEBIAN_FASHION_MNIST  # noqa: E402

WARMUP = 3  # batches excluded from every rate (allocator, thread pool warm-up)


class StepTimer(L.Callback):
    """Wall-clock time at the start of every training batch: the whole loop, hooks included."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
        self.times.append(time.perf_counter())

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
        self.times.append(time.perf_counter())


def rate(times: list[float], batch_size: int) -> float:
    steps = len(times) - 1 - WARMUP
    return steps * batch_size / (times[-1] - times[WARMUP])


def lightning_rate(dataset: str, hidden: int, batches: int, workdir: Path) -> float:
    """Samples/s through the real CLI path, as ``python -m lightning_app fit`` builds it."""
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
    timer = StepTimer()
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, cli.datamodule)
    import wandb

    wandb.finish()  # a second run in this process must not reuse the first (DESIGN.md)
    return rate(timer.times, 100)


class PlainBDRNN(nn.Module):
    """The study's network as plain PyTorch (yunjey's bidirectional RNN tutorial)."""

    def __init__(self, hidden: int, layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(28, hidden, layers, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


def plain_rate(data: MNISTDataModule, hidden: int, batches: int) -> float:
    """Samples/s of a plain loop over the same batches in the same order.

    Runs after the first Lightning run, which (like ``python -m lightning_app`` on a machine
    without CUDA devices) has cleared ``PYTORCH_NVML_BASED_CUDA_CHECK``, so neither side pays
    torch's per-step NVML probe; the study's script never imported Lightning and never paid it.
    """
    torch.manual_seed(0)
    model = PlainBDRNN(hidden, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    loss_fn = nn.CrossEntropyLoss()
    loader = data.train_dataloader()
    loader.sampler.set_epoch(0)
    times = []
    for i, (images, labels) in enumerate(loader):
        if i == batches:
            break
        times.append(time.perf_counter())
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    times.append(time.perf_counter())
    return rate(times, 100)


def data_path(workdir: Path, dataset: str) -> dict[str, float]:
    """Seconds per epoch of batches (batch 100): ours vs torchvision + ToTensor + DataLoader."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    data = MNISTDataModule(dataset=dataset, data_dir=str(workdir / "data"), batch_size=100)
    data.setup("fit")
    ours = data.train_dataloader()
    start = time.perf_counter()
    n_ours = sum(len(labels) for _, labels in ours)
    t_ours = time.perf_counter() - start

    tv_class = datasets.FashionMNIST if dataset == "fashion-mnist" else None
    if tv_class is None:
        return {"ours_s": t_ours, "ours_n": n_ours}
    tv = tv_class(
        str(workdir / "data"), train=True, download=False, transform=transforms.ToTensor()
    )
    loader = DataLoader(tv, batch_size=100, shuffle=True)
    start = time.perf_counter()
    n_tv = sum(len(labels) for _, labels in loader)
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


def matmul_peak(seconds: float = 2.0, n: int = 1024) -> float:
    """Achieved FLOP/s of a large float32 matmul: the practical ceiling of this CPU."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start)


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
    print("\n| model | plain PyTorch (samples/s) | Lightning CLI (samples/s) | ratio |")
    print("|---|---|---|---|")
    for hidden, batches in ((128, 60), (10, 500)):
        lightning, plain = [], []
        for _ in range(args.repeats):
            lightning.append(lightning_rate(dataset, hidden, batches, workdir))
            plain.append(plain_rate(data, hidden, batches))
        lm, pm = statistics.median(lightning), statistics.median(plain)
        print(
            f"| hidden {hidden}, 2 layers, batch 100 | {pm:,.0f} ({min(plain):,.0f}-"
            f"{max(plain):,.0f}) | {lm:,.0f} ({min(lightning):,.0f}-{max(lightning):,.0f}) "
            f"| {lm / pm:.2f}x |"
        )
        if hidden == 128:
            step_s = 100 / pm

    timing = data_path(workdir, dataset)
    per_batch = timing["ours_s"] / (timing.get("n", 0) or timing["ours_n"]) * 100
    print("\n| data path, one epoch, batch 100 | seconds |\n|---|---|")
    print(f"| ours (index in-memory tensors) | {timing['ours_s']:.3f} |")
    if "torchvision_s" in timing:
        print(f"| torchvision + ToTensor + DataLoader | {timing['torchvision_s']:.2f} |")
        print(f"| speed-up | {timing['torchvision_s'] / timing['ours_s']:.0f}x |")
    print(f"\ndata per batch: {per_batch * 1e3:.3f} ms = {per_batch / step_s:.2%} of a hidden-128 "
          "training step")  # fmt: skip

    peak = matmul_peak()
    print("\n| hidden | FLOP/step | achieved GFLOP/s (plain) | matmul GFLOP/s | fraction |")
    print("|---|---|---|---|---|")
    for hidden, batches in ((128, 60), (10, 500)):
        flops = step_flops(hidden)
        achieved = flops * plain_rate(data, hidden, batches) / 100
        print(f"| {hidden} | {flops / 1e9:.3f} G | {achieved / 1e9:.1f} | {peak / 1e9:.1f} | "
              f"{achieved / peak:.1%} |")  # fmt: skip


if __name__ == "__main__":
    main()
