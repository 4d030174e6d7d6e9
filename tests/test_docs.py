"""The documentation's promises: a short README, live links, and numbers that match their source.

Numbers quoted from generated files (docs/validation.md from ``make validate``, the CPU study's
report.json / report.md from ``make study-report``) are recomputed here from those files, so a
regenerated file that moves a number fails this test until the prose is updated. Pure file reads:
no subprocess, well under a second.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_BYTES = 12_000

# Where the project's own files live (tests/ excluded: this file names what it looks for).
PROJECT_DIRS = ("lightning_app", "analyses", "configs", "bench", "docs", ".ci")
PROJECT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".json", ""}
MISSING_DOC = "DESIGN" + ".md"


def _read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


@cache
def _report(folder: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(_read(f"{folder}/report.json"))
    return result


def _signal(folder: str, param: str) -> dict[str, Any]:
    params: dict[str, dict[str, Any]] = _report(folder)["analyses"]["signal-effects"]["params"]
    return params[param]


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.2f} %"


def _f_test(entry: dict[str, Any]) -> str:
    return f"F({entry['df_num']}, {entry['df_denom']}) = {entry['f_statistic']:.3g}"


# --- size, and the file the project does not have ---------------------------------------------


def test_readme_is_at_most_12000_bytes() -> None:
    size = len(README.read_bytes())
    assert size <= MAX_README_BYTES, f"README.md is {size} bytes; move reference text into docs/"


def _project_files() -> Iterator[Path]:
    for path in ROOT.iterdir():
        if path.is_file() and path.suffix in PROJECT_SUFFIXES:
            yield path
    for folder in PROJECT_DIRS:
        for path in (ROOT / folder).rglob("*"):
            if (
                path.is_file()
                and path.suffix in PROJECT_SUFFIXES
                and "__pycache__" not in path.parts
            ):
                yield path


def test_no_project_file_mentions_a_design_file_the_project_does_not_have() -> None:
    assert not (ROOT / MISSING_DOC).exists()
    citing = [
        str(path.relative_to(ROOT))
        for path in _project_files()
        if MISSING_DOC in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert citing == [], f"{citing} cite {MISSING_DOC}; the design document is docs/architecture.md"


# --- links ------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(markdown: str) -> set[str]:
    prose = FENCE.sub("", markdown)
    return {_github_slug(m) for m in re.findall(r"^#{1,6} (.+)$", prose, re.MULTILINE)}


def _relative_links(markdown: str) -> list[str]:
    prose = FENCE.sub("", markdown)
    return [t for t in LINK.findall(prose) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("name", ["README.md", "CONTRIBUTING.md", "BENCHMARKS.md"])
def test_every_relative_link_points_to_a_file_and_heading_that_exist(name: str) -> None:
    source = ROOT / name
    text = source.read_text(encoding="utf-8")
    links = _relative_links(text)
    assert links or name != "README.md"
    broken = []
    for link in links:
        target, _, anchor = link.partition("#")
        path = (source.parent / target) if target else source
        missing_anchor = (
            path.exists()
            and anchor != ""
            and path.suffix == ".md"
            and anchor not in _anchors(path.read_text("utf-8"))
        )
        if not path.exists() or missing_anchor:
            broken.append(link)
    assert broken == [], f"{name}: broken links {broken}"


def test_the_slug_rule_matches_github() -> None:
    assert _github_slug("Which mode a run logs in") == "which-mode-a-run-logs-in"
    assert _github_slug("`validate`, `test`, `predict`: evaluations") == (
        "validate-test-predict-evaluations"
    )


# --- README: the commands it shows -------------------------------------------------------------


def test_readme_shows_the_setup_main_and_test_commands() -> None:
    text = README.read_text(encoding="utf-8")
    for command in (
        'pip install -e ".[dev]"',
        "python -m lightning_app fit --config configs/quickstart.yaml",
        "python -m lightning_app analyze --list",
        "pytest",
        "make test",
    ):
        assert command in text
    for path in re.findall(r"(configs/[\w/.-]+\.yaml)", text):
        assert (ROOT / path).exists(), path


def test_readme_first_screen_has_no_timings_or_machine_talk() -> None:
    text = README.read_text(encoding="utf-8")
    for phrase in ("this machine", "2-core", "busy machine", "on 2 cores"):
        assert phrase not in text
    first_screen = "\n".join(text.splitlines()[:40])
    assert not re.search(r"\d(\.\d+)?x (faster|a plain)", first_screen)


# --- numbers quoted from the CPU study's generated report ---------------------------------------

STUDY = "docs/study-cpu"
REPLICATED = "docs/study-cpu-replicated"


def test_readme_caption_matches_the_study_report() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    hidden = _signal(STUDY, "model.hidden_size")
    batch = _signal(STUDY, "data.batch_size")
    layers = _signal(STUDY, "model.num_layers")
    report = _report(STUDY)
    assert f"{report['noise']['runs']} noise runs and a {report['signal']['runs']}-run grid" in text
    assert f"`model.hidden_size` moves test accuracy by {_pct(hidden['effect'])}" in text
    assert f"{hidden['ratio']:.1f}x what the same split of seed-only runs gives" in text
    assert f"(**{hidden['verdict']}**)" in text
    assert f"`data.batch_size` is **{batch['verdict']}** ({batch['ratio']:.1f}x)" in text
    assert f"`model.num_layers` is **{layers['verdict']}** ({layers['ratio']:.1f}x" in text
    assert (ROOT / STUDY / "signal-effects-effects.png").exists()


def test_readme_transcript_lines_are_the_reports_findings() -> None:
    findings = {line[2:] for line in _read(f"{STUDY}/report.md").splitlines() if line[:2] == "- "}
    quoted = [line.strip()[2:] for line in _read("README.md").splitlines() if "  • " in line]
    assert quoted
    for line in quoted:
        assert line in findings, line


STUDY_ROWS = {
    "hidden size": "model.hidden_size",
    "batch size": "data.batch_size",
    "layer count": "model.num_layers",
}


def _study_table_row(heading: str, label: str) -> str:
    text = _read("docs/study-cpu.md")
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith(f"| {label} |")]
    assert len(rows) == 1, (heading, label)
    return rows[0]


@pytest.mark.parametrize("label", STUDY_ROWS)
def test_study_page_tables_match_both_reports(label: str) -> None:
    fixed = _signal(STUDY, STUDY_ROWS[label])
    replicated = _signal(REPLICATED, STUDY_ROWS[label])
    side = _study_table_row("Side by side", label)
    quoted = f"{_pct(fixed['effect'])} vs {_pct(fixed['noise_effect'])} ({fixed['ratio']:.1f}x)"
    assert quoted in side
    assert _f_test(fixed) in side
    assert f"**{fixed['verdict']}**" in side
    with_replicates = _study_table_row("The verdicts with replicates", label)
    cells = with_replicates.split(" | ")
    for entry, cell in ((fixed, cells[1]), (replicated, cells[2])):
        assert f"{_pct(entry['effect'])}, {entry['ratio']:.1f}x, {_f_test(entry)}" in cell
        assert f"**{entry['verdict']}**" in cell


# --- numbers quoted from docs/validation.md ----------------------------------------------------


def _numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)]


def _decimals(number: str) -> int:
    return len(number.split(".")[1]) if "." in number else 0


def _validation(pattern: str) -> list[float]:
    match = re.search(pattern, _read("docs/validation.md"))
    assert match, f"docs/validation.md no longer says {pattern!r}"
    return [float(g) for g in match.groups()]


def _saved_for_large_effects() -> list[float]:
    """The 'saved' column of the adaptive rule's planted-effect table, at effect 2 noise sd."""
    text = _read("docs/validation.md")
    section = text.split("### Planted effect on the target", 1)[1].split("\n### ", 1)[0]
    saved = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 12 and cells[5] == "2.000":
            saved.append(float(cells[10]))
    assert saved
    return [min(saved), max(saved)]


