"""camkit explain and camkit report, and both pages rendered in headless Chromium."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camkit.train.config import RunConfig
from camkit.train.loop import train_run
from cli_helpers import assert_one_line_error, run, run_here


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory, fake_fmnist: Path) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("runs")
    runs = {}
    for name, dataset in (("single", "fashion"), ("multi", "fashion-multi")):
        cfg = RunConfig.from_dict({
            "data": {"dataset": dataset, "root": str(fake_fmnist), "n_train": 64, "n_val": 16, "n_test": 16},
            "train": {"epochs": 1, "batch_size": 32, "out": str(out), "exp_id": name},
        })  # fmt: skip
        train_run(cfg)
        runs[name] = out / name
    return runs


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = pytest.importorskip("skimage.data")
    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.chelsea()).save(d / "chelsea.png")
    Image.fromarray(data.coffee()).save(d / "coffee.jpg")
    return d


@pytest.fixture(scope="module")
def explained(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("explain")
    p = run("explain", str(photos / "chelsea.png"), str(photos / "coffee.jpg"), "--model", "efficientnet_lite0",
            "--method", "cam,grad-cam", "--topk", "3", "--out", str(out))  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    # the ImageNet names, top-k with probabilities; Chelsea is a tabby cat, the coffee an espresso
    assert any(k in lines[0] for k in ("tabby", "tiger cat", "Egyptian cat")), lines[0]
    assert "espresso" in lines[1] or "cup" in lines[1], lines[1]
    return out


def test_explain_writes_pngs_and_page(explained: Path) -> None:
    for f in (
        "comparison.png",
        "cam_grid.png",
        "cam_compact.png",
        "cam_strip.png",
        "grad-cam_grid.png",
        "index.html",
    ):
        assert (explained / f).stat().st_size > 1000, f
    assert len(list((explained / "overlays").glob("*.png"))) == 4
    pred = json.loads((explained / "predictions.json").read_text())
    assert len(pred["top_k"]) == 2 and len(pred["top_k"][0]) == 3
    assert pred["top_k"][0][0]["prob"] >= pred["top_k"][0][1]["prob"]
    page = (explained / "index.html").read_text()
    assert page.count("<img") >= 6 and page.count("<table>") == 2 and "file://" not in page


def test_explain_own_checkpoint_and_errors(tiny_runs: dict[str, Path], photos: Path, tmp_path: Path) -> None:
    p = run_here(
        "explain",
        str(photos),
        "--run",
        str(tiny_runs["single"]),
        "--method",
        "cam",
        "--out",
        str(tmp_path / "e"),
    )
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "e" / "index.html").is_file()
    assert_one_line_error(
        run_here("explain", str(tmp_path / "missing.png"), "--model", "efficientnet_lite0"), "missing.png"
    )
    assert_one_line_error(run_here("explain", str(photos), "--model", "resnet9"), "--model resnet9")


def test_report_single_and_multi_label(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    from camkit.apps.report import report

    single = report(tiny_runs["single"], tmp_path / "s.html", methods=["cam", "grad-cam"], num=4)
    page = single.read_text()
    for needle in ("Training", "Summary", "Scores", "Per class", "MaxBoxAccV2", "<details>"):
        assert needle in page
    assert page.count("<table>") >= 5 and page.count('src="data:image/png;base64,') >= 6
    multi = report(tiny_runs["multi"], tmp_path / "m.html", methods=["cam"], num=4).read_text()
    assert "Seed scores" in multi and "background" in multi


def test_report_of_a_study(tmp_path: Path) -> None:
    from camkit.apps.report import report

    (tmp_path / "study.json").write_text(json.dumps({"config": {"seeds": [0]}, "table": {}}))
    (tmp_path / "study.md").write_text("**T**:\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "overlays.png")
    page = report(tmp_path).read_text()
    assert "<table>" in page and "overlays.png" in page and page.count("<img") == 1
    assert_one_line_error(run("report", str(tmp_path / "nope")), "nope")


# -- headless Chromium ----------------------------------------------------------------------------


def _install_chromium() -> str | None:
    """Chromium and its driver from Debian's packages when missing; None or why not."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return None
    if not shutil.which("apt-get"):
        return "no apt-get on this machine"
    cmd = ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"]
    if os.geteuid() != 0:
        if not shutil.which("sudo") or subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode:
            return "installing needs root (sudo apt-get install chromium chromium-driver)"
        cmd = ["sudo", "-n", *cmd]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    if p.returncode:
        subprocess.run(
            [*cmd[: cmd.index("install")], "update", "-q"], capture_output=True, env=env, timeout=600
        )
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    if p.returncode or not shutil.which("chromedriver"):
        return f"apt-get install chromium chromium-driver failed: {(p.stderr or p.stdout).strip()[-200:]}"
    return None


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing: pip install selenium")
    why = _install_chromium()
    if why:
        pytest.skip(f"headless Chromium is not available ({why})")
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1600"):
        opts.add_argument(a)
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    yield driver
    driver.quit()


def _render(browser, page: Path, shot: Path) -> dict:
    browser.get(page.resolve().as_uri())
    state = browser.execute_script(
        "const im = Array.from(document.images);"
        "return {images: im.length, loaded: im.filter(i => i.complete && i.naturalWidth > 0).length,"
        " tables: document.querySelectorAll('table').length, rows: document.querySelectorAll('td').length};"
    )
    assert browser.save_screenshot(str(shot))
    return state


def test_pages_render_in_chromium(
    browser, explained: Path, tiny_runs: dict[str, Path], tmp_path: Path
) -> None:
    from camkit.apps.report import report

    pages = {
        "explain": explained / "index.html",
        "report": report(tiny_runs["single"], tmp_path / "r.html", num=4),
    }
    for name, page in pages.items():
        shot = tmp_path / f"{name}.png"
        state = _render(browser, page, shot)
        assert state["images"] >= 3 and state["loaded"] == state["images"], (name, state)
        assert state["tables"] >= 2 and state["rows"] > 4, (name, state)
        pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
        assert pixels.shape[0] > 500 and pixels.std() > 10, f"{name}: blank screenshot"
