"""Benchmark scale-bar finding and label reading on simulated micrographs.

Draws bars of random length (5-30 % of the width), corner, colour, label box, text position,
font (the DejaVu family) and font size, with labels in nm, µm (decimals such as "0.5 µm" and
"100.0nm") and Å, onto dark-particle (TEM) and bright-particle (SEM/HAADF) fields of
512², 1024² and 2048² pixels, and prints:

- length accuracy: share of bars found with ``|length_px - truth| <= 2`` by
  ``find_scale_bar(image)`` as the pipeline calls it (labels read when Tesseract is there);
- false bars on bar-less fields;
- OCR: share of labels whose ``value_nm`` equals the truth, share read wrongly (a value
  that is not the truth) and share left unread (None), over all labels and per class
  (:func:`label_class`: in a box, clear, over particles, low contrast);
- time per image of finding (no OCR) and of OCR;
- thin line bars (``--thin`` cases, drawn after the others from their own random stream so
  that the solid cases stay the same): 1-2 px lines, half with end ticks, as SEM data bars
  and many TEM figures draw them, 70 % with their label on particle-free background (a data
  strip, a clear corner), 30 % over the particles; length within ±2 px and labels read;
- false bars on bar-less fields, also with thin straight lines that are no bars (a one-pixel
  panel border, a one-pixel line across the field without a label).

Run: ``python bench/bench_scalebar.py [--cases 240] [--blank 60] [--thin 60] [--no-ocr]
[--seed 0] [--dump DIR]``; ``--dump`` saves each label not read right as
``DIR/seedS_caseI.npz`` (``seedS_thinI`` for thin bars: image, truth, style) and a ``.png``
of its region, scaled up, to look at and read again.

Real micrographs carry no truth file: ``--real DIR --out OUT`` runs ``find_scale_bar`` on
every image in ``DIR`` (e.g. ``../shared/data/emps-train/images``), prints how many bars
were found and labels read, and writes ``OUT/scalebars.csv`` and contact sheets
``OUT/bars_NN.png`` (the region around each bar, the bar outlined, length and value
captioned) for checking by eye.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np

from tempipe._ocr import tesseract_available
from tempipe.errors import ParameterError
from tempipe.scalebar import find_scale_bar
from tempipe.simulate import draw_scale_bar, simulate_micrograph

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
         "DejaVuSansMono.ttf", "DejaVuSansCondensed.ttf", "DejaVuSerifCondensed.ttf",
         "DejaVuSansMono-Bold.ttf")
SIDES = (512, 512, 1024, 1024, 2048)
NICE_NM = np.array([m * 10.0 ** k for k in range(-1, 5) for m in (1, 2, 5)])


def label_text(value_nm: float, rng: np.random.Generator) -> str:
    """A label for ``value_nm`` in one of the usual styles, units and spacings."""
    space = " " if rng.random() < 0.6 else ""
    styles = [f"{value_nm:g}{space}nm", f"{value_nm:.1f}{space}nm"]
    if value_nm >= 100:
        styles += [f"{value_nm / 1000:g}{space}µm"] * 2
    if value_nm <= 5:
        styles.append(f"{value_nm * 10:g}{space}Å")
    return styles[int(rng.integers(len(styles)))]


def base_fields(rng: np.random.Generator) -> dict:
    """Particle fields without bars and their particle-free twins (same imaging), a few per
    (side, polarity), reused across cases."""
    fields = {}
    for side in sorted(set(SIDES)):
        for polarity in ("dark", "bright"):
            n = min(int(60 * (side / 512) ** 2), 600)
            fields[side, polarity] = [
                tuple(simulate_micrograph((side, side), n_particles=k, polarity=polarity,
                                          rng=seed).image for k in (n, 0))
                for seed in rng.integers(1 << 30, size=2 if side < 2048 else 1).tolist()]
    return fields


def label_class(style: dict) -> str:
    """'box', 'clear' (contrasting text on particle-free background), 'over particles'
    (contrasting text over particles) or 'low contrast' (text of the background's side)."""
    if style["box"]:
        return "box"
    if (style["color"] == "white") != (style["polarity"] == "bright"):
        return "low contrast"
    return "clear" if style["clear"] else "over particles"


def draw_case(fields: dict, rng: np.random.Generator, thin: bool = False):
    """One random bar on one field: (image, truth, style).

    Without a box, the text is mostly (85 %) of the colour that contrasts with the
    background, and half the labels sit on particle-free background (as
    :func:`simulate_micrograph` draws them), half over the particles. ``thin``: a 1-2 px
    line bar, half with end ticks, no label box, its label and bar on particle-free
    background 70 % of the time.
    """
    while True:
        side = int(rng.choice(SIDES))
        polarity = str(rng.choice(["dark", "bright"]))
        pool = fields[side, polarity]
        field, empty = pool[int(rng.integers(len(pool)))]
        length_px = int(rng.uniform(0.05, 0.30) * side)
        value_nm = float(rng.choice(NICE_NM))
        contrasting = "black" if polarity == "dark" else "white"
        box = bool(rng.random() < 0.5) and not thin
        color = (str(rng.choice(["white", "black"])) if box or rng.random() < 0.15
                 else contrasting)
        style = dict(corner=str(rng.choice(["bottom-right", "bottom-left", "top-right",
                                            "top-left"])),
                     color=color, box=box,
                     text_position=str(rng.choice(["above", "below", "beside"])),
                     font_size=int(max(10, rng.uniform(0.022, 0.05) * side)),
                     text=label_text(value_nm, rng),
                     font_path=str(FONT_DIR / FONTS[int(rng.integers(len(FONTS)))]))
        clear = bool(rng.random() < (0.7 if thin else 0.5))
        if thin:
            style.update(thickness_px=int(rng.integers(1, 3)), end_ticks=bool(rng.random() < 0.5))
        try:
            image, truth = draw_scale_bar(field, value_nm / length_px, length_nm=value_nm,
                                          **style)
        except ParameterError:
            continue  # bar and label do not fit: draw another case
        if clear:  # redraw on a field whose label area holds no particles
            r0, c0, r1, c1 = truth.label_bbox
            r0, c0 = max(0, r0 - 8), max(0, c0 - 8)
            patched = field.copy()
            patched[r0:r1 + 8, c0:c1 + 8] = empty[r0:r1 + 8, c0:c1 + 8]
            image, truth = draw_scale_bar(patched, value_nm / length_px, length_nm=value_nm,
                                          **style)
        return image, truth, dict(style, side=side, polarity=polarity, clear=clear)


def _ocr_kind(value, truth) -> str:
    if value is None:
        return "unread"
    return "right" if np.isclose(value, truth.value_nm) else "wrong"


def dump_case(out: Path, name: str, image: np.ndarray, truth, style: dict) -> None:
    """Save a case (image, truth, style) as ``out/name.npz`` and its label region, scaled
    up four times, as ``out/name.png``."""
    import json

    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / f"{name}.npz", image=image, truth=json.dumps(
        {"length_px": truth.length_px, "value_nm": truth.value_nm, "text": truth.text,
         "bar_bbox": truth.bar_bbox, "label_bbox": truth.label_bbox}, default=int),
        style=json.dumps(style, default=str))
    r0, c0, r1, c1 = truth.label_bbox
    region = image[max(0, r0 - 6):r1 + 6, max(0, c0 - 6):c1 + 6]
    grey = np.round(255 * (region - image.min()) / max(np.ptp(image), 1e-12))
    tile = Image.fromarray(grey.astype(np.uint8))
    tile.resize((4 * tile.width, 4 * tile.height), Image.Resampling.NEAREST).save(
        out / f"{name}.png")