# (page, the phrase as the page words it, where the numbers come from, factor to the page's unit)
QUOTES = [
    (
        "docs/statistics.md",
        r"significant in ([\d.]+)-([\d.]+) % of simulated studies",
        r"The replaced noise-split test: ([\d.]+)-([\d.]+)",
        100,
    ),
    (
        "docs/statistics.md",
        r"the F test below, ([\d.]+)-([\d.]+) %",
        r"F with signal error \(the default\): ([\d.]+)-([\d.]+)",
        100,
    ),
    (
        "docs/statistics.md",
        r"`signal` stays at\s+([\d.]+)-([\d.]+) %",
        r"F with signal error \(the default\): ([\d.]+)-([\d.]+)",
        100,
    ),
    (
        "docs/statistics.md",
        r"significant in up to ([\d.]+) % of simulated studies and `pooled` in up to ([\d.]+) %",
        r"noise error up to ([\d.]+), pooled up to ([\d.]+)",
        100,
    ),
    (
        "docs/statistics.md",
        r"significant in\s+([\d.]+)-([\d.]+) % of simulated sweeps",
        r"Testing at alpha at every look instead[^:]*: ([\d.]+)-([\d.]+) for the target",
        100,
    ),
    (
        "docs/statistics.md",
        r"false-positive rate\s+is ([\d.]+)-([\d.]+) % at alpha 0.05 \(family-wise over all "
        r"parameters ([\d.]+)-([\d.]+) %",
        r"all looks: \*\*([\d.]+)-([\d.]+)\*\*.*?all are null: ([\d.]+)-([\d.]+)\.",
        100,
    ),
    (
        "docs/statistics.md",
        r"uses ([\d.]+)-([\d.]+) % of the budget when nothing has an effect",
        r"mean runs under the null ([\d.]+)%-([\d.]+)% of the budget",
        1,
    ),
    (
        "docs/statistics.md",
        r"can cost up to ([\d.]+) % more",
        r"the adaptive rule saves -([\d.]+)% to",
        1,
    ),
    (
        "docs/study-cpu.md",
        r"significant\s+in ([\d.]+)-([\d.]+) % of studies",
        r"The replaced noise-split test: ([\d.]+)-([\d.]+)",
        100,
    ),
]


