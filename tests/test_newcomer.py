"""What a newcomer meets first: missing extras named in one line, quiet and labelled output, `eval` offline
for the in-mask metrics, the browser install announced, and a README whose links and knob table hold.

Scripts run in subprocesses; an optional module is made unimportable there by a ``sitecustomize`` that wraps
every finder of ``sys.meta_path`` so that none finds it (as if the extra had never been installed).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from attentive_eraser.cli import main
from attentive_eraser.evaluation.evaluate import METRICS, expand_metrics
from attentive_eraser.runtime import OPTIONAL_MODULES, MissingExtraError, check_extra, quiet_third_party
from attentive_eraser.settings import DEFAULT_SEED, FAST_KNOBS, PRESETS, knob

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

BLOCKER = '''
import os
import sys

_BLOCKED = set(os.environ.get("NEWCOMER_BLOCKED", "").split(","))


class _Hiding:
    """A finder of sys.meta_path that no longer finds the modules of NEWCOMER_BLOCKED, as if not installed."""

    def __init__(self, finder):
        self._finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _BLOCKED:
            return None
        return self._finder.find_spec(name, path, target)

    def __getattr__(self, attribute):  # invalidate_caches, find_distributions, ...
        return getattr(self._finder, attribute)


sys.meta_path[:] = [_Hiding(finder) if hasattr(finder, "find_spec") else finder for finder in sys.meta_path]
'''


@pytest.fixture(scope="module")
def blocker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("blocker")
    (folder / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    return folder


def run_blocked(
    command: list[str], blocker: Path, blocked: str, cwd: Path = REPO, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``command`` with the comma-separated modules ``blocked`` unimportable in every Python it starts."""
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO / "src")]),
        "NEWCOMER_BLOCKED": blocked,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=cwd, timeout=timeout)


