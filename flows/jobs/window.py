"""The retrain window, scanned one lake file at a time: checked, hashed and sampled, never all in memory.

Each raw file of the window is read once (in this process, or on the Dask cluster at `dask_address`). Its
rows the champion flagged are dropped (a join on `_source`, `_row`); the rest are validated with the
contract's column rules (every row), hashed for the window's duplicate rule and its data hash, and the
clean ones (neither quarantined nor alerted) are offered to the sample.

The sample is the `sample_rows` clean rows with the smallest seeded random keys over the whole window: a
uniform sample of the clean window, each day in proportion to its clean rows, the same whichever worker
read which file, and the whole clean window when it is smaller. A key depends on (seed, file, block of
rows), blocks of `block` consecutive rows, so a windowed model samples runs of consecutive rows.

Example:
    >>> files = lake.window_files("sensors", as_of, 30)
    >>> scanned = scan_window(lake, files, contract, plan, policy, as_of, alerts)
    >>> scanned.rows, scanned.report.passed, len(scanned.sample)
"""

from __future__ import annotations

import hashlib
import time
import zlib
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd

from flows.adapters.connect import Mapper
from flows.adapters.lake import META_COLUMNS, Lake, PartitionFile
from flows.errors import SettingsError
from validation.checks import BatchCheck, ValidationReport, check_batch, row_hashes, window_report
from validation.contracts import ContractPolicy, DataContract, column_ranges, merge_ranges

KEY = "_key"
_EXAMPLES = 5


@dataclass(frozen=True)
class SamplePlan:
    """How the clean window is sampled: how many rows, in blocks of how many consecutive rows, seeded how."""

    rows: int
    block: int
    seed: int


@dataclass(frozen=True)
class FileScan:
    """What one file contributes: its checks, its rows' hashes, quarantined rows and sample candidates."""

    file: PartitionFile
    n_read: int
    n_alerted: int
    check: BatchCheck
    hashes: np.ndarray  # one per validated row, in file order
    quarantined: pd.DataFrame  # the failing rows with `reason`
    candidates: pd.DataFrame  # its clean rows with the smallest keys (at most plan.rows), with KEY
    digest: bytes  # sha256 of its clean rows: positions and hashes
    seconds: dict[str, float]  # lake (reading), validation, sampling


@dataclass(frozen=True)
class ScannedWindow:
    """The window's verdict, its quarantined rows, the sample to train on, where rows went, its data hash."""

    report: ValidationReport
    quarantined: pd.DataFrame
    sample: pd.DataFrame
    rows: dict[str, int]  # read, alerted_dropped, validated, quarantined, sampled
    data_hash: str
    seconds: dict[str, float]  # work per step, summed over files (and over workers on a cluster)


def scan_file(
    lake: Lake, file: PartitionFile, contract: DataContract, alerted: np.ndarray, plan: SamplePlan
) -> FileScan:
    """Read, check, hash and offer to the sample one raw file (pure but for the read; runs on any worker)."""
    clock = [time.perf_counter()]

    def lap() -> float:
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    frame = lake.read_file(file)
    read = lap()
    flagged = np.isin(frame["_row"].to_numpy(), alerted)
    kept = frame.loc[~flagged].reset_index(drop=True) if flagged.any() else frame
    check = check_batch(kept, contract, META_COLUMNS)
    hashes = row_hashes(kept, contract.names)
    bad = np.zeros(len(kept), dtype=bool)
    bad[check.reasons.index.to_numpy(dtype=np.int64)] = True
    quarantined = kept.iloc[check.reasons.index].assign(reason=check.reasons.to_numpy())
    validation = lap()
    clean = np.flatnonzero(~bad)
    candidates = _offer(kept, clean, file.source, plan)
    digest = hashlib.sha256(kept["_row"].to_numpy()[clean].tobytes() + hashes[~bad].tobytes()).digest()
    seconds = {"lake": read, "validation": validation, "sampling": lap()}
    n_alerted = int(flagged.sum())
    return FileScan(file, len(frame), n_alerted, check, hashes, quarantined, candidates, digest, seconds)


def scan_window(
    lake: Lake,
    files: list[PartitionFile],
    contract: DataContract,
    plan: SamplePlan,
    policy: ContractPolicy,
    as_of: date,
    alerted: pd.DataFrame,
    mapper: Mapper = map,
) -> ScannedWindow:
    """Scan every file (through `mapper`: the builtin map, or a Dask cluster's) and decide the window.

    Args:
        lake: where the files are.
        files: the window's raw files.
        contract: the columns, dtypes and ranges rows must have.
        plan: the sample's size, block and seed.
        policy: the window rules (rows, freshness, duplicates, quarantined share).
        as_of: the window's last day, for freshness.
        alerted: (_source, _row) of rows the champion flagged, left out before anything else.
        mapper: runs `scan_file` over the files; results may come in any order.
    """
    flagged = {str(s): g["_row"].to_numpy() for s, g in alerted.groupby("_source", observed=True)}

    def scan(file: PartitionFile) -> FileScan:
        return scan_file(lake, file, contract, flagged.get(file.source, np.empty(0, np.int64)), plan)

    pool, scans = SamplePool(plan.rows), []
    for scanned in mapper(scan, files):
        pool.offer(scanned.candidates)
        scans.append(replace(scanned, candidates=pd.DataFrame()))  # the pool holds what is left of them
    scans.sort(key=lambda s: (s.file.day, s.file.key))
    started = time.perf_counter()
    hashes = np.concatenate([s.hashes for s in scans])
    scans = [replace(s, hashes=np.empty(0, np.uint64)) for s in scans]  # one copy of the hashes, not two
    ages = np.array([(as_of - s.file.day).days for s in scans])
    quarantined = pd.concat([s.quarantined for s in scans], ignore_index=True)
    examples = quarantined.head(_EXAMPLES)[[*[n for n in contract.names if n in quarantined], "reason"]]
    report = window_report([s.check for s in scans], hashes, ages, policy, examples)
    deciding = time.perf_counter() - started
    sample = pool.sample()
    digest = hashlib.sha256(b"".join(s.file.source.encode() + s.digest for s in scans)).hexdigest()
    rows = {
        "read": sum(s.n_read for s in scans),
        "alerted_dropped": sum(s.n_alerted for s in scans),
        "validated": sum(s.check.n_rows for s in scans),
        "quarantined": len(quarantined),
        "sampled": len(sample),
    }
    seconds = {step: sum(s.seconds[step] for s in scans) for step in scans[0].seconds}
    seconds["validation"] += deciding
    return ScannedWindow(report, quarantined, sample, rows, digest, seconds)