@pytest.mark.parametrize(("page", "phrase", "source", "factor"), QUOTES)
def test_numbers_quoted_from_validation_match_it(
    page: str, phrase: str, source: str, factor: float
) -> None:
    match = re.search(phrase, " ".join(_read(page).split()))
    assert match, f"{page} no longer says {phrase!r}: update this test with the page"
    expected = _validation(source)
    quoted = match.groups()
    assert len(quoted) == len(expected)
    for text, value in zip(quoted, expected, strict=True):
        tolerance = 0.5 * 10 ** -_decimals(text) + 1e-9
        assert abs(float(text) - value * factor) <= tolerance, (page, text, value * factor)


def test_adaptive_savings_for_large_effects_match_validation() -> None:
    text = " ".join(_read("docs/statistics.md").split())
    match = re.search(r"it saves ([\d.]+)-([\d.]+) % of the runs for large effects", text)
    assert match
    for quoted, value in zip(match.groups(), _saved_for_large_effects(), strict=True):
        assert abs(float(quoted) - value * 100) <= 0.5 + 1e-9, (quoted, value)


# --- CONTRIBUTING's promise table names tests that exist ---------------------------------------


def test_every_test_the_promise_table_names_exists() -> None:
    text = _read("CONTRIBUTING.md")
    table = text.split("## Promises and the tests that check them", 1)[1].split("\n## ", 1)[0]
    named = 0
    for row in table.splitlines():
        current = ""
        for ref in re.findall(r"`((?:tests/[\w/]+\.py)?(?:::\w+)?|tests/[\w/]+/?)`", row):
            path, _, name = ref.partition("::")
            current = path or current
            assert (ROOT / current).exists(), ref
            if name:
                source = (ROOT / current).read_text(encoding="utf-8")
                assert re.search(rf"def {name}\(", source), f"{current}::{name} not found"
                named += 1
    assert named >= 20


def test_benchmarks_summary_quotes_only_numbers_its_sections_measured() -> None:
    text = _read("BENCHMARKS.md")
    before, after = text.split("## In short", 1)
    summary, rest = after.split("\n## ", 1)
    measured = set(re.findall(r"\d[\d,]*(?:\.\d+)?", before + rest))
    quoted = re.findall(r"\d[\d,]*(?:\.\d+)?", summary)
    assert quoted
    assert [n for n in quoted if n not in measured] == []


def _variance_check(folder: str) -> dict[str, Any]:
    check: dict[str, Any] = _report(folder)["analyses"]["signal-effects"]["variance_check"]
    return check


