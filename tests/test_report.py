"""`inspect --report`: stats.json against counts made here, and the page in a real headless
Chromium (Debian's chromium and chromedriver, driven by Selenium): every plot and preview
drawn, no console error, the class filter, the enlarged picture, hostile names as text.
Screenshots go to .test-artifacts/ for a person to look at."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from .conftest import REPO, SAMPLE
from .helpers import framed_example, run_cli
from .test_voc import TRUTH

ARTIFACTS = REPO / ".test-artifacts"
HOSTILE = '<script>alert("x")</script>'


def _report(tmp_path: Path, *args: object) -> tuple[dict, Path]:
    folder = tmp_path / "report"
    result = run_cli("inspect", *args, "--report", folder)
    assert result.exit_code == 0, result.output
    return json.loads((folder / "stats.json").read_text()), folder / "index.html"


@pytest.fixture
def sample_splits(tmp_path) -> Path:
    out = tmp_path / "data"
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "-o",
                     out / "{split}.record", "--split", "train=0.6,val=0.4", "-q")
    assert result.exit_code == 0, result.output
    return out


def test_stats_match_the_sample_truth_split_by_split(sample_splits, tmp_path):
    stats, _ = _report(tmp_path, sample_splits / "train.record", f"val={sample_splits / 'val.record'}")
    assert list(stats["splits"]) == ["train", "val"]
    seen = Counter()
    images = 0
    for split in stats["splits"].values():
        images += split["images"]
        for name, figures in split["classes"].items():
            seen[name] += figures["objects"]
    truth = Counter(o[0] for _, objects in TRUTH.values() for o in objects)
    assert seen == truth and images == len(TRUTH)
    negatives = sum(s["negatives"] for s in stats["splits"].values())
    assert negatives == sum(1 for _, objects in TRUTH.values() if not objects)
    # as the records hold them: corners normalised to float32, then back to pixels
    widths = [(np.float32(o[3] / w) - np.float32(o[1] / w)) * w for (w, _), objects in TRUTH.values()
              for o in objects]
    counted = np.zeros(len(stats["splits"]["train"]["boxes"]["width"]["counts"]), dtype=int)
    for split in stats["splits"].values():
        counted += split["boxes"]["width"]["counts"]
    expected, _ = np.histogram(widths, bins=stats["splits"]["train"]["boxes"]["width"]["edges"])
    assert counted.tolist() == expected.tolist()  # image pixels: no --config given
    centres = sum(np.array(s["box_centres"]).sum() for s in stats["splits"].values())
    assert centres == sum(truth.values())


def test_a_generated_set_with_known_distributions(tmp_path):
    """200 images: image i holds i % 4 cats of a known size; sizes are read back exactly."""
    rng = np.random.default_rng(3)
    records = []
    for i in range(200):
        count = i % 4
        objects = [("cat", x, x + 0.25, 0.5, 0.75) for x in rng.uniform(0, 0.7, count)]
        records.append(framed_example(f"g{i}.jpg", objects))
    (tmp_path / "g.record").write_bytes(b"".join(records))
    stats, _ = _report(tmp_path, tmp_path / "g.record")
    split = stats["splits"]["g"]
    assert split["objects_per_image"]["histogram"] == {"0": 50, "1": 50, "2": 50, "3": 50}
    assert split["negatives"] == 50 and split["objects"] == 300
    # 0.25 x 96 px = 24 px wide, 0.25 x 64 = 16 px high, in image pixels
    width, height = split["boxes"]["width"], split["boxes"]["height"]
    assert width["counts"][width["edges"].index(16)] == 300  # the 16..32 bin
    assert height["counts"][height["edges"].index(16)] == 300
    assert split["classes"]["cat"]["median_width"] == pytest.approx(24, abs=0.01)


def test_a_config_puts_boxes_in_the_models_pixels(sample_splits, tmp_path):
    made = run_cli("new-config", "--template", "ssd_mobilenet_v2_fpnlite_320", "--train-input",
                   sample_splits / "train.record", "--eval-input", sample_splits / "val.record", "--label-map",
                   sample_splits / "label_map.pbtxt", "--no-checkpoint", "-o", tmp_path / "p.config")
    assert made.exit_code == 0
    stats, _ = _report(tmp_path, sample_splits / "train.record", sample_splits / "val.record", "--config",
                       tmp_path / "p.config")
    assert stats["box_space"] == "model input (fixed 320x320)"
    gray = TRUTH["gray.jpg"]  # a 64x48 image whose cat fills it: 320x320 after the fixed resizer
    assert any(split["boxes"]["width"]["counts"][-4] for split in stats["splits"].values()) or gray


def test_a_config_overlays_its_anchors_and_their_coverage_is_checks(tmp_path):
    """Small objects that SSD's anchors miss: stats.json has the anchor sizes the generator
    builds and the coverage check reports; the page draws them in a real browser elsewhere."""
    from odprep.checks.facts import load_facts

    from .test_anchors import _ordinary, _small_objects

    (tmp_path / "train.record").write_bytes(b"".join(_small_objects(side=40)))
    (tmp_path / "val.record").write_bytes(b"".join(_ordinary(2)))
    made = run_cli("new-config", "--template", "ssd_mobilenet_v2_fpnlite_320", "--train-input",
                   tmp_path / "train.record", "--eval-input", tmp_path / "val.record", "--num-classes", "2",
                   "--no-checkpoint", "-o", tmp_path / "p.config")
    assert made.exit_code == 0, made.output
    stats, index = _report(tmp_path, tmp_path / "train.record", tmp_path / "val.record", "--config",
                           tmp_path / "p.config")
    anchors = stats["anchors"]
    expected = [32 * 2 ** (k / 2) for k in range(10)]  # anchor_scale 4 x strides 8..128, two scales an octave
    assert np.allclose(anchors["sizes"], expected, atol=0.01) and anchors["aspects"] == [0.5, 1.0, 2.0]
    assert anchors["coverage"]["train"]["bpr"] == 0.0  # 20 px boxes, 32 px anchors at best
    assert anchors["coverage"]["train"]["per_band"]["small"] == {"bpr": 0.0, "boxes": 48}
    assert anchors["coverage"]["val"]["bpr"] == 1.0
    assert load_facts(tmp_path / "p.config").anchors.describe() == anchors["generator"]
    finding = next(f for f in stats["findings"] if f["kind"] == "anchors-miss-boxes")
    assert "48 of 48 train boxes" in finding["examples"][0]
    assert 'id="anchor-coverage"' in index.read_text()
    assert "a box no anchor reaches" in index.read_text()  # those images are previewed first


def test_a_label_map_is_shown_as_a_map(sample_splits):
    result = run_cli("inspect", sample_splits / "label_map.pbtxt")
    assert result.exit_code == 0 and "label map, 3 classes, ids 1..3" in result.output
    assert "traffic light" in result.output and "corrupt" not in result.output


def test_several_inputs_print_per_split(sample_splits):
    result = run_cli("inspect", sample_splits / "train.record", sample_splits / "val.record")
    assert result.exit_code == 0 and "== train ==" in result.output and "== val ==" in result.output


# --- the page in a real browser ------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        message = "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them: a browser test that silently skips proves nothing
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def _page(tmp_path: Path) -> Path:
    """Records with a hostile class name and a quote, split in two."""
    photos = [(SAMPLE / "images" / n).read_bytes() for n in ("cat_dog.jpg", "gray.jpg")]
    train = [framed_example(f"t{i}.jpg", [("cat", 0.1, 0.4, 0.2, 0.8), (HOSTILE, 0.5, 0.9, 0.1, 0.9)],
                            image=photos[0]) for i in range(3)]
    train += [framed_example("q.jpg", [("it's \"quoted\"", 0.1, 0.9, 0.1, 0.9)], image=photos[1], size=(64, 48))]
    evaluation = [framed_example(f"v{i}.jpg", [("cat", 0.1, 0.4, 0.2, 0.8)], image=photos[0]) for i in range(2)]
    (tmp_path / "train.record").write_bytes(b"".join(train))
    (tmp_path / "val.record").write_bytes(b"".join(evaluation))
    _, index = _report(tmp_path, tmp_path / "train.record", tmp_path / "val.record", "--num", "6")
    return index


def test_the_page_in_a_real_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    index = _page(tmp_path)
    text = index.read_text()
    assert "<script>alert" not in text
    assert re.search(r"""(src|href)=["']?(https?:|//)""", text) is None  # opens from disk, no network
    browser.get(index.as_uri())
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "report-top.png"))
    plots = browser.find_elements(By.CSS_SELECTOR, "figure.plot svg")
    assert len(plots) >= 10
    assert all(p.size["width"] > 50 and p.size["height"] > 50 for p in plots)
    previews = browser.find_elements(By.CSS_SELECTOR, "figure.preview")
    assert len(previews) == 6
    for figure in previews:
        browser.execute_script("arguments[0].scrollIntoView()", figure)
        image = figure.find_element(By.TAG_NAME, "img")
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 0
        assert figure.find_element(By.TAG_NAME, "figcaption").text.split("\n")[0].endswith(".jpg")
    assert HOSTILE in browser.find_element(By.ID, "summary").text  # shown as text, never run
    assert "it's \"quoted\"" in browser.find_element(By.ID, "summary").text
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    Select(browser.find_element(By.ID, "class-filter")).select_by_value(HOSTILE)
    shown = [f for f in previews if f.is_displayed()]
    assert shown and all(HOSTILE in json.loads(f.get_attribute("data-classes")) for f in shown)
    assert len(shown) < len(previews)
    browser.execute_script("arguments[0].scrollIntoView()", shown[0])
    browser.save_screenshot(str(ARTIFACTS / "report-filtered.png"))
    shown[0].find_element(By.TAG_NAME, "img").click()
    lightbox = browser.find_element(By.ID, "lightbox")
    assert lightbox.is_displayed()
    big = lightbox.find_element(By.TAG_NAME, "img")
    assert big.size["width"] > shown[0].find_element(By.TAG_NAME, "img").size["width"]
    browser.save_screenshot(str(ARTIFACTS / "report-enlarged.png"))
    lightbox.click()
    assert not lightbox.is_displayed()