def _run_cases(fields: dict, rng: np.random.Generator, n_cases: int, ocr: bool, seed: int,
               dump: Path | None, thin: bool = False) -> dict:
    """Draw and find ``n_cases`` bars: per case whether the length is within ±2 px, times,
    misses and OCR tallies."""
    out = dict(lengths=[], clear=[], find_ms=[], ocr_ms=[], misses=[], reads={})
    for i in range(n_cases):
        image, truth, style = draw_case(fields, rng, thin=thin)
        t0 = time.perf_counter()
        find_scale_bar(image, read_label=False)
        out["find_ms"].append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        bar = find_scale_bar(image, read_label=ocr)  # what the pipeline gets
        out["ocr_ms"].append((time.perf_counter() - t0) * 1e3 - out["find_ms"][-1])
        ok = bar is not None and abs(bar.length_px - truth.length_px) <= 2
        out["lengths"].append(ok)
        out["clear"].append(style["clear"])
        if not ok:
            out["misses"].append((i, "length", truth.length_px, bar and round(bar.length_px, 1),
                                  style))
        if ocr and bar is not None:
            kind = _ocr_kind(bar.value_nm, truth)
            for key in ("all", label_class(style)):
                out["reads"].setdefault(key, Counter())[kind] += 1
            if kind != "right":
                out["misses"].append((i, "ocr " + kind, truth.text, bar.value_nm,
                                      label_class(style), Path(style["font_path"]).stem,
                                      style["font_size"]))
                if dump is not None:
                    dump_case(dump, f"seed{seed}_{'thin' if thin else 'case'}{i}", image,
                              truth, style)
    return out