def test_seed_noise_numbers_match_both_reports() -> None:
    row = _study_table_row("The verdicts with replicates", "seed noise check")
    fixed, replicated = _variance_check(STUDY), _variance_check(REPLICATED)
    assert (
        f"residual sd {_pct(fixed['signal_sd'])} vs noise runs {_pct(fixed['noise_sd'])} "
        f"(ratio {fixed['variance_ratio']:.2f}, p = {fixed['p_value']:.2f})"
    ) in row
    assert (
        f"between seeds of one configuration {_pct(replicated['signal_sd'])}** vs "
        f"{_pct(replicated['noise_sd'])} (ratio {replicated['variance_ratio']:.2f}, "
        f"p = {replicated['p_value']:.2f})"
    ) in row
    statistics = " ".join(_read("docs/statistics.md").split())
    assert f"residual variance is {fixed['variance_ratio']:.2f}x the noise runs'" in statistics
    batch = _signal(STUDY, "data.batch_size")
    assert (
        f"F({batch['df_num']}, {batch['df_denom']}) = {batch['f_statistic']:.2g}, "
        f"p = {batch['p_value']:.1g} in the additive model"
    ) in statistics


def _needed(folder: str, param: str) -> tuple[int, int]:
    entry = _report(folder)["analyses"]["runs-needed"]["params"][param]
    return entry["runs_per_group"], entry["runs_per_group_signal"]


def test_study_page_runs_needed_match_both_reports() -> None:
    text = " ".join(_read("docs/study-cpu.md").split())
    hidden, batch, layers = (_needed(STUDY, STUDY_ROWS[label]) for label in STUDY_ROWS)
    assert (
        f"**hidden size {hidden[0]} per value** ({hidden[1]} to be called signal), "
        f"**batch size {batch[0]}** ({batch[1]}), **layer count {layers[0]}** ({layers[1]})"
    ) in text
    again = [_needed(REPLICATED, STUDY_ROWS[label]) for label in STUDY_ROWS]
    assert (
        "On the replicated sweep's estimates: " + ", ".join(f"{n} ({s})" for n, s in again) in text
    )


def test_study_page_interactions_match_the_replicated_report() -> None:
    row = _study_table_row("The verdicts with replicates", "interactions")
    terms = _report(REPLICATED)["analyses"]["signal-effects"]["interactions"]
    by_term = {t["term"]: t for t in terms}
    batch_hidden = by_term["data.batch_size:model.hidden_size"]
    assert (
        f"batch x hidden F({batch_hidden['df_num']}, {batch_hidden['df_denom']}) = "
        f"{batch_hidden['f_statistic']:.3g}"
    ) in row
    fixed = _report(STUDY)["analyses"]["signal-effects"]["interactions"]
    assert "none significant" in row
    assert all(t["p_adjusted"] >= 0.05 for t in fixed)


def _pct1(fraction: float) -> str:
    return f"{fraction * 100:.1f} %"


def test_study_page_spread_rows_match_the_report() -> None:
    dynamics = _report(STUDY)["analyses"]["epoch-dynamics"]
    first, last = dynamics["per_epoch"][0], dynamics["per_epoch"][-1]
    final = _study_table_row("Side by side", "final accuracy range, signal vs noise")
    assert (
        f"**{_pct1(last['signal_range'])} vs {_pct1(last['noise_range'])} "
        f"({last['range_ratio']:.1f}x)**; std {_pct(last['signal_std'])} vs "
        f"{_pct(last['noise_std'])}"
    ) in final
    start = _study_table_row("Side by side", "spread at the first epoch")
    assert (
        f"**{_pct1(first['signal_range'])} vs {_pct1(first['noise_range'])} "
        f"({first['range_ratio']:.1f}x)**; std ratio {first['std_ratio']:.1f}x"
    ) in start
    shrink = _study_table_row("Side by side", "does the signal spread shrink with training?")
    assert f"{_pct1(first['signal_range'])} -> {_pct1(last['signal_range'])}" in shrink
    assert len(dynamics["significant_epochs"]) == len(dynamics["per_epoch"])
    assert f"differ at all {len(dynamics['per_epoch'])} epochs" in shrink