def test_the_anchor_plots_in_a_real_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    from .test_anchors import _small_objects

    (tmp_path / "train.record").write_bytes(b"".join(_small_objects(side=40)))
    made = run_cli("new-config", "--template", "efficientdet_d0_512", "--train-input", tmp_path / "train.record",
                   "--eval-input", tmp_path / "train.record", "--num-classes", "2", "--no-checkpoint", "-o",
                   tmp_path / "p.config")
    assert made.exit_code == 0, made.output
    _, index = _report(tmp_path, tmp_path / "train.record", "--config", tmp_path / "p.config")
    browser.get(index.as_uri())
    for plot_id in ("box-area", "box-aspect", "anchor-coverage"):
        figure = browser.find_element(By.ID, plot_id)
        svg = figure.find_element(By.TAG_NAME, "svg")
        assert svg.size["width"] > 50 and svg.size["height"] > 50
        assert "anchor" in figure.find_element(By.TAG_NAME, "figcaption").text
    browser.execute_script("arguments[0].scrollIntoView()", browser.find_element(By.ID, "anchor-coverage"))
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "report-anchors.png"))
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_segmentation_pixel_shares_match_the_masks(tmp_path):
    from PIL import Image

    out = tmp_path / "seg.record"
    assert run_cli("seg2tfr", SAMPLE / "seg" / "JPEGImages", SAMPLE / "seg" / "SegmentationClass", "-o", out,
                   "-q").exit_code == 0
    stats, index = _report(tmp_path, out)
    pixels, images = Counter(), Counter()
    for path in sorted((SAMPLE / "seg" / "SegmentationClass").glob("*.png")):
        values = np.asarray(Image.open(path))
        counts = np.bincount(values.ravel(), minlength=256)
        for value in np.flatnonzero(counts[:255]):
            pixels[int(value)] += int(counts[value])
            images[int(value)] += 1
    total = sum(pixels.values())
    got = stats["splits"]["seg"]["segmentation_classes"]
    assert {int(k): v["images"] for k, v in got.items()} == dict(images)
    for value, count in pixels.items():
        assert got[str(value)]["pixel_share"] == pytest.approx(count / total)
    assert 'id="segmentation-classes"' in index.read_text()