def one_error_line(completed: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused run (exit 2, no traceback)."""
    lines = completed.stderr.strip().splitlines()
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), completed.stderr[-2000:]
    return lines[0]


# --------------------------------------------------------------------------------------------------
# Optional extras: one line naming the extra, before any work


def test_the_blocker_really_hides_a_module(blocker: Path) -> None:
    completed = run_blocked([PYTHON, "-c", "import torchmetrics"], blocker, "torchmetrics")
    assert completed.returncode == 1 and "ModuleNotFoundError" in completed.stderr
    completed = run_blocked([PYTHON, "-c", "import torchmetrics"], blocker, "")
    assert completed.returncode == 0, completed.stderr  # installed for the tests: only the blocker hid it


@pytest.mark.parametrize(
    ("script", "arguments", "blocked", "module"),
    [
        ("removal_quality.py", ["--quick"], "torchmetrics,skimage,matplotlib", "torchmetrics"),
        ("removal_quality.py", ["--quick", "--methods", "biharmonic"], "skimage", "skimage"),
        ("steps_quality.py", ["--quick"], "torchmetrics,skimage,matplotlib", "torchmetrics"),
        ("steps_quality.py", ["--quick"], "matplotlib", "matplotlib"),
        ("paper_protocol.py", ["tiny", "--work", "{tmp}"], "torchmetrics,skimage,matplotlib", "torchmetrics"),
    ],
)
def test_a_benchmark_without_the_eval_extra_says_which_extra_in_one_line(
    blocker: Path, tmp_path: Path, script: str, arguments: list[str], blocked: str, module: str
) -> None:
    arguments = [argument.replace("{tmp}", str(tmp_path / "work")) for argument in arguments]
    completed = run_blocked([PYTHON, str(REPO / "benchmarks" / script), *arguments], blocker, blocked)
    assert one_error_line(completed) == (
        f"error: benchmarks/{script} needs the 'eval' extra ({module} is not installed): "
        "pip install -e '.[eval]'"
    )
    assert not (tmp_path / "work").exists()  # refused before any work


def test_the_benchmarks_that_need_no_extra_do_not_ask_for_one(blocker: Path) -> None:
    # argparse's --help runs after every import of the script: none of them is an optional module
    for script in ("selection_quality.py", "speed.py", "fast_speed.py"):
        completed = run_blocked(
            [PYTHON, str(REPO / "benchmarks" / script), "--help"], blocker, ",".join(OPTIONAL_MODULES)
        )
        assert completed.returncode == 0, (script, completed.stderr[-2000:])


@pytest.mark.parametrize(
    ("script", "blocked", "extra"),
    [("make_figures.sh", "pytest,playwright", "test"), ("lint.sh", "ruff,mypy", "test")],
)
def test_scripts_without_their_extra_say_which_in_one_line(
    blocker: Path, script: str, blocked: str, extra: str
) -> None:
    completed = run_blocked(["bash", str(REPO / "scripts" / script)], blocker, blocked, timeout=120)
    line = one_error_line(completed)
    assert line.startswith(f"error: scripts/{script} needs the '{extra}' extra (")
    assert line.endswith(f"pip install -e '.[{extra}]'")


def test_eval_without_torchmetrics_says_which_extra(blocker: Path, tmp_path: Path) -> None:
    command = [PYTHON, "-m", "attentive_eraser", "eval", str(tmp_path), "-r", str(tmp_path), "-q"]
    completed = run_blocked([*command, "--metrics", "fid,psnr_masked"], blocker, "torchmetrics")
    assert one_error_line(completed) == (
        "error: attentive-eraser eval --metrics fid,psnr_masked needs the 'eval' extra "
        "(torchmetrics is not installed): pip install -e '.[eval]'"
    )


def test_check_extra_names_the_extra_and_passes_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    check_extra("x", "torchmetrics", "skimage")  # installed for the tests: no error

    class Refuse:
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name == "skimage":
                raise ModuleNotFoundError(name)

    monkeypatch.setattr(sys, "meta_path", [Refuse(), *sys.meta_path])
    monkeypatch.delitem(sys.modules, "skimage", raising=False)
    with pytest.raises(MissingExtraError, match=r"^prog needs the 'eval' extra \(skimage is not installed\)"):
        check_extra("prog", "torchmetrics", "skimage")


def test_every_optional_module_names_a_real_extra() -> None:
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    section = pyproject.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    extras = set(re.findall(r"^([a-z]+) = \[", section, flags=re.MULTILINE))
    assert set(OPTIONAL_MODULES.values()) <= extras, extras


# --------------------------------------------------------------------------------------------------
# Output: no third-party notices, labelled progress


def quiet_environment() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def test_tiny_models_help_and_run_print_no_warnings(tmp_path: Path) -> None:
    command = [PYTHON, "-m", "attentive_eraser.testing.tiny"]
    completed = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, env=quiet_environment(), timeout=300
    )
    assert completed.returncode == 0 and completed.stdout.startswith("usage: ")
    assert completed.stderr == ""
    completed = subprocess.run(
        [*command, str(tmp_path / "sd15")],
        capture_output=True,
        text=True,
        env=quiet_environment(),
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""  # no "[transformers] ... requires torchvision" notices
    assert (tmp_path / "sd15" / "model_index.json").is_file()


def test_importing_the_package_changes_no_warning_filter_or_log_level() -> None:
    code = (
        "import logging, sys, warnings\n"
        "import numpy, PIL.Image  # numpy adds its own filters on import: not ours to judge\n"
        "filters = list(warnings.filters)\n"
        "levels = {name: logging.getLogger(name).level for name in ('transformers', 'diffusers')}\n"
        "import attentive_eraser, attentive_eraser.runtime, attentive_eraser.settings\n"
        "assert warnings.filters == filters, 'warning filters changed'\n"
        "assert {n: logging.getLogger(n).level for n in levels} == levels, 'log levels changed'\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    completed = subprocess.run(
        [PYTHON, "-c", code], capture_output=True, text=True, env=quiet_environment(), timeout=120
    )
    assert completed.returncode == 0, completed.stderr


def test_quiet_third_party_restores_the_levels_it_changed() -> None:
    import transformers

    before = transformers.logging.get_verbosity()
    with quiet_third_party(quiet=True):
        assert transformers.logging.get_verbosity() == transformers.logging.ERROR
        assert not transformers.utils.logging.is_progress_bar_enabled()
    assert transformers.logging.get_verbosity() == before
    assert transformers.utils.logging.is_progress_bar_enabled()


def test_pipeline_progress_bars_are_labelled_unless_the_user_set_a_label() -> None:
    from diffusers import DiffusionPipeline

    from attentive_eraser.pipelines.base import EraserPipelineMixin

    class Stub(EraserPipelineMixin):
        progress_bar = DiffusionPipeline.progress_bar
        set_progress_bar_config = DiffusionPipeline.set_progress_bar_config

    stub = Stub()
    for config, shown in (({}, "SIP denoising: "), ({"desc": "mine"}, "mine: ")):
        buffer = io.StringIO()
        stub.set_progress_bar_config(file=buffer, **config)
        with stub._progress(3, "SIP denoising") as bar:
            bar.update(3)
        printed = [piece for piece in buffer.getvalue().split("\r") if piece.strip()]
        assert printed and all(piece.startswith(shown) for piece in printed), printed


def test_the_demo_labels_its_progress_and_prints_no_notices(tmp_path: Path) -> None:
    output = tmp_path / "demo.png"
    completed = subprocess.run(
        [PYTHON, "-m", "attentive_eraser", "demo", "-o", str(output)],
        capture_output=True,
        text=True,
        env=quiet_environment(),
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert output.is_file()
    pieces = [piece.strip() for piece in re.split(r"[\r\n]", completed.stderr) if piece.strip()]
    announcements = [piece for piece in pieces if piece.startswith("demo: removal")]
    assert announcements == ["demo: removal 1/2, raw decode", "demo: removal 2/2, pasted back"]
    steps = [piece for piece in pieces if "/40 [" in piece]  # the 40 denoising steps of each removal
    assert steps and all(piece.startswith("SIP denoising: ") for piece in steps), steps[:3]
    # every other piece is a labelled loading bar (tqdm's cursor codes aside) or an announcement
    for piece in pieces:
        text = piece.replace("\x1b[A", "").strip()
        assert not text or re.match(r"(demo: removal|SIP denoising: |Loading [a-z ]+\.*:)", text), piece
    assert "[transformers]" not in completed.stderr and "Warning" not in completed.stderr


# --------------------------------------------------------------------------------------------------
# eval: each metric on its own; PSNR and SSIM in the mask offline


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


@pytest.fixture
def scored(tmp_path: Path) -> dict[str, Path]:
    """3 images with masks, their true backgrounds and one results folder (noise inside the mask)."""
    rng = np.random.default_rng(1)
    paths = {name: tmp_path / name for name in ("in", "bg", "out")}
    for folder in paths.values():
        folder.mkdir()
    for index in range(3):
        background = rng.integers(40, 210, (40, 48, 3), dtype=np.uint8)
        mask = np.zeros((40, 48), bool)
        mask[8 : 24 + index, 10:30] = True
        image = background.copy()
        image[mask] = (20, 220, 20)
        result = background.astype(int)
        result[mask] += rng.integers(-25, 26, result[mask].shape)
        Image.fromarray(image).save(paths["in"] / f"p{index}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(paths["in"] / f"p{index}_mask.png")
        Image.fromarray(background).save(paths["bg"] / f"p{index}.png")
        Image.fromarray(np.clip(result, 0, 255).astype(np.uint8)).save(paths["out"] / f"p{index}.png")
    return paths


def test_psnr_and_ssim_in_the_mask_run_offline_without_any_weights(
    scored: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))  # no cached VGG nor Inception
    report = tmp_path / "metrics.json"
    result = invoke(
        "eval", scored["in"], "-r", scored["out"], "--backgrounds", scored["bg"],
        "--metrics", "psnr_masked,ssim_masked", "-q", "-o", report,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads(report.read_text())["metrics"]
    assert 20 < metrics["psnr_masked"] < 35 and 0 < metrics["ssim_masked"] < 1
    assert math.isfinite(metrics["psnr_masked"]) and math.isfinite(metrics["ssim_masked"])
    assert all(metrics[name] is None for name in METRICS if name not in ("psnr_masked", "ssim_masked"))
    assert not (tmp_path / "empty-torch-home").exists()  # nothing looked up, nothing downloaded
    assert "| PSNR mask ↑ | SSIM mask ↑ |" in result.output


def test_lpips_in_the_mask_offline_names_the_missing_weights(
    scored: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    result = invoke(
        "eval", scored["in"], "-r", scored["out"], "--backgrounds", scored["bg"], "--metrics", "masked", "-q"
    )
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: lpips-backbone: VGG-16 ImageNet weights not found at '")
    assert "vgg16-397923af.pth" in line and "--lpips-backbone FILE" in line and " is not in " not in line


def test_metric_groups_expand_and_unknown_names_are_refused(scored: dict[str, Path]) -> None:
    assert expand_metrics(["masked"]) == ("psnr_masked", "ssim_masked", "lpips_masked")
    assert expand_metrics(["all"]) == METRICS
    assert expand_metrics(["ssim_masked", "fid", "masked"]) == (
        "fid",
        "psnr_masked",
        "ssim_masked",
        "lpips_masked",
    )
    result = invoke("eval", scored["in"], "-r", scored["out"], "--metrics", "psnr_masked,psnr_mask", "-q")
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: ") and "psnr_mask;" in line and "psnr_masked" in line


def test_metrics_without_backgrounds_are_reported_on_one_line(scored: dict[str, Path]) -> None:
    result = invoke("eval", scored["in"], "-r", scored["out"], "--metrics", "psnr_masked,ssim_masked", "-q")
    assert result.exit_code == 0, result.output
    assert "psnr_masked, ssim_masked: not computed (needs --backgrounds)" in result.output.splitlines()


# --------------------------------------------------------------------------------------------------
# The browser install: one line before apt-get


def stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/bash\n" + body + "\n", encoding="utf-8")
    path.chmod(0o755)


def test_the_browser_install_is_announced_in_one_line_before_apt_get(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    chromium = tmp_path / "chromium"
    log = tmp_path / "calls.log"
    stub(bin_dir, "id", "echo 1000")  # not root
    stub(bin_dir, "sudo", f'echo "sudo $*" >> {log}; "$@"')
    # apt-get "installs" the browser where the tests will look for it
    stub(
        bin_dir,
        "apt-get",
        f'echo "apt-get $*" >> {log}\n'
        f'if [ "$1" = install ]; then printf "#!/bin/bash\\n" > {chromium}; /bin/chmod +x {chromium}; fi',
    )
    environment = {"PATH": str(bin_dir), "ATTENTIVE_ERASER_CHROMIUM": str(chromium), "HOME": str(tmp_path)}
    script = str(REPO / "scripts" / "install_browser.sh")
    completed = subprocess.run(
        ["/bin/bash", script], capture_output=True, text=True, env=environment, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.splitlines() == [
        "setup: installing Debian's chromium for the browser tests with sudo apt-get "
        "(ATTENTIVE_ERASER_NO_BROWSER=1 skips this)"
    ]
    assert log.read_text().splitlines() == [
        "sudo apt-get update -qq",
        "apt-get update -qq",
        "sudo apt-get install -y -qq chromium chromium-driver",
        "apt-get install -y -qq chromium chromium-driver",
    ]
    # present now: nothing to do, nothing printed
    log.unlink()
    completed = subprocess.run(
        ["/bin/bash", script], capture_output=True, text=True, env=environment, timeout=60
    )
    assert completed.returncode == 0 and completed.stderr == "" and not log.exists()


def test_the_browser_install_without_root_or_sudo_fails_in_one_line(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub(bin_dir, "id", "echo 1000")
    environment = {"PATH": str(bin_dir), "ATTENTIVE_ERASER_CHROMIUM": str(tmp_path / "absent")}
    completed = subprocess.run(
        ["/bin/bash", str(REPO / "scripts" / "install_browser.sh")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    assert completed.returncode == 1
    [line] = completed.stderr.splitlines()
    assert (
        line.startswith("error: ") and "not root, no sudo" in line and "ATTENTIVE_ERASER_NO_BROWSER=1" in line
    )


# --------------------------------------------------------------------------------------------------
# README and docs


def markdown_files() -> list[Path]:
    return [
        REPO / "README.md",
        REPO / "CONTRIBUTING.md",
        REPO / "CHANGELOG.md",
        *sorted((REPO / "docs").glob("*.md")),
    ]


def without_code(text: str) -> str:
    """``text`` without fenced code blocks and inline code spans (links there are not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a markdown file (lower case, punctuation dropped, spaces → hyphens)."""
    found: set[str] = set()
    for heading in re.findall(
        r"^#{1,6} +(.+?) *$", without_code(path.read_text(encoding="utf-8")), re.MULTILINE
    ):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        candidate, count = slug, 0
        while candidate in found:
            count += 1
            candidate = f"{slug}-{count}"
        found.add(candidate)
    return found


def broken_links(sources: list[Path]) -> tuple[list[str], int]:
    """The relative links of ``sources`` whose file or heading does not exist, and how many were checked."""
    broken, checked = [], 0
    for source in sources:
        text = without_code(source.read_text(encoding="utf-8"))
        for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
            if re.match(r"^[a-z]+:", target):  # https:, mailto:
                continue
            checked += 1
            file_part, _, anchor = target.partition("#")
            resolved = (source.parent / file_part).resolve() if file_part else source
            if not resolved.exists():
                broken.append(f"{source.name}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{source.name}: {target} (no such heading)")
    return broken, checked


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    broken, checked = broken_links(markdown_files())
    assert checked > 30 and not broken, broken


def test_the_link_check_catches_broken_links(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Fewer steps: DPM-Solver++ with SIP's blend\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Real heading\n\n[a](#real-heading) [b](#no-heading)"
        " [c](other.md#fewer-steps-dpm-solver-with-sips-blend)"
        " [d](missing.md) [e](https://example.org/x.md) `[f](in-code.md)`\n",
        encoding="utf-8",
    )
    assert broken_links([page]) == (
        ["page.md: #no-heading (no such heading)", "page.md: missing.md (no such file)"],
        4,  # a, b, c, d: the web link and the one in code are not checked
    )


def format_value(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def preset_cell(preset_name: str, name: str) -> str:
    """A knob's default as docs/knobs.md writes it: SIP's value, and DIP's beside it when they differ."""
    preset = PRESETS[preset_name]
    sip, dip = preset.for_method("sip")[name], preset.for_method("dip")[name]
    if sip == dip:
        return format_value(sip)
    return f"{format_value(sip)} (SIP), {format_value(dip)} (DIP)"


def table_rows(text: str, header_start: str) -> tuple[list[str], dict[str, list[str]]]:
    """The header cells and the rows (keyed by their first cell, backticks dropped) of a markdown table."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    split = lambda line: [cell.strip() for cell in line.strip().strip("|").split("|")]  # noqa: E731
    header, rows = split(lines[start]), {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = split(line)
        rows[cells[0].strip("`")] = cells
    return header, rows


def test_the_knob_table_shows_the_presets_of_the_models_that_run() -> None:
    text = (REPO / "docs" / "knobs.md").read_text(encoding="utf-8")
    header, rows = table_rows(text, "| API argument | CLI option | paper | demo model")
    columns = {
        "demo model (default)": ["demo"],
        "SD 1.5 / 2.1": ["sd15", "sd21"],
        "SD 2.1-768": ["sd21-768"],
        "SDXL": ["sdxl"],
    }
    assert set(columns) <= set(header)
    tunable = {"removal_guidance_scale", "suppression_scale", "suppression_steps", "num_inference_steps",
               "strength", "mask_dilation", "feather_radius", "resolution", "scheduler"}  # fmt: skip
    assert set(rows) == tunable
    for name, cells in rows.items():
        assert cells[1] == f"`{knob(name).option}`", name
        for column, presets in columns.items():
            cell = cells[header.index(column)]
            for preset in presets:
                assert cell == preset_cell(preset, name), (name, column, preset, cell)
    # the demo model's own values, by hand: the default that runs is not Stable Diffusion's
    assert rows["removal_guidance_scale"][header.index("demo model (default)")] == "15"
    assert rows["feather_radius"][header.index("demo model (default)")] == "2"
    assert rows["resolution"][header.index("demo model (default)")] == "64"
    _, common = table_rows(text, "| API argument | CLI option | paper | default |")
    assert common["seed"][3] == str(DEFAULT_SEED)
    fast = common["fast"][4]
    for method, values in FAST_KNOBS.items():
        for name, value in values.items():
            assert f"`{name}` {value}" in fast or f"`{value}`" in fast, (method, name, value)


def test_the_readme_is_a_front_page_with_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert (
        "bash scripts/demo.sh     # set up .venv" in readme
        and "bash scripts/test.sh     # set up .venv" in readme
    )
    # the default model, said plainly, and what photos need
    assert (
        "64 px" in readme and "trained by this project on a CPU" in readme and "procedural scenes" in readme
    )
    assert "for photos, pass a real checkpoint" in readme
    # the browser install and its privileges
    assert "`apt-get`" in readme and "root or `sudo`" in readme
    # timings come with their machine and load, the suite's and the edit loop's with their commands
    assert "about 10 s" not in readme and "load average" in readme
    assert "filled by lead" not in readme
    assert "`time .venv/bin/python -m pytest -q`" in readme and '-m "not slow"' in readme
    # the long material lives in the docs, with its figures and commands
    demo_model = (REPO / "docs" / "demo_model.md").read_text(encoding="utf-8")
    for moved in (
        "29.61 ± 0.96",
        "| SARG signal in the mask at t = 21 | 4.9 % | 29.6 % |",
        "VAE 2000 steps: 42 min",
    ):
        assert moved in demo_model and moved not in readme, moved
    assert "python benchmarks/removal_quality.py --threads 2 --sweep" in demo_model
    assert "train_demo --out runs/v2vae --seed 0 --unet-steps 0 --num-threads 2" in demo_model
    assert len(readme.splitlines()) < 200
