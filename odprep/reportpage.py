"""The page of `inspect --report`: one self-contained index.html (plots as inline SVG,
previews as embedded images, no network) and stats.json, from odprep.reportstats' figures.
Rendering only: every number comes from the stats it is given. Names from data are text,
always escaped; they never become file names."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from odprep import images
from odprep.datasummary import DataSummary
from odprep.fileio import commit, discard, stage_text
from odprep.reportstats import ReportData
from odprep.tfrecord import read_records

# Okabe-Ito: neighbours stay apart for every kind of colour vision; tab20 past eight classes.
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]


def palette(classes: list[str]) -> dict[str, str]:
    if len(classes) <= len(OKABE_ITO):
        return dict(zip(classes, OKABE_ITO, strict=False))
    from matplotlib import colormaps, colors

    cmap = colormaps["tab20"]
    return {name: colors.to_hex(cmap(i % 20)) for i, name in enumerate(classes)}


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _plots(stats: dict, colours: dict[str, str]) -> list[tuple[str, str, str]]:
    """(id, title, inline SVG) per plot; each figure holds the splits side by side."""
    from odprep.extras import require

    matplotlib = require("matplotlib", "report", "inspect --report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "font.size": 8})
    splits = stats["splits"]
    names = list(splits)
    out = []

    def figure(plot_id: str, title: str, draw, height: float = 2.6) -> None:
        fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), height), squeeze=False)
        for axis, name in zip(axes[0], names, strict=True):
            draw(axis, splits[name])
            axis.set_title(name)
        fig.tight_layout()
        out.append((plot_id, title, _svg(fig)))
        plt.close(fig)

    def class_balance(axis, split):
        classes = list(split["classes"])[:30]
        axis.barh(range(len(classes)), [split["classes"][c]["objects"] for c in classes],
                  color=[colours.get(c, "#888888") for c in classes], label="objects")
        axis.barh(range(len(classes)), [split["classes"][c]["images"] for c in classes], height=0.3,
                  color="#444444", label="images")
        axis.set_yticks(range(len(classes)), [c[:24] for c in classes])
        axis.invert_yaxis()
        axis.legend(fontsize=6)

    def per_image(axis, split):
        histogram = split["objects_per_image"]["histogram"]
        axis.bar([int(k) for k in histogram], list(histogram.values()), color="#0072B2")
        axis.set_xlabel("objects per image")

    anchors = stats.get("anchors")

    def sizes(key: str, label: str, marks: list[float] = ()):
        def draw(axis, split):
            histogram = split["boxes"][key]
            edges = histogram["edges"]
            labels = [f"<{edges[i + 1]:g}" if edges[i + 1] < 1e8 else f"≥{edges[i]:g}"
                      for i in range(len(edges) - 1)]
            axis.bar(range(len(labels)), histogram["counts"], color="#009E73")
            for value in marks:  # the config's anchors, where their values fall among the bins
                axis.axvline(_bin_position(value, edges), color="#D55E00", linestyle="--", linewidth=0.8)
            axis.set_xticks(range(len(labels)), labels, rotation=60)
            axis.set_xlabel(label)
        return draw

    def coverage(axis, split_name):
        cover = anchors["coverage"].get(split_name, {})
        classes = list(cover.get("per_class", {}))[:30]
        bands = list(cover.get("per_band", {}))
        names = [f"{b} boxes" for b in bands] + [c[:24] for c in classes]
        values = [100 * cover["per_band"][b]["bpr"] for b in bands] + [100 * cover["per_class"][c] for c in classes]
        axis.barh(range(len(names)), values, color=["#999999"] * len(bands) + [colours.get(c, "#888888")
                                                                               for c in classes])
        axis.axvline(98, color="#D55E00", linestyle="--", linewidth=0.8)
        axis.set_yticks(range(len(names)), names)
        axis.invert_yaxis()
        axis.set_xlim(0, 100)
        axis.set_xlabel(f"% of boxes an anchor reaches at IoU {anchors['threshold']:g}")

    def centres(axis, split):
        axis.imshow(split["box_centres"], extent=(0, 1, 1, 0), cmap="viridis")
        axis.set_xlabel("box centre x")

    def image_sizes(axis, split):
        pairs = [(int(k.split("x")[0]), int(k.split("x")[1]), v) for k, v in split["image_sizes"].items()]
        if pairs:
            axis.scatter([p[0] for p in pairs], [p[1] for p in pairs], s=[10 + 3 * p[2] ** 0.5 for p in pairs],
                         color="#D55E00")
        axis.set_xlabel("width (px)")
        axis.set_ylabel("height (px)")

    def negatives(axis, split):
        axis.bar(["with objects", "negatives"], [split["images"] - split["negatives"], split["negatives"]],
                 color=["#56B4E9", "#E69F00"])

    def flags(axis, split):
        shown = split["flags"] or {"(none)": 0}
        axis.bar(list(shown), list(shown.values()), color="#CC79A7")
        axis.tick_params(axis="x", rotation=30)

    space = stats["box_space"]
    figure("class-balance", "Objects and images per class", class_balance,
           height=max(2.6, 0.18 * max([len(s["classes"]) for s in splits.values()] + [1])))
    figure("objects-per-image", "Objects per image", per_image)
    figure("box-width", f"Box width ({space})", sizes("width", "width (px)"))
    figure("box-height", f"Box height ({space})", sizes("height", "height (px)"))
    if anchors:
        figure("box-area", f"Box size, the square root of its area ({space}); dashed: the anchor sizes of "
               f"{anchors['generator']}", sizes("area_sqrt", "√area (px)", anchors["sizes"]))
        figure("box-aspect", "Box aspect ratio (width / height); dashed: the anchors' aspect ratios",
               sizes("aspect", "aspect", anchors["aspects"]))
        figure("anchor-coverage", "Best possible recall: the share of boxes whose best anchor reaches the "
               f"matcher's IoU ({anchors['threshold_field']}), per size band and class",
               lambda axis, split: coverage(axis, next(n for n in names if splits[n] is split)),
               height=max(2.6, 0.18 * max([len(s["classes"]) for s in splits.values()] + [1]) + 0.6))
    else:
        figure("box-area", f"Box size, the square root of its area ({space})", sizes("area_sqrt", "√area (px)"))
        figure("box-aspect", "Box aspect ratio (width / height)", sizes("aspect", "aspect"))
    figure("box-centres", "Where box centres lie", centres)
    figure("image-sizes", "Image sizes", image_sizes)
    figure("negatives", "Images without objects", negatives)
    figure("flags", "Flagged objects (difficult, crowd, occluded, group of, truncated)", flags)
    if any(split.get("segmentation_classes") for split in splits.values()):
        def pixel_share(axis, split):
            classes = split.get("segmentation_classes", {})
            axis.bar(list(classes), [100 * c["pixel_share"] for c in classes.values()], color="#0072B2")
            axis.set_xlabel("class index in the masks")
            axis.set_ylabel("% of labelled pixels")
            for x, figures in enumerate(classes.values()):
                axis.annotate(str(figures["images"]), (x, 100 * figures["pixel_share"]), ha="center", fontsize=6)

        figure("segmentation-classes", "Segmentation: each class's share of the pixels (numbers: images "
               "it appears in)", pixel_share)
    return out


def _bin_position(value: float, edges: list[float]) -> float:
    """Where ``value`` falls on a bar chart of these bins (bar i centred at i), interpolated
    on a log scale inside its bin."""
    import bisect
    import math

    i = min(max(bisect.bisect_right(edges, value) - 1, 0), len(edges) - 2)
    low, high = max(edges[i], 1e-6), min(edges[i + 1], edges[i] * 4 if edges[i] else 1.0)
    share = (math.log(max(value, low)) - math.log(low)) / max(math.log(high) - math.log(low), 1e-9)
    return i - 0.5 + min(max(share, 0.0), 1.0)


def _picture(data: bytes, caption: str, colours: dict[str, str], max_pixels: int) -> tuple[str, list[str]]:
    """A preview as a data URI (boxes, names, masks drawn; the file name written on it)."""
    from PIL import ImageDraw

    from odprep.preview import _font, draw_example

    def colour(name: str) -> tuple[int, int, int]:
        value = colours.get(name, "#888888").lstrip("#")
        return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)

    picture, classes = draw_example(data, max_pixels, colour)
    picture.thumbnail((640, 640))
    pen = ImageDraw.Draw(picture)
    font = _font(max(10, picture.width // 40))
    left, top, right, bottom = pen.textbbox((2, picture.height - 2), caption, font=font, anchor="lb")
    pen.rectangle([0, top - 2, right + 2, picture.height], fill=(0, 0, 0))
    pen.text((2, picture.height - 2), caption, fill=(255, 255, 255), font=font, anchor="lb")
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), classes


def _preview_records(summary: DataSummary, data: ReportData) -> dict[tuple[str, int], bytes]:
    """The raw records behind the previews, read from their files in one sweep each."""
    wanted: dict[tuple[str, int], set[int]] = {}
    for preview in data.previews:
        split = summary.splits[preview.split]
        file_number, record = split.records[preview.image]
        wanted.setdefault((preview.split, file_number), set()).add(record)
    found: dict[tuple[str, int], bytes] = {}
    for (name, file_number), records in wanted.items():
        split = summary.splits[name]
        for raw in read_records(split.files[file_number]):
            if raw.index in records:
                found[(name, split.records.index((file_number, raw.index)))] = raw.data
                if len(found) == sum(len(r) for r in wanted.values()):
                    break
    return found


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
.error{color:#a00}.warning{color:#a60}.note{color:#555}
figure.plot{margin:1em 0}figure.plot svg{max-width:100%;height:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:10px}
figure.preview{margin:0;cursor:zoom-in}figure.preview img{width:100%;height:auto;display:block}
figure.preview figcaption{font-size:12px;word-break:break-all}
#lightbox{position:fixed;inset:0;background:rgba(0,0,0,.85);display:flex;align-items:center;
justify-content:center;cursor:zoom-out}#lightbox[hidden]{display:none}
#lightbox img{width:92vw;height:92vh;object-fit:contain}
.swatch{display:inline-block;width:.9em;height:.9em;margin-right:4px;vertical-align:middle}
"""

