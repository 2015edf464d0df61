"""The run report as a browser shows it: Debian's headless chromium renders report.html of a
real run, every section heading is in the DOM, the screenshot is not blank, and the page
asks for nothing over the network."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from assay.recipes.runner import run_recipe

pytestmark = pytest.mark.slow

SECTIONS = ["Corpus flow", "Class balance", "Duplicates", "Leakage matrix", "Augmentation"]
QUICKSTART_SECTIONS = [
    "Corpus flow", "Class balance", "Duplicates", "Label issues", "Leakage matrix",
    "Augmentation", "Ablation", "Quality (step 3)", "Slices and errors (step 6)",
]  # fmt: skip
WORDS = [
    "river",
    "stone",
    "apple",
    "cloud",
    "music",
    "window",
    "garden",
    "silver",
    "engine",
    "paper",
    "forest",
    "candle",
    "bridge",
    "yellow",
    "market",
    "winter",
    "lantern",
    "coffee",
    "harbor",
    "velvet",
    "pencil",
    "ocean",
    "thunder",
    "mirror",
    "island",
    "meadow",
    "rocket",
    "violin",
    "desert",
    "marble",
    "quiet",
    "bright",
    "heavy",
    "narrow",
    "gentle",
]
# Every network access fails: no name resolves and the proxy is a closed port.
OFFLINE = [
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; scripts/setup.sh installs it (apt chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


def _corpus(path: Path) -> Path:
    """Distinct sentences, exact duplicates, HTML and too-short rows, and pairs that share
    a long span (not exact duplicates, so they survive dedup and may straddle splits)."""
    rng = np.random.default_rng(0)
    rows = [
        {
            "text": f"note {i} " + " ".join(rng.choice(WORDS, size=10)),
            "label": ["pos", "neg"][i % 2],
        }
        for i in range(150)
    ]
    rows += [{"text": "the same review posted twice by mistake", "label": "pos"}] * 3
    rows += [{"text": "<b>bold</b> words &amp; an entity in a review", "label": "neg"}]
    rows += [{"text": "ok", "label": "pos"}]
    for i in range(12):
        shared = " ".join(rng.choice(WORDS, size=12))
        rows += [
            {"text": f"{shared} first ending {i}", "label": "pos"},
            {"text": f"{shared} second ending {i}", "label": "pos"},
        ]
    pl.DataFrame(rows).write_csv(path)
    return path


def _run(tmp_path: Path) -> Path:
    recipe = {
        "name": "browser",
        "seed": 11,
        "input": {"source": str(_corpus(tmp_path / "data.csv")), "labels": ["pos", "neg"]},
        "steps": [
            {"clean": {"min_chars": 5}},
            {"dedup": {"method": "exact"}},
            {"split": {"dev": 0.2, "test": 0.2}},
            {"leakage": {"methods": ["exact", "ngram"], "short_ngram": 8}},
            {"eda": {"n_per_row": 2, "splits": ["train"], "budget": 0.5}},
        ],
        "cache": False,
    }
    return run_recipe(recipe, tmp_path / "run").run_dir.path


def _browse(chromium: str, page: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """One headless chromium call on `page` with a fresh profile and a net log."""
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu",
         f"--user-data-dir={out / 'profile'}", f"--log-net-log={out / 'net.json'}",
         *OFFLINE, *args, page.as_uri()],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip


def _page_requests(net_log: Path) -> list[str]:
    """URLs the page asked for (requests whose network isolation key is the file's)."""
    log = json.loads(net_log.read_text())
    return [
        e["params"]["url"]
        for e in log["events"]
        if "url" in e.get("params", {})
        and "file://" in str(e["params"].get("network_isolation_key", ""))
        and not e["params"]["url"].startswith(("file:", "data:"))
    ]


def _pixels(png: Path) -> np.ndarray:
    """The screenshot as an (h, w, channels) uint8 array."""
    try:
        from PIL import Image
    except ImportError:
        return decode_png(png.read_bytes())
    with Image.open(png) as image:
        return np.asarray(image.convert("RGB"))


def decode_png(data: bytes) -> np.ndarray:
    """A minimal decoder for 8-bit, non-interlaced RGB/RGBA/grey PNGs (what chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0 and colour in (0, 2, 4, 6)
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, 1 + width * bpp)
    out = np.zeros((height, width * bpp), dtype=np.uint8)
    prev = np.zeros(width * bpp, dtype=np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 2:
            row = (line + prev) % 256
        else:
            row = np.zeros_like(line)
            for x in range(line.size):
                left = row[x - bpp] if x >= bpp else 0
                up, corner = prev[x], prev[x - bpp] if x >= bpp else 0
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up) // 2
                else:
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                row[x] = (line[x] + pred) % 256
        out[y], prev = row, row
    return out.reshape(height, width, bpp)[..., :3] if bpp >= 3 else out.reshape(height, width, bpp)


def test_report_renders_every_section_offline_in_a_headless_browser(tmp_path):
    chromium = _chromium()
    run = _run(tmp_path)
    report = run / "report.html"
    doc = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", doc, flags=re.I)

    dom = _browse(chromium, report, tmp_path / "dom", "--dump-dom").stdout
    headings = re.findall(r"<h2>(.*?)</h2>", dom)
    assert headings == SECTIONS
    assert dom.count("<svg") >= 4 and 'class="matrix"' in dom
    assert _page_requests(tmp_path / "dom" / "net.json") == []

    shot = tmp_path / "report.png"
    _browse(chromium, report, tmp_path / "shot", f"--screenshot={shot}", "--window-size=1280,4000")
    pixels = _pixels(shot)
    assert pixels.shape[:2] == (4000, 1280)
    ink = (pixels < 240).any(axis=2)
    assert ink.mean() > 0.02  # text, tables and bars, not a blank page
    colours = {tuple(c) for c in pixels[::4, ::4].reshape(-1, 3)}
    assert len(colours) > 50
    bar_blue = np.all(np.abs(pixels.astype(int) - (0x4C, 0x78, 0xA8)) < 8, axis=2)
    assert bar_blue.sum() > 2000  # the charts' bars were drawn
    assert _page_requests(tmp_path / "shot" / "net.json") == []


@pytest.mark.integration
def test_the_quickstart_report_fills_every_section_and_draws_every_chart(quickstart_runs, tmp_path):
    chromium = _chromium()
    report = quickstart_runs["run_dir"] / "report.html"
    dom = _browse(chromium, report, tmp_path / "dom", "--dump-dom").stdout
    headings = re.findall(r"<h2>(.*?)</h2>", dom)
    assert headings == QUICKSTART_SECTIONS
    for name, body in zip(headings, re.split(r"<h2>.*?</h2>", dom)[1:], strict=True):
        assert "<table" in body or "<svg" in body, f"section {name!r} is empty"
    assert _page_requests(tmp_path / "dom" / "net.json") == []

    # Each chart alone on a white page of its own size: something is drawn, in colour.
    charts = re.findall(r"<svg\b.*?</svg>", dom, flags=re.S)
    assert len(charts) >= 8
    for i, svg in enumerate(charts):
        label = re.search(r'aria-label="([^"]*)"', svg).group(1)
        width, height = (int(float(re.search(rf'\b{a}="([\d.]+)"', svg).group(1)))
                         for a in ("width", "height"))  # fmt: skip
        page, shot = tmp_path / f"chart{i}.html", tmp_path / f"chart{i}.png"
        page.write_text(f"<html><body style='margin:20px;background:#fff'>{svg}</body></html>")
        # headless windows have a minimum size: a margin around the chart keeps it in view
        window = f"--window-size={max(width, 500) + 60},{max(height, 200) + 60}"
        _browse(chromium, page, tmp_path / f"chart{i}", f"--screenshot={shot}", window)
        pixels = _pixels(shot).astype(int)
        ink = (pixels < 200).any(axis=2).mean()
        coloured = (pixels.max(axis=2) - pixels.min(axis=2) > 60).sum()
        assert ink > 0.01 and coloured > 100, f"chart {label!r} looks blank ({ink:.3f}, {coloured})"


def test_the_network_check_sees_a_page_that_fetches(tmp_path):
    chromium = _chromium()
    page = tmp_path / "fetches.html"
    page.write_text("<html><body><img src='https://example.com/pixel.png'></body></html>")
    _browse(chromium, page, tmp_path / "out", "--dump-dom")
    assert _page_requests(tmp_path / "out" / "net.json") == ["https://example.com/pixel.png"]


def test_the_fallback_png_decoder_agrees_with_pillow(tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(1)
    array = np.repeat(rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8), 2, axis=1)
    array[:, :10] = 255  # flat runs and repeated rows make the encoder pick several filters
    array[16:] = array[15]
    path = tmp_path / "small.png"
    image_module.fromarray(array).save(path)
    assert np.array_equal(decode_png(path.read_bytes()), array)
