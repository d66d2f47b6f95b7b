"""Tables and dev-WER curves from the results.json that adapter_experiments writes.

    python -m lorawhisper_app.benchmarks.experiment_report results.json --figures docs/figures

Prints Markdown tables; writes one SVG per language of the expansion experiment
(dev WER against training steps, one line per start, data size and seed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

COLOURS = {"cold": "#1f77b4", "warm": "#d62728", "anchor": "#ff7f0e", "moe": "#2ca02c", "from-rw": "#9467bd"}
OTHER_COLOURS = ("#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")  # for starts not named above, in turn
WIDTH, HEIGHT, PAD = 640, 360, 48


def _history(run: dict) -> list[tuple[int, float]]:
    return [(e["step"], e["dev_wer"]) for e in run["events"] if e["event"] == "eval"]


def _similarity(run: dict) -> list[dict]:
    return next((e["data"]["ranking"] for e in run["events"] if e["event"] == "similarity"), [])


def _done(run: dict) -> dict:
    return next((e for e in run["events"] if e["event"] == "done"), {})


def svg_curves(title: str, series: dict[str, list[tuple[int, float]]], dashes: dict[str, str]) -> str:
    """A small line chart: x = step, y = dev WER; a line is coloured by its label's first word (the
    start) and drawn with its `dashes` stroke pattern (solid where none)."""
    points = [p for line in series.values() for p in line]
    if not points:
        return ""
    max_x = max(x for x, _ in points) or 1
    lo, hi = min(y for _, y in points), max(y for _, y in points)
    lo, hi = max(0.0, lo - 0.05), hi + 0.05

    def xy(x: float, y: float) -> str:
        px = PAD + (WIDTH - 2 * PAD) * x / max_x
        py = HEIGHT - PAD - (HEIGHT - 2 * PAD) * (y - lo) / (hi - lo)
        return f"{px:.1f},{py:.1f}"

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="black"/>',
           f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="black"/>',
           f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle">training step</text>',
           f'<text x="14" y="{HEIGHT / 2}" transform="rotate(-90 14 {HEIGHT / 2})" text-anchor="middle">dev WER</text>']
    for i in range(5):
        y = lo + (hi - lo) * i / 4
        out.append(f'<text x="{PAD - 6}" y="{xy(0, y).split(",")[1]}" text-anchor="end" dominant-baseline="middle">{y:.2f}</text>')
        x = max_x * i / 4
        out.append(f'<text x="{xy(x, lo).split(",")[0]}" y="{HEIGHT - PAD + 16}" text-anchor="middle">{x:.0f}</text>')
    others = sorted({label.split(" ")[0] for label in series} - set(COLOURS))
    colours = COLOURS | {start: OTHER_COLOURS[i % len(OTHER_COLOURS)] for i, start in enumerate(others)}
    for i, (label, line) in enumerate(sorted(series.items())):
        colour = colours[label.split(" ")[0]]
        dash = f' stroke-dasharray="{dashes[label]}"' if dashes.get(label) else ""
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{" ".join(xy(x, y) for x, y in line)}"/>')
        ly = PAD + 14 * i
        out.append(f'<line x1="{WIDTH - PAD - 150}" y1="{ly}" x2="{WIDTH - PAD - 126}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{WIDTH - PAD - 120}" y="{ly + 4}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out)


def report(results: dict, figures: Path | None) -> str:
    runs = results["runs"]
    lines = ["## Shipped adapters (dev WER, batched greedy decoding)", "",
             "| language | clips | before | after | relative cut | steps (best) | run time |", "|---|---|---|---|---|---|---|"]
    for key, run in runs.items():
        if key.startswith("ship-"):
            done = _done(run)
            report_event = next((e for e in run["events"] if e["event"] == "report"), {})
            if done:
                before, after = done["data"]["before"], done["dev_wer"]
                lines.append(f"| {key[5:]} | {report_event.get('train', {}).get('clips', '?')} | {before:.3f} | {after:.3f} | "
                             f"{(before - after) / before:.0%} | {done['step']} ({done['data']['best_step']}) | {run['seconds']:.0f} s |")
    lines += ["", "## Language expansion: best dev WER at equal step budgets", "",
              "| run | similarity ranking (top 3) | start WER | best WER | best step |", "|---|---|---|---|---|"]
    per_language: dict[str, dict[str, list[tuple[int, float]]]] = {}
    grouped: dict[tuple[str, str, str], list[float]] = {}
    for key, run in sorted(runs.items()):
        if key.startswith("ship-") or run["best_wer"] is None:
            continue
        history = _history(run)
        ranking = ", ".join(f"{r['language']} {r['similarity']:.2f}" for r in _similarity(run)[:3])
        lines.append(f"| {key} | {ranking} | {history[0][1]:.3f} | {run['best_wer']:.3f} | {_done(run).get('data', {}).get('best_step', '?')} |")
        parts = key.split("-")
        if key.startswith("syn-"):  # syn-CODE for the seven, syn-pt-VARIANT[-sSEED] for the eighth
            seed = parts.pop() if len(parts) > 3 and parts[-1][1:].isdigit() else "s0"
            language, variant, size = "syn-" + parts[1], "-".join(parts[2:]) or "adapter", "15m"
        else:
            language, size, seed = parts[0], parts[-2], parts[-1]
            variant = "-".join(parts[1:-2])
        grouped.setdefault((language, size, variant), []).append(run["best_wer"])
        label = f"{variant} {size}" if seed == "s0" else f"{variant} {size} {seed}"
        per_language.setdefault(language, {})[label] = history
    lines += ["", "## Mean best dev WER over seeds", "", "| language | data | start | mean best WER | seeds |", "|---|---|---|---|---|"]
    for (language, size, variant), values in sorted(grouped.items()):
        lines.append(f"| {language} | {size} | {variant} | {statistics.mean(values):.3f} | {len(values)} |")
    if figures:
        figures.mkdir(parents=True, exist_ok=True)
        for language, series in per_language.items():
            # other seeds dotted, 10 minutes of data dashed, seed 0 on 90 minutes solid
            dashes = {label: "2,3" if len(label.split()) > 2 else "5,4" if label.endswith("10m") else "" for label in series}
            svg = svg_curves(f"{language}: dev WER against training steps", series, dashes)
            if svg:
                (figures / f"expansion-{language}.svg").write_text(svg, encoding="utf-8")
    lines += ["", "## Phases", ""] + [f"- {json.dumps(p)}" for p in results["phases"] if "runs" not in p] + \
             [f"- {p['phase']}: {p['seconds']:.0f} s" for p in results["phases"] if "seconds" in p]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results")
    parser.add_argument("--figures", default=None, help="folder for the SVG curves")
    args = parser.parse_args(argv)
    results = json.loads(Path(args.results).read_text(encoding="utf-8"))
    print(report(results, Path(args.figures) if args.figures else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
