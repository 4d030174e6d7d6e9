"""``validate``, ``test`` and ``predict`` never change a training run's history.

Each evaluation is a W&B run of its own (job type = the command, the trained run's group,
``trained_run`` in its config); every reader keeps it out of training histories, and a part that
an older version logged into the trained run's own id is left out of the merge with a warning.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lightning_app.runs import load_runs
from tests.conftest import run_in_process
from tests.training.conftest import TINY, read_wandb, wandb_files

# Every command evaluates the first 4 batches of each split (evaluation loaders never shuffle):
# validate and test see exactly the images fit's last epoch evaluated, so their numbers match.
EVALUATED = [
    *TINY,
    "--trainer.limit_val_batches=4",
    "--trainer.limit_test_batches=4",
    "--trainer.limit_predict_batches=4",
    "--trainer.num_sanity_val_steps=0",
]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One tiny run trained, read, then validated, tested and predicted from its folder (the
    commands run in this process, one after the other, as a user would run them)."""
    work = tmp_path_factory.mktemp("evaluated")
    fit = run_in_process(
        [
            "fit", *EVALUATED, "--trainer.max_epochs=3", "--wandb.group=study",
            "--wandb.project=digits", "--wandb.entity=my-team",
        ],
        work,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    (run_dir,) = (work / "runs").iterdir()
    trained_id = (run_dir / "wandb_id").read_text().strip()
    before = load_runs(work / "wandb", progress=False)
    for command in ("validate", "test", "predict"):
        # As a user runs it: the trained run's folder and its last checkpoint.
        result = run_in_process(
            [
                command,
                *EVALUATED,
                f"--ckpt_path={run_dir}/checkpoints/last.ckpt",
                f"--run_dir={run_dir}",
            ],
            work,
        )
        assert result.returncode == 0, result.stderr
    return {"work": work, "run_dir": run_dir, "id": trained_id, "before": before}


def test_history_after_evaluations_equals_the_fit_only_history(evaluated) -> None:
    work, trained_id = evaluated["work"], evaluated["id"]
    before = evaluated["before"]
    after = load_runs(work / "wandb", progress=False)
    assert before.ids == after.ids == [trained_id]
    pd.testing.assert_frame_equal(after.history, before.history)
    assert sorted(after.history.index.get_level_values("epoch")) == [0, 1, 2]
    # Each evaluation is listed, naming the run it evaluated; none is silently dropped.
    reasons = sorted(s.reason.split(": ", 1)[1] for s in after.skipped)
    assert reasons == [
        f"a {c} run of run {trained_id}: evaluation results, not a training history"
        for c in ("predict", "test", "validate")
    ]
    assert not after.warnings


def test_each_evaluation_is_its_own_run_linked_to_the_trained_one(evaluated) -> None:
    work, run_dir, trained_id = evaluated["work"], evaluated["run_dir"], evaluated["id"]
    assert (run_dir / "wandb_id").read_text().strip() == trained_id  # the folder's id is kept
    for command in ("validate", "test", "predict"):
        assert (run_dir / f"config-{command}.yaml").is_file()
    logged = {r.run["job_type"]: r for r in map(read_wandb, wandb_files(work))}
    assert sorted(logged) == ["predict", "test", "train", "validate"]
    assert logged["train"].run["run_id"] == trained_id
    for command in ("validate", "test", "predict"):
        run = logged[command]
        assert run.run["run_id"] != trained_id
        assert run.run["run_group"] == "study"
        assert run.run["display_name"] == f"{command}-of-{trained_id}"
        assert run.run["config"]["update"]["trained_run"] == trained_id  # wandb.init(config=)
    (row,) = logged["validate"].epochs().values()  # the final model's numbers, once
    assert set(row) >= {"val/acc", "test/acc"}


def test_the_logged_config_shows_what_the_run_used(evaluated) -> None:
    config = read_wandb(
        next(f for f in wandb_files(evaluated["work"]) if evaluated["id"] in f.name)
    ).config
    run_dir = str(evaluated["run_dir"].resolve())
    assert config["run_dir"] == run_dir and config["trainer"]["default_root_dir"] == run_dir
    assert config["wandb"]["mode"] == "offline"
    logger = config["trainer"]["logger"]
    assert logger["class_path"].endswith("WandbLogger")
    assert logger["init_args"]["id"] == evaluated["id"]
    assert logger["init_args"]["group"] == "study"
    callbacks = {c["class_path"].rsplit(".", 1)[-1] for c in config["trainer"]["callbacks"]}
    assert {"ModelCheckpoint", "SparseRichProgressBar"} <= callbacks


def legacy_validate(trained_id: str, work: Path) -> None:
    """What a ``validate`` logged before this rule: into the trained run's own id."""
    import wandb

    run = wandb.init(
        project="lightning_app", id=trained_id, resume="allow", mode="offline",
        group="study", job_type="validate", dir=str(work),
    )  # fmt: skip
    run.log({"val/acc": 0.999, "test/acc": 0.999, "epoch": 0})
    run.finish()


def test_an_evaluation_logged_into_the_trained_id_is_not_merged(evaluated, tmp_path) -> None:
    """What versions before this rule wrote: wandb's real resume of the trained run's id."""
    import shutil

    work = tmp_path / "legacy"
    shutil.copytree(evaluated["work"] / "wandb", work / "wandb", symlinks=True)
    legacy_validate(evaluated["id"], work)
    assert len(list(work.glob(f"wandb/offline-run-*-{evaluated['id']}"))) == 2
    runs = load_runs(work / "wandb", progress=False)
    pd.testing.assert_frame_equal(runs.history, evaluated["before"].history)
    (warning,) = [w.message for w in runs.warnings]
    assert warning.endswith(
        "a validate part logged into this run's id was left out of its training history"
    )


def test_evaluations_reproduce_the_trained_runs_last_epoch(evaluated) -> None:
    """``validate`` and ``test`` of the last checkpoint give the numbers fit logged for its last
    epoch: the per-epoch ``test/acc`` is the test split's and ``val/acc`` the validation split's."""
    logged = {r.run["job_type"]: r for r in map(read_wandb, wandb_files(evaluated["work"]))}
    trained = logged["train"].epochs()
    last = trained[max(trained)]
    (validated,) = logged["validate"].epochs().values()
    assert validated["val/acc"] == last["val/acc"]
    assert validated["test/acc"] == last["test/acc"]
    tested = [row["test/acc"] for row in logged["test"].history if "test/acc" in row]
    assert tested == [last["test/acc"]]
    assert not [row for row in logged["predict"].history if set(row) & {"val/acc", "test/acc"}]


def test_project_and_entity_reach_the_run(evaluated) -> None:
    """``--wandb.project`` / ``--wandb.entity`` as the offline file records them (read with the
    project's own log reader)."""
    from wandb.proto import wandb_internal_pb2

    from lightning_app.runs.wandb_log import LogProblems, iter_payloads

    (file,) = [f for f in wandb_files(evaluated["work"]) if evaluated["id"] in f.name]
    for payload in iter_payloads(file.read_bytes(), LogProblems()):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "run":
            assert (record.run.project, record.run.entity) == ("digits", "my-team")
            break
    else:
        raise AssertionError(f"{file} has no run record")