def lined_field(side: int, polarity: str, seed: int) -> np.ndarray:
    """A bar-less field with thin straight lines that are no scale bars: a one-pixel panel
    border a few pixels inside the edge and a one-pixel line, without a label, across part
    of the field near its top or bottom."""
    rng = np.random.default_rng(seed)
    image = simulate_micrograph((side, side), n_particles=int(60 * (side / 512) ** 2),
                                polarity=polarity, rng=seed).image.copy()
    ink = image.min() if polarity == "dark" else image.max()
    inset = int(rng.integers(2, 8))
    image[[inset, side - 1 - inset], inset:side - inset] = ink
    image[inset:side - inset, [inset, side - 1 - inset]] = ink
    row = int(rng.choice([rng.integers(20, side // 4), rng.integers(3 * side // 4, side - 20)]))
    start = int(rng.integers(20, side // 2))
    image[row, start:start + int(rng.uniform(0.1, 0.4) * side)] = ink
    return image


def _print_reads(reads: dict, tag: str = "") -> None:
    for key, tally in sorted(reads.items(), key=lambda kv: kv[0] != "all"):
        n = sum(tally.values())
        print(f"OCR value_nm{tag}, {key} ({n} labels): right {tally['right'] / n:.1%}, "
              f"unread (None) {tally['unread'] / n:.1%}, wrong {tally['wrong'] / n:.1%}")


def run(n_cases: int, n_blank: int, ocr: bool, seed: int, dump: Path | None = None,
        n_thin: int = 60) -> None:
    rng = np.random.default_rng(seed)
    fields = base_fields(rng)
    ocr = ocr and tesseract_available()
    solid = _run_cases(fields, rng, n_cases, ocr, seed, dump)
    thin = _run_cases(fields, np.random.default_rng([seed, 1]), n_thin, ocr, seed, dump, True)
    sizes = [((512, 1024)[k % 2], ("dark", "bright")[(k // 2) % 2]) for k in range(n_blank)]
    blank = [find_scale_bar(simulate_micrograph((s, s), n_particles=int(60 * (s / 512) ** 2),
                                                polarity=p, rng=seed + 1000 + k).image,
                            read_label=ocr) for k, (s, p) in enumerate(sizes)]
    lined = [find_scale_bar(lined_field(s, p, seed + 2000 + k), read_label=ocr)
             for k, (s, p) in enumerate(sizes)]
    print(f"length within ±2 px: {np.mean(solid['lengths']):.1%} of {n_cases} simulated bars")
    if n_thin:
        ok, clear = np.array(thin["lengths"]), np.array(thin["clear"])
        print(f"thin line bars, length within ±2 px: {ok.mean():.1%} of {n_thin} "
              f"(label on clear background {ok[clear].mean():.1%} of {clear.sum()}, over "
              f"particles {ok[~clear].mean() if (~clear).any() else np.nan:.1%} of "
              f"{(~clear).sum()})")
    print(f"false bars on {n_blank} bar-less fields (512² and 1024², dark and bright "
          f"particles): {sum(b is not None for b in blank)}; on {n_blank} such fields with "
          f"a panel border and an unlabelled line: {sum(b is not None for b in lined)}")
    _print_reads(solid["reads"])
    _print_reads(thin["reads"], " (thin bars)")
    find_ms = solid["find_ms"] + thin["find_ms"]
    if ocr:
        ocr_ms = solid["ocr_ms"] + thin["ocr_ms"]
        print(f"OCR time per image: median {np.median(ocr_ms):.0f} ms, "
              f"max {np.max(ocr_ms):.0f} ms")
    print(f"find_scale_bar (no OCR): median {np.median(find_ms):.1f} ms, "
          f"max {np.max(find_ms):.1f} ms per image (512²-2048²)")
    for miss in solid["misses"]:
        print("  miss:", miss)
    for miss in thin["misses"]:
        print("  thin miss:", miss)


def run_real(folder: Path, out: Path, per_sheet: int = 12) -> None:
    """Bars and labels found on real images, listed and drawn for checking by eye."""
    import csv

    from PIL import Image, ImageDraw

    from tempipe.io import load_micrograph

    out.mkdir(parents=True, exist_ok=True)
    rows, tiles, times = [], [], []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".tif",
                                                                           ".tiff", ".jpg")):
        image = load_micrograph(path).image
        t0 = time.perf_counter()
        bar = find_scale_bar(image)
        times.append((time.perf_counter() - t0) * 1e3)
        rows.append({"image": path.name, "length_px": bar and round(bar.length_px, 2),
                     "bbox": bar and bar.bbox, "value_nm": bar and bar.value_nm,
                     "text": bar and bar.text})
        if bar is None:
            continue
        r0, c0, r1, c1 = bar.label_bbox or bar.bbox
        window = (max(0, c0 - 30), max(0, r0 - 30), min(image.shape[1], c1 + 30),
                  min(image.shape[0], r1 + 30))
        tile = Image.open(path).convert("RGB").crop(window)
        b = bar.bbox
        ImageDraw.Draw(tile).rectangle([b[1] - window[0] - 1, b[0] - window[1] - 2,
                                        b[3] - window[0], b[2] - window[1] + 1],
                                       outline=(255, 0, 0))
        tile.thumbnail((390, 150))
        canvas = Image.new("RGB", (400, 170), (40, 40, 90))
        canvas.paste(tile, (0, 0))
        ImageDraw.Draw(canvas).text((2, 156), f"{path.stem[:10]} L={bar.length_px:.1f} "
                                    f"v={bar.value_nm} {bar.text!r}"[:64], fill=(255, 255, 0))
        tiles.append(canvas)
    with open(out / "scalebars.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for k in range(0, len(tiles), per_sheet):
        part = tiles[k:k + per_sheet]
        sheet = Image.new("RGB", (800, 170 * ((len(part) + 1) // 2)))
        for j, tile in enumerate(part):
            sheet.paste(tile, ((j % 2) * 400, (j // 2) * 170))
        sheet.save(out / f"bars_{k // per_sheet:02d}.png")
    print(f"{len(rows)} images: bars on {len(tiles)}, label values read on "
          f"{sum(r['value_nm'] is not None for r in rows)}; find_scale_bar median "
          f"{np.median(times):.0f} ms; list and contact sheets in {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=240)
    parser.add_argument("--blank", type=int, default=60)
    parser.add_argument("--thin", type=int, default=60, help="thin line bar cases")
    parser.add_argument("--no-ocr", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dump", type=Path, help="save labels not read right here")
    parser.add_argument("--real", type=Path, help="folder of real micrographs")
    parser.add_argument("--out", type=Path, default=Path("scalebar_check"),
                        help="where --real writes its list and contact sheets")
    args = parser.parse_args()
    if args.real is not None:
        run_real(args.real, args.out)
    else:
        run(args.cases, args.blank, not args.no_ocr, args.seed, args.dump, args.thin)


if __name__ == "__main__":
    main()