def derive_contract(
    lake: Lake, files: list[PartitionFile], tolerance: float, mapper: Mapper = map
) -> DataContract:
    """A contract learnt from every row of the window (its first file's columns), read file by file."""

    def ranges(file: PartitionFile) -> pd.DataFrame:
        frame = lake.read_file(file)
        return column_ranges(frame[[c for c in frame.columns if c not in META_COLUMNS]])

    return DataContract.from_ranges(merge_ranges(list(mapper(ranges, files))), tolerance)


def memory_needed(files: list[PartitionFile], n_features: int, plan: SamplePlan) -> int:
    """Bytes a scan and the training after it plan for, an estimate from the files' sizes.

    The largest file decoded and copied a few times, a hash and an age per row of the window (rows
    estimated at 8 bytes a value), and the sample a few times over (candidates, the sample, its splits).
    """
    rows = sum(f.size for f in files) / (8 * n_features)
    return int(6 * max(f.size for f in files) + 12 * rows + 4 * plan.rows * 8 * (n_features + 4))


def require_memory(files: list[PartitionFile], n_features: int, plan: SamplePlan, limit: float) -> None:
    """Stop before reading when the scan would need more than `limit` bytes, naming the setting to change.

    Raises:
        SettingsError: the sample, or the largest file, does not fit.
    """
    need = memory_needed(files, n_features, plan)
    if need <= limit:
        return
    largest = max(files, key=lambda f: f.size)
    if memory_needed([largest], n_features, replace(plan, rows=1)) > limit:
        raise SettingsError(
            f"file {largest.key} ({largest.size / 1e9:.1f} GB) does not fit in the {limit / 1e9:.1f} GB a "
            "retrain may use (retrain.memory_limit_gb): split it into smaller files"
        )
    raise SettingsError(
        f"a window of {len(files)} files ({sum(f.size for f in files) / 1e9:.1f} GB) sampled to "
        f"{plan.rows:,} rows needs about {need / 1e9:.1f} GB, more than the {limit / 1e9:.1f} GB a retrain "
        "may use (retrain.memory_limit_gb): lower retrain.sample_rows"
    )


def sample_window(
    lake: Lake, files: list[PartitionFile], plan: SamplePlan, mapper: Mapper = map
) -> tuple[pd.DataFrame, int]:
    """A sample of every row of the files as they are (no checks), and how many rows they hold."""

    def offered(file: PartitionFile) -> tuple[pd.DataFrame, int]:
        frame = lake.read_file(file)
        return _offer(frame, np.arange(len(frame)), file.source, plan), len(frame)

    pool, rows = SamplePool(plan.rows), 0
    for candidates, n in mapper(offered, files):
        pool.offer(candidates)
        rows += n
    return pool.sample(), rows


class SamplePool:
    """Candidates offered file by file, trimmed to those that can still make the k smallest keys."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.parts: list[pd.DataFrame] = []

    def offer(self, candidates: pd.DataFrame) -> None:
        """Add one file's candidates (with KEY)."""
        self.parts.append(candidates)
        keys = np.concatenate([p[KEY].to_numpy() for p in self.parts])
        if len(keys) > self.k:
            bound = np.partition(keys, self.k - 1)[self.k - 1]
            self.parts = [p if p[KEY].max() <= bound else p.loc[p[KEY] <= bound] for p in self.parts]

    def sample(self) -> pd.DataFrame:
        """The k rows with the smallest keys (ties broken by file and row), in window order, without KEY."""
        candidates = pd.concat(self.parts, ignore_index=True).astype({"_source": str})
        chosen = candidates.sort_values([KEY, "_source", "_row"]).head(self.k)
        return chosen.sort_values(["_date", "_source", "_row"]).drop(columns=KEY).reset_index(drop=True)


def _offer(frame: pd.DataFrame, positions: np.ndarray, source: str, plan: SamplePlan) -> pd.DataFrame:
    """Rows at `positions` of one file that can make the sample: the plan.rows smallest keys, ties kept.

    A row's key is drawn per block of `plan.block` consecutive rows, seeded by (plan.seed, its file).
    """
    rows = frame["_row"].to_numpy()[positions]
    blocks = np.random.default_rng([plan.seed, zlib.crc32(source.encode())]).random(
        int(rows.max(initial=0)) // plan.block + 1
    )
    keys = blocks[rows // plan.block]
    if len(keys) > plan.rows:
        chosen = np.flatnonzero(keys <= np.partition(keys, plan.rows - 1)[plan.rows - 1])
        positions, keys = positions[chosen], keys[chosen]
    return frame.iloc[positions].assign(**{KEY: keys})
