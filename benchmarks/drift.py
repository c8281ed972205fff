"""The drift monitor's checks (validation/drift.py) against Evidently 0.7's data-drift preset, on cardio rows.

Three measurements, ours and the peers on the same rows in the same run:

1. Speed on a 1M-row x 20-column window (issue target: the monitor checks it in at most 10 s here). The
   reference (20k rows) and the window are bootstrap resamples of cardio's normal rows (its first 20
   features) plus Gaussian jitter of 0.01 column standard deviations, fixed seed. "The monitor" is
   what flows/jobs/monitor.py does: `sample_rows` of the window, `predict` of a VAEDetector fitted on the
   reference, `assess_drift` (feature drift, score drift, alert volume). Peers, on the full window:
   `Report([DataDriftPreset()])` (default) and `DataDriftPreset(num_method="ks")`. Each method runs
   once in a fresh process; its peak RSS delta is the peak resident memory during the call minus the
   resident memory just before it (Linux /proc: VmHWM reset through clear_refs, then read back).
   After that call, the monitor's parts are timed one by one (not part of its total).
2. False alarms on same-distribution data: random half/half splits of cardio's normal rows (reference
   half vs window half). Share of splits flagged and share of features flagged, by our feature check and
   by both presets (dataset drift: a drifted-column share of at least 0.5, the preset's default). The
   full verdict (`assess_drift`) runs on 400-row windows of one half against a detector fitted on the
   other half (its calibration scores are the reference scores): several detectors, several windows each.
3. Detection of shifts of known size: reference (20k rows) and window (n rows) bootstrapped as in 1 from
   all of cardio's normal rows. In each window two columns are shifted by d reference standard
   deviations for each d (eight distinct random columns; a column's verdict depends on that column only,
   for ours and for Evidently, so one window serves every d) and the other twelve are the unshifted
   control (d = 0). Ours: `ColumnDrift.drifted`; Evidently: its default per-column test, the one the
   preset picks (`ValueDrift(column)`: normalized Wasserstein distance, drift at >= 0.1). Both sides
   come from one pool, not from two halves: halves of cardio's 1,655 normal rows already differ by about
   0.05 standard deviations per column (section 2 reports it), a real difference once resampled to
   100k rows, which would blur the known shift.

Run: .venv/bin/python benchmarks/drift.py [--quick]   (writes benchmarks/results/drift.md and .json)
     --quick: a 100k-row speed window without the default preset, 20 splits, windows of 10k and 100k rows.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date
from importlib.metadata import version
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", category=DeprecationWarning)  # litestar and numpy.core, via evidently
# the preset's np.corrcoef of a column constant in one half (cardio's f05 has one nonzero normal row)
warnings.filterwarnings("ignore", "invalid value encountered in divide", RuntimeWarning, "numpy")

from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently.metrics import ValueDrift  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402
from publish import publish  # noqa: E402

from vae import VAEDetector  # noqa: E402
from vae.datasets import find_shipped, load_npz  # noqa: E402
from validation.drift import (  # noqa: E402
    DriftPolicy,
    DriftVerdict,
    alert_volume,
    assess_drift,
    feature_drift,
    sample_rows,
    score_drift,
)

DATASET = "cardio"
N_FEATURES = 20
COLUMNS = [f"f{i:02d}" for i in range(N_FEATURES)]
REFERENCE_ROWS = 20_000
JITTER = 0.01  # Gaussian jitter added to resampled rows, in column standard deviations
SHIFTS = (0.05, 0.1, 0.25, 0.5)  # in reference standard deviations
SHIFTED_PER_SIZE = 2  # columns shifted by each d
VERDICT_WINDOW_ROWS = 400
DATASET_DRIFT_SHARE = 0.5  # the preset's drift_share
EVIDENTLY_DEFAULT_METHOD = "Wasserstein distance (normed)"
TARGET_S = 10.0
SEED = 0
EPOCHS = 20
POLICY = DriftPolicy()
MONITOR = "ours (monitor)"
PRESETS: dict[str, dict[str, str]] = {"Evidently default": {}, "Evidently ks": {"num_method": "ks"}}


@dataclass(frozen=True)
class Plan:
    """How much each section measures."""

    speed_rows: int = 1_000_000
    default_preset: bool = True  # time the default preset in section 1 (the slowest part of the run)
    splits: int = 100  # half/half splits of section 2
    detectors: int = 10  # detectors of the section 2 verdicts, each fitted on its own half
    windows_per_detector: int = 10
    detection: tuple[tuple[int, int], ...] = ((100_000, 30), (1_000_000, 5))  # (window rows, repetitions)


QUICK = Plan(
    speed_rows=100_000, default_preset=False, splits=20, detectors=2, detection=((10_000, 10), (100_000, 3))
)


# ------------------------------------------------------------------ data
def normal_rows() -> np.ndarray:
    """Cardio's normal rows, first 20 features."""
    data = load_npz(find_shipped(ROOT / "data", DATASET))
    return data.X[data.y == 0][:, :N_FEATURES]