_SCRIPT = """
const filter = document.getElementById('class-filter');
filter.addEventListener('change', () => {
  for (const figure of document.querySelectorAll('figure.preview')) {
    const classes = JSON.parse(figure.dataset.classes);
    figure.hidden = filter.value !== '' && !classes.includes(filter.value);
  }
});
const lightbox = document.getElementById('lightbox');
for (const image of document.querySelectorAll('figure.preview img')) {
  image.addEventListener('click', () => {
    lightbox.querySelector('img').src = image.src;
    lightbox.hidden = false;
  });
}
lightbox.addEventListener('click', () => { lightbox.hidden = true; });
"""


def render(summary: DataSummary, data: ReportData, max_pixels: int = images.DEFAULT_MAX_PIXELS) -> str:
    stats = data.stats
    esc = html.escape
    colours = palette(sorted(stats["classes"]))
    splits = stats["splits"]
    rows = [("images", "images"), ("objects", "objects"), ("negatives", "negatives")]
    table = "<tr><th></th>" + "".join(f"<th>{esc(n)}</th>" for n in splits) + "</tr>"
    for label, key in rows:
        table += f"<tr><td>{label}</td>" + "".join(f"<td>{s[key]:,}</td>" for s in splits.values()) + "</tr>"
    for name in sorted(stats["classes"]):
        swatch = f'<span class="swatch" style="background:{colours[name]}"></span>'
        table += f"<tr><td>{swatch}{esc(name)}</td>" + "".join(
            f"<td>{s['classes'][name]['objects'] if name in s['classes'] else 0:,} / "
            f"{s['classes'][name]['images'] if name in s['classes'] else 0:,}</td>" for s in splits.values()) + "</tr>"
    findings = "".join(
        f'<li class="{esc(f["severity"])}"><b>{esc(f["severity"].upper())} {esc(f["kind"])}</b> ({f["count"]}): '
        f'{esc(f["examples"][0])}<br><i>fix:</i> {esc(f["fix"])}</li>' for f in stats["findings"]) \
        or "<li>nothing found</li>"
    plots = "".join(f'<figure class="plot" id="{plot_id}"><figcaption>{esc(title)}</figcaption>{svg}</figure>'
                    for plot_id, title, svg in _plots(stats, colours))
    raw = _preview_records(summary, data)
    previews = []
    for preview in data.previews:
        split = summary.splits[preview.split]
        file_number, record = split.records[preview.image]
        filename = split.filenames[preview.image] or "(no filename)"
        where = f"{split.files[file_number]} #{record}"
        try:
            uri, classes = _picture(raw[(preview.split, preview.image)], filename, colours, max_pixels)
        except (ValueError, OSError, KeyError):
            continue  # an image that does not decode: validate --decode names it
        previews.append(
            f'<figure class="preview" data-classes="{esc(json.dumps(sorted(set(classes))))}">'
            f'<img src="{uri}" alt="{esc(filename)}"><figcaption><b>{esc(filename)}</b><br>{esc(where)} '
            f'({esc(preview.split)}) · {esc(preview.why)}</figcaption></figure>')
    options = "".join(f'<option value="{esc(name)}">{esc(name)}</option>' for name in sorted(stats["classes"]))
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>odprep report</title>'
            f"<style>{_STYLE}</style></head><body><h1>odprep report</h1>"
            f"<p>Splits: {esc(', '.join(splits))}. Box sizes in {esc(stats['box_space'])}.</p>"
            f'<section id="summary"><h2>Summary</h2><table>{table}</table><p>per class: objects / images</p>'
            f'</section><section id="findings"><h2>Findings</h2><ul>{findings}</ul></section>'
            f'<section id="plots"><h2>Plots</h2>{plots}</section>'
            f'<section id="previews"><h2>Previews</h2><label>Class <select id="class-filter">'
            f'<option value="">all</option>{options}</select></label>'
            f'<div class="grid">{"".join(previews)}</div></section>'
            f'<div id="lightbox" hidden><img alt="enlarged preview"></div><script>{_SCRIPT}</script>'
            f"</body></html>")


def write_report(summary: DataSummary, data: ReportData, folder: Path | str,
                 max_pixels: int = images.DEFAULT_MAX_PIXELS) -> Path:
    """index.html and stats.json in ``folder``, both or neither."""
    folder = Path(folder)
    page = render(summary, data, max_pixels)
    pending = []
    try:
        pending.append(stage_text(folder / "stats.json", json.dumps(data.stats, indent=2)))
        pending.append(stage_text(folder / "index.html", page))
        commit(pending)
    finally:
        discard(pending)
    return folder / "index.html"