def bootstrap(pool: np.ndarray, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """`n` rows drawn from `pool` with replacement, plus Gaussian jitter of JITTER column std."""
    rows = pool[rng.integers(0, len(pool), n)]
    rows += rng.normal(0.0, JITTER * pool.std(axis=0), size=rows.shape)
    return pd.DataFrame(rows, columns=COLUMNS)


def halves(pool: np.ndarray, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random half/half split of `pool`'s rows."""
    order, half = rng.permutation(len(pool)), len(pool) // 2
    return (
        pd.DataFrame(pool[order[:half]], columns=COLUMNS),
        pd.DataFrame(pool[order[half:]], columns=COLUMNS),
    )


def dataset(frame: pd.DataFrame) -> Dataset:
    return Dataset.from_pandas(frame, data_definition=DataDefinition(numerical_columns=COLUMNS))


# ------------------------------------------------------------------ the checks
def run_monitor(detector: VAEDetector, reference: pd.DataFrame, window: pd.DataFrame) -> DriftVerdict:
    """What flows/jobs/monitor.py does with a window: sample it, score the sample, one verdict."""
    rows = sample_rows(window, POLICY, SEED)
    prediction = detector.predict(rows)
    return assess_drift(
        reference,
        detector.calibration_scores_,
        rows,
        prediction.score,
        prediction.is_anomaly,
        detector.threshold_fpr_,
        POLICY,
        SEED,
    )


def run_preset(reference: pd.DataFrame, window: pd.DataFrame, options: dict[str, str]) -> dict[str, Any]:
    """Evidently's DataDriftPreset: share of drifted columns, dataset drift, the per-column methods."""
    snapshot = Report([DataDriftPreset(**options)]).run(
        reference_data=dataset(reference), current_data=dataset(window)
    )
    share, methods = 0.0, set()
    for metric in snapshot.dict()["metrics"]:
        kind = metric["config"]["type"]
        if kind.endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif kind.endswith("ValueDrift"):
            methods.add(metric["config"]["method"])
    return {"drifted_share": share, "dataset_drift": share >= DATASET_DRIFT_SHARE, "methods": sorted(methods)}


def evidently_columns(reference: pd.DataFrame, window: pd.DataFrame) -> dict[str, bool]:
    """Evidently's default per-column verdicts (normalized Wasserstein >= its threshold).

    Raises:
        RuntimeError: Evidently picked another method for a column.
    """
    snapshot = Report([ValueDrift(column=c) for c in COLUMNS]).run(
        reference_data=dataset(reference), current_data=dataset(window)
    )
    flags = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["method"] != EVIDENTLY_DEFAULT_METHOD:
            raise RuntimeError(f"Evidently picked {config['method']} for {config['column']}")
        flags[config["column"]] = float(metric["value"]) >= config["threshold"]
    return flags


def ours_summary(verdict: DriftVerdict) -> dict[str, Any]:
    features = verdict.features
    return {
        "drifted": verdict.drifted,
        "features": features.drifted,
        "drifted_share": len(features.drifted_columns) / len(features.columns),
        "scores": verdict.scores.drifted,
        "alerts": verdict.alerts.excessive,
        "alert_rate": verdict.alerts.rate,
        "target_fpr": verdict.alerts.target_fpr,
    }


# ------------------------------------------------------------------ 1. speed
def speed_data(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The 20k-row reference and the n-row window (the same in every process)."""
    rng = np.random.default_rng(SEED)
    pool = normal_rows()
    return bootstrap(pool, REFERENCE_ROWS, rng), bootstrap(pool, n, rng)


def _status_kib(field: str) -> int:
    """One memory figure of this process from /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    """Reset this process's peak resident memory (VmHWM) to its current RSS; False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def monitor_parts(detector: VAEDetector, reference: pd.DataFrame, window: pd.DataFrame) -> dict[str, float]:
    """Seconds of each part of the monitor's work on the window, timed one by one."""
    parts: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        out = fn()
        parts[name] = time.perf_counter() - started
        return out

    rows = timed("sample_rows", lambda: sample_rows(window, POLICY, SEED))
    prediction = timed("predict", lambda: detector.predict(rows))
    timed("feature_drift", lambda: feature_drift(reference, rows, POLICY, SEED))
    timed("score_drift", lambda: score_drift(detector.calibration_scores_, prediction.score, POLICY, SEED))
    timed("alert_volume", lambda: alert_volume(prediction.is_anomaly, detector.threshold_fpr_, POLICY))
    return parts


def speed_child(method: str, n: int) -> dict[str, Any]:
    """One method on the window, in a fresh process: seconds, peak RSS delta and its outcome."""
    reference, window = speed_data(n)
    detector = None
    if method == MONITOR:
        detector = VAEDetector(seed=SEED, epochs=EPOCHS, device="cpu").fit(reference)
    measured = _reset_peak()
    before = _status_kib("VmRSS")
    started = time.perf_counter()
    if detector is not None:
        outcome = ours_summary(run_monitor(detector, reference, window))
    else:
        outcome = run_preset(reference, window, PRESETS[method])
    seconds = time.perf_counter() - started
    peak = (_status_kib("VmHWM") - before) / 1024 if measured else None
    result = {"method": method, "rows": n, "seconds": seconds, "peak_rss_delta_mib": peak, "outcome": outcome}
    if detector is not None:
        result["parts_s"] = monitor_parts(detector, reference, window)
    return result


def measure_speed(plan: Plan) -> list[dict[str, Any]]:
    """Section 1: every method once, each in its own fresh process."""
    methods = [MONITOR, *(m for m in PRESETS if plan.default_preset or m != "Evidently default")]
    results = []
    for method in methods:
        load_before = os.getloadavg()[0]
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            results.append(pool.submit(speed_child, method, plan.speed_rows).result())
        results[-1]["load_1min"] = [load_before, os.getloadavg()[0]]  # other work here skews the times
        print(f"speed: {method}: {results[-1]['seconds']:.1f} s", flush=True)
    return results


# ------------------------------------------------------------------ 2. false alarms
def false_alarm_split(pool: np.ndarray, i: int) -> dict[str, Any]:
    """One half/half split: our feature check and both presets, plus the halves' per-column distance."""
    reference, window = halves(pool, np.random.default_rng([SEED, 2, i]))
    ours = feature_drift(reference, window, POLICY, SEED)
    result: dict[str, Any] = {
        "ours": {"dataset_drift": ours.drifted, "drifted_share": len(ours.drifted_columns) / N_FEATURES},
        "halves_effect": [c.effect for c in ours.columns],  # normalized Wasserstein of each column
    }
    for name, options in PRESETS.items():
        result[name] = run_preset(reference, window, options)
    return result


def verdict_windows(pool: np.ndarray, g: int, windows: int) -> list[dict[str, Any]]:
    """A detector fitted on one half; full verdicts on 400-row windows of the other half."""
    reference, held_out = halves(pool, np.random.default_rng([SEED, 3, g]))
    detector = VAEDetector(seed=g, epochs=EPOCHS, device="cpu").fit(reference)
    out = []
    for w in range(windows):
        rows = held_out.sample(VERDICT_WINDOW_ROWS, random_state=g * windows + w)
        out.append({"detector": g, **ours_summary(run_monitor(detector, reference, rows))})
    return out


def measure_false_alarms(pool: np.ndarray, plan: Plan) -> dict[str, Any]:
    """Section 2: split-level and feature-level false alarms on same-distribution data."""
    splits = [false_alarm_split(pool, i) for i in range(plan.splits)]
    print(f"false alarms: {plan.splits} splits done", flush=True)
    verdicts = [v for g in range(plan.detectors) for v in verdict_windows(pool, g, plan.windows_per_detector)]
    print(f"false alarms: {len(verdicts)} verdicts done", flush=True)
    return {"half_rows": len(pool) // 2, "splits": splits, "verdicts": verdicts}


# ------------------------------------------------------------------ 3. detection
def detection_rep(pool: np.ndarray, n: int, r: int) -> dict[str, Any]:
    """One window of n rows with SHIFTED_PER_SIZE columns shifted by each d: per-column verdicts."""
    rng = np.random.default_rng([SEED, 4, n, r])
    reference, window = bootstrap(pool, REFERENCE_ROWS, rng), bootstrap(pool, n, rng)
    chosen = rng.choice(N_FEATURES, size=len(SHIFTS) * SHIFTED_PER_SIZE, replace=False)
    shift = dict.fromkeys(COLUMNS, 0.0)
    for k, column in enumerate(chosen):
        shift[COLUMNS[column]] = SHIFTS[k // SHIFTED_PER_SIZE]
    for column, d in shift.items():
        window[column] += d * float(np.std(reference[column]))  # Evidently's norm: np.std of the reference
    ours = {c.column: c.drifted for c in feature_drift(reference, window, POLICY, SEED + r).columns}
    return {
        "rows": n,
        "rep": r,
        "shift": shift,
        "ours": ours,
        "evidently": evidently_columns(reference, window),
    }


def measure_detection(pool: np.ndarray, plan: Plan) -> list[dict[str, Any]]:
    """Section 3: every (window size, repetition)."""
    reps = []
    for n, count in plan.detection:
        reps += [detection_rep(pool, n, r) for r in range(count)]
        print(f"detection: {count} windows of {n:,} rows done", flush=True)
    return reps


# ------------------------------------------------------------------ summaries and report
def share(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def false_alarm_summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per check: share of splits (or windows) flagged and share of features flagged."""
    splits, verdicts = result["splits"], result["verdicts"]
    rows = [
        {
            "check": "ours: feature check",
            "cases": len(splits),
            "flagged": share([s["ours"]["dataset_drift"] for s in splits]),
            "features_flagged": share([s["ours"]["drifted_share"] for s in splits]),
        }
    ]
    for name in PRESETS:
        methods = sorted({m for s in splits for m in s[name]["methods"]})
        rows.append(
            {
                "check": f"{name} ({', '.join(methods)})",
                "cases": len(splits),
                "flagged": share([s[name]["dataset_drift"] for s in splits]),
                "features_flagged": share([s[name]["drifted_share"] for s in splits]),
            }
        )
    for key, label in (
        ("drifted", "ours: full verdict (assess_drift)"),
        ("features", "  of which feature drift"),
        ("scores", "  of which score drift"),
        ("alerts", "  of which alert volume"),
    ):
        rows.append(
            {
                "check": label,
                "cases": len(verdicts),
                "flagged": share([v[key] for v in verdicts]),
                "features_flagged": share([v["drifted_share"] for v in verdicts])
                if key == "features"
                else None,
            }
        )
    return rows


def detection_summary(reps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (window rows, d): columns tested and the share each side flagged (d = 0: the control)."""
    rows = []
    for n in sorted({r["rows"] for r in reps}):
        of_n = [r for r in reps if r["rows"] == n]
        for d in (0.0, *SHIFTS):
            cells = [(r["ours"][c], r["evidently"][c]) for r in of_n for c, s in r["shift"].items() if s == d]
            rows.append(
                {
                    "rows": n,
                    "shift": d,
                    "windows": len(of_n),
                    "columns": len(cells),
                    "ours": share([o for o, _ in cells]),
                    "evidently": share([e for _, e in cells]),
                }
            )
    return rows


def ratio(peer: float | None, ours: float | None) -> str:
    return f"{peer / ours:.1f}x" if peer is not None and ours else "n/a"


def speed_table(speed: list[dict[str, Any]]) -> list[str]:
    ours = speed[0]
    rows = ours["rows"]
    lines = [
        f"## 1. Speed: {REFERENCE_ROWS:,}-row reference vs {rows:,}-row window x {N_FEATURES} columns",
        "",
        "| method | s | peak RSS delta MiB | s / monitor s | MiB / monitor MiB | outcome "
        "| 1-min load before, after |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in speed:
        out, mib = r["outcome"], r["peak_rss_delta_mib"]
        outcome = f"{out['drifted_share']:.0%} columns drifted"
        if r["method"] == MONITOR:
            outcome += f", verdict {'drift' if out['drifted'] else 'stable'}"
        else:
            outcome += f" ({', '.join(out['methods'])})"
        lines.append(
            f"| {r['method']} | {r['seconds']:.1f} | {'n/a' if mib is None else f'{mib:,.0f}'} | "
            f"{ratio(r['seconds'], ours['seconds'])} | {ratio(mib, ours['peak_rss_delta_mib'])} | {outcome} "
            f"| {r['load_1min'][0]:.1f}, {r['load_1min'][1]:.1f} |"
        )
    parts = ", ".join(f"{k} {v:.2f} s" for k, v in ours["parts_s"].items())
    met = "met" if ours["seconds"] <= TARGET_S else "MISSED"
    lines += [
        "",
        f"Target: monitor at most {TARGET_S:.0f} s: {met}. Its parts, timed one by one after the run: "
        f"{parts}.",
    ]
    return lines


def false_alarm_table(result: dict[str, Any], summary: list[dict[str, Any]]) -> list[str]:
    effects = np.array([s["halves_effect"] for s in result["splits"]])
    lines = [
        f"## 2. False alarms: cardio normal rows, half/half splits ({result['half_rows']} rows a half)",
        "",
        "| check | splits or windows | share flagged | share of features flagged |",
        "|---|---|---|---|",
    ]
    for r in summary:
        features = "" if r["features_flagged"] is None else f"{r['features_flagged']:.3f}"
        lines.append(f"| {r['check']} | {r['cases']} | {r['flagged']:.2f} | {features} |")
    verdicts = result["verdicts"]
    detectors = len({v["detector"] for v in verdicts})
    lines += [
        "",
        f"Feature check and presets: reference half vs window half. Full verdict: {VERDICT_WINDOW_ROWS}-row "
        f"windows of one half against a detector fitted on the other ({detectors} detectors); "
        "mean alert rate "
        f"{share([v['alert_rate'] for v in verdicts]):.2%} (target {verdicts[0]['target_fpr']:.0%}). "
        f"The halves themselves differ: median normalized Wasserstein per column {np.median(effects):.3f} "
        f"std, {np.mean(effects >= POLICY.effect_floor):.0%} of columns at >= {POLICY.effect_floor} std.",
    ]
    return lines


def detection_table(summary: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"## 3. Detection: {SHIFTED_PER_SIZE} of {N_FEATURES} columns shifted by d reference std "
        f"({REFERENCE_ROWS:,}-row reference)",
        "",
        "| window rows | d (std) | windows | columns | ours flagged | Evidently default flagged |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary:
        label = "0 (unshifted)" if r["shift"] == 0 else f"{r['shift']:g}"
        lines.append(
            f"| {r['rows']:,} | {label} | {r['windows']} | {r['columns']} | {r['ours']:.2f} | "
            f"{r['evidently']:.2f} |"
        )
    lines += [
        "",
        f"Ours: KS p < {POLICY.p_value}/{N_FEATURES} and normalized Wasserstein >= {POLICY.effect_floor} on "
        f"samples of at most {POLICY.max_sample:,} rows. "
        "Evidently: normalized Wasserstein >= 0.1 on all rows.",
    ]
    return lines


def report(result: dict[str, Any]) -> str:
    env = result["environment"]
    header = (
        f"# drift benchmark{' (quick)' if result['quick'] else ''}: {env['date']}, {env['cores']} cores, "
        f"Python {env['python']}, evidently {env['evidently']}, pandas {env['pandas']}"
    )
    return "\n".join(
        [
            header,
            "",
            *speed_table(result["speed"]),
            "",
            *false_alarm_table(result["false_alarms"], result["false_alarm_summary"]),
            "",
            *detection_table(result["detection_summary"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smaller windows, fewer splits: a smoke test.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="Results folder.")
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    pool = normal_rows()
    environment = {
        "date": date.today().isoformat(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        **{name: version(name) for name in ("evidently", "pandas", "numpy", "scipy", "torch")},
    }
    result: dict[str, Any] = {"quick": args.quick, "plan": asdict(plan), "environment": environment}
    seconds: dict[str, float] = {}
    for name, measure in (
        ("speed", lambda: measure_speed(plan)),
        ("false_alarms", lambda: measure_false_alarms(pool, plan)),
        ("detection", lambda: measure_detection(pool, plan)),
    ):
        started = time.perf_counter()
        result[name] = measure()
        seconds[name] = time.perf_counter() - started
    result["section_seconds"] = seconds
    result["false_alarm_summary"] = false_alarm_summary(result["false_alarms"])
    result["detection_summary"] = detection_summary(result["detection"])
    publish(args.out, "drift", report(result), result)


if __name__ == "__main__":
    main()
