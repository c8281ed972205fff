"""The MLflow registry adapter: log a candidate as a run, register it, move aliases with compare-and-set.

Aliases: ``champion`` is what services load (``models:/NAME@champion``); ``previous`` is the champion
before it, which ``rollback`` restores. Every version carries one tag per gate (``gate.loss`` = pass/fail),
the whole gate report (``gate_report``, JSON) and ``promoted``.

MLflow keeps only where an alias points now, so every champion move (promotion, manual override,
rollback, adoption) is also a run in the experiment ``<model>-promotions``: the promotion ledger, read by
`promotions()`. The run is opened before the alias moves and closed after it, so a move that failed
half-way shows as such instead of vanishing. Each move holds the model's move lock (locks.py) from
reading the champion to moving it: two writers never both pass the compare.

Errors: an MLflow failure comes out of a method as a one-line `RegistryError` naming what it was doing;
a server-side one (5xx, no answer) as `RegistryUnavailableError`, which the jobs' I/O tasks retry.

Example:
    >>> registry = registry_of(Settings())       # connect.py: the settings' server, its lock (locks.py)
    >>> champion = registry.champion()          # None before the first promotion
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import mlflow
import numpy as np
import pandas as pd
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from flows.adapters.locks import MoveLock
from flows.errors import NoReferenceError, PromotionConflictError, RegistryError, RegistryUnavailableError
from validation.contracts import DataContract
from validation.gates import Decision

if TYPE_CHECKING:  # torch and matplotlib load when a detector or a figure is at hand, not for status
    from matplotlib.figure import Figure

    from vae import VAEDetector
    from vae.training import EpochStats

CHAMPION, PREVIOUS = "champion", "previous"
MODEL_CODE = Path(__file__).with_name("model_code.py")  # the registered model's code
CORE = Path(__file__).resolve().parents[2] / "vae"  # logged beside it: the model needs nothing else of ours
DETECTOR_ARTIFACT, CONTRACT_ARTIFACT = "detector", "contract"  # model_code.py reads the detector's key


P = ParamSpec("P")
R = TypeVar("R")
RegistryMethod = Callable[Concatenate["Registry", P], R]


def _failure(exc: MlflowException | requests.RequestException, doing: str) -> RegistryError:
    """A failed MLflow call as one line; retryable when the server, not the request, failed.

    MLflow's REST calls raise MlflowException; its artifact transfers through the server raise requests'
    errors (no answer, or an HTTP error status).
    """
    if isinstance(exc, MlflowException):
        status, text = exc.get_http_status_code(), exc.message or str(exc)
    else:
        status, text = (500 if exc.response is None else exc.response.status_code), str(exc)
    kind = RegistryUnavailableError if status >= 500 else RegistryError
    return kind(f"cannot {doing}: {text.splitlines()[0]}")


def _answers(doing: str) -> Callable[[RegistryMethod[P, R]], RegistryMethod[P, R]]:
    """A method whose MLflow errors come out as `_failure`s; `doing` may name the model as {model}."""

    def wrap(method: RegistryMethod[P, R]) -> RegistryMethod[P, R]:
        @functools.wraps(method)
        def call(self: Registry, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(self, *args, **kwargs)
            except (MlflowException, requests.RequestException) as exc:
                raise _failure(exc, doing.format(model=self.model_name)) from exc

        return call

    return wrap


@dataclass(frozen=True)
class LoadedVersion:
    """A registered version, loaded: its number, run, detector and data contract."""

    version: str
    run_id: str
    detector: VAEDetector
    contract: DataContract


@dataclass
class CandidateRecord:
    """Everything logged about one candidate."""

    detector: VAEDetector
    contract: DataContract
    decision: Decision
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    input_example: pd.DataFrame
    texts: dict[str, str] = field(default_factory=dict)  # artifact file name -> content
    figures: dict[str, Figure] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # artifact path -> local file


@dataclass(frozen=True)
class LedgerEntry:
    """One champion move: when, what kind, to which version, from which, and why."""

    at: datetime
    action: str  # promote (gates passed), override (by hand), rollback, adopt (copied from another registry)
    champion: str
    replaced: str | None
    note: str
    state: str  # done; unconfirmed: in flight, or stopped before its end was written; failed: raised part-way


@dataclass(frozen=True)
class MonitorRecord:
    """One monitor run: its verdict tags, metrics and report files."""

    run_name: str
    verdict: str  # "drift" or "stable"
    reasons: list[str]
    retrain_triggered: bool
    tags: dict[str, str]
    metrics: dict[str, float]
    files: dict[str, Path]  # artifact path -> local file


class Registry:
    """One registered model in one MLflow tracking server (or SQLite file)."""

    def __init__(
        self,
        tracking_uri: str,
        model_name: str,
        experiment: str,
        artifact_location: str | None,
        move_lock: MoveLock,
    ) -> None:
        self.tracking_uri, self.model_name = tracking_uri, model_name
        self.experiment, self.artifact_location = experiment, artifact_location
        self.move_lock = move_lock  # held around every champion move's read and write (locks.py)
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    # ------------------------------------------------------------- reads
    def alias_version(self, alias: str) -> str | None:
        """The version an alias points at, or None (also when the model is not registered yet)."""
        try:
            return str(self.client.get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise _failure(exc, f"read alias {alias!r} of {self.model_name}") from exc

    def champion(self) -> LoadedVersion | None:
        """The champion's detector and contract; None before the first promotion."""
        version = self.alias_version(CHAMPION)
        return None if version is None else self.load_version(version)

    @_answers("read which version of {model} served before a day")
    def serving_before(self, day: date, dataset: str) -> str | None:
        """The version that served going into `day`, in data time; None when none had been trained yet.

        Of the versions the ledger shows becoming champion (unless a rollback undid that, and nothing
        promoted them again), the one trained on `dataset`'s newest window ending before `day`. A backtest
        from `day` starts from it.
        """
        served: set[str] = set()
        for entry in self.promotions():
            if entry.state == "done":
                served.add(entry.champion)
                if entry.action == "rollback" and entry.replaced is not None:
                    served.discard(entry.replaced)
        trained = {}
        for version in served:
            params = self.client.get_run(_run_id(self._model_version(version))).data.params
            if params.get("dataset") == dataset and "as_of" in params:
                trained[version] = date.fromisoformat(params["as_of"])
        before = [(as_of, int(v)) for v, as_of in trained.items() if as_of < day]
        return str(max(before)[1]) if before else None

    @_answers("load a version of {model}")
    def load_version(self, version: str) -> LoadedVersion:
        """Download one registered version and load its detector and contract.

        Raises:
            RegistryError: no such version, or the registry cannot be read.
        """
        mv = self._model_version(version)
        with tempfile.TemporaryDirectory() as tmp:
            return _loaded(mv, self._download_version(mv, tmp))

    def _model_version(self, version: str) -> ModelVersion:
        try:
            return self.client.get_model_version(self.model_name, version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise RegistryError(f"{self.model_name} has no version {version}") from None
            raise _failure(exc, f"read version {version} of {self.model_name}") from exc

    @_answers("read the monitor runs of {model}")
    def trigger_times(self, experiment: str, since: datetime) -> list[datetime]:
        """When monitor runs of this model triggered a retrain, since `since` (UTC)."""
        runs = self._monitor_runs(
            experiment,
            f"tags.retrain_triggered = 'true' and attributes.start_time >= {int(since.timestamp() * 1000)}",
        )
        return [datetime.fromtimestamp(r.info.start_time / 1000, UTC) for r in runs]

    @_answers("read the monitor runs of {model}")
    def last_monitor(self, experiment: str) -> dict[str, Any] | None:
        """The newest monitor run of this model: when, which version, verdict, reasons, trigger; or None."""
        runs = self._monitor_runs(experiment, "", max_results=1)
        return _monitor_summary(runs[0]) if runs else None

    @_answers("read the monitor runs of {model}")
    def monitor_of(self, experiment: str, dataset: str, day: date) -> dict[str, Any] | None:
        """The newest monitor run of `dataset` whose window ended on `day`, or None.

        As `last_monitor`, with ``summary``: the run's report/summary.json (every check's statistics).
        """
        where = f"tags.dataset = '{dataset}' and tags.as_of = '{day.isoformat()}'"
        runs = self._monitor_runs(experiment, where, max_results=1)
        if not runs:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            summary = Path(self._download(f"runs:/{runs[0].info.run_id}/report/summary.json", tmp))
            return _monitor_summary(runs[0]) | {"summary": json.loads(summary.read_text())}

    @_answers("read a run of {model}")
    def run_link(self, run_id: str) -> str:
        """Where a person opens a run: its page on a tracking server, else the run id and the store."""
        run = self.client.get_run(run_id)
        if self.tracking_uri.startswith(("http://", "https://")):
            return f"{self.tracking_uri.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/{run_id}"
        return f"run {run_id} in {self.tracking_uri} (mlflow ui --backend-store-uri {self.tracking_uri})"

    @_answers("log a review page of {model}")
    def log_review(self, dataset: str, day: date, page: Path) -> str:
        """Log a review page as the artifact of a run in the model's review experiment; returns its run id."""
        tags = {"model_name": self.model_name, "dataset": dataset, "day": day.isoformat()}
        experiment = self._experiment_id(f"{self.model_name}-review")
        run_id = self.client.create_run(experiment, run_name=f"{dataset}-{day}", tags=tags).info.run_id
        try:
            self.client.log_artifact(run_id, str(page))
        except MlflowException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id)
        return run_id

    def _monitor_runs(self, experiment: str, where: str, max_results: int = 1000) -> list[Any]:
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            return []
        mine = f"tags.model_name = '{self.model_name}'"
        return list(
            self.client.search_runs(
                [exp.experiment_id],
                f"{mine} and {where}" if where else mine,
                max_results=max_results,
                order_by=["attributes.start_time DESC"],
            )
        )

    def _download(self, uri: str, dst: str) -> str:
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return str(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=dst))

    def _download_version(self, mv: ModelVersion, dst: str) -> Path:
        return Path(self._download(f"models:/{self.model_name}/{mv.version}", dst))

    # ------------------------------------------------------------ writes
    @_answers("log and register a candidate of {model}")
    def log_candidate(self, record: CandidateRecord, run_name: str) -> tuple[str, str]:
        """Log the candidate as a run and register it as a new version; returns (run_id, version).

        Idempotent per flow run: when an earlier attempt of the same flow run (tag ``prefect_flow_run``)
        registered a version already, that run and version are returned (their gate tags written again)
        instead of registering a second one.
        """
        earlier = self._registered_by(record.tags.get("prefect_flow_run", ""))
        if earlier is not None:
            self._tag_version(earlier[1], record.decision)
            return earlier
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        mlflow.set_experiment(experiment_id=self._experiment_id(self.experiment))  # artifact root fixed here
        with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name=run_name) as run:
            mlflow.log_params(record.params)
            mlflow.set_tags(record.tags)
            self.client.log_batch(run.info.run_id, metrics=_epoch_metrics(record.detector.history_))
            mlflow.log_metrics(record.metrics)
            for name, text in record.texts.items():
                mlflow.log_text(text, name)
            for name, fig in record.figures.items():
                mlflow.log_figure(fig, name)
            for name, path in record.files.items():
                mlflow.log_artifact(str(path), str(Path(name).parent))
            info = self._log_model(record, Path(tmp))
        version = str(info.registered_model_version)
        self._tag_version(version, record.decision)
        return run.info.run_id, version

    def _registered_by(self, flow_run: str) -> tuple[str, str] | None:
        """(run_id, version) a run of this experiment tagged with `flow_run` registered, if any."""
        if not flow_run:
            return None
        where = f"tags.prefect_flow_run = '{flow_run}'"
        for run in self.client.search_runs([self._experiment_id(self.experiment)], where):
            versions = f"name='{self.model_name}' and run_id='{run.info.run_id}'"
            found = self.client.search_model_versions(versions)
            if found:
                return run.info.run_id, str(found[0].version)
        return None

    def _log_model(self, record: CandidateRecord, tmp: Path) -> Any:
        detector_dir = record.detector.save(tmp / DETECTOR_ARTIFACT)
        contract_file = tmp / "contract.json"
        contract_file.write_text(record.contract.model_dump_json(indent=2))
        example = record.input_example.astype("float64")
        output = record.detector.predict_frame(example)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts={DETECTOR_ARTIFACT: str(detector_dir), CONTRACT_ARTIFACT: str(contract_file)},
            signature=infer_signature(example, output),
            input_example=example,
            registered_model_name=self.model_name,
            code_paths=[str(CORE)],
            pip_requirements=_requirements(),
        )

    def _tag_version(self, version: str, decision: Decision) -> None:
        for gate in decision.gates:
            self.client.set_model_version_tag(
                self.model_name, version, f"gate.{gate.name}", _verdict(gate.passed)
            )
        report = json.dumps([asdict(g) for g in decision.gates])
        self.client.set_model_version_tag(self.model_name, version, "gate_report", report)
        self.client.set_model_version_tag(self.model_name, version, "promoted", "false")

    @_answers("log a monitor run of {model}")
    def log_monitor(self, version: str, experiment: str, record: MonitorRecord) -> str:
        """Log a monitor run against a registered version; returns its run id.

        The metrics are also attached to the version's logged model, and the version is tagged
        `monitor.verdict`, `monitor.run_id` and `monitor.at`.
        """
        mv = self.client.get_model_version(self.model_name, version)
        tags = record.tags | {
            "model_name": self.model_name,
            "model_version": version,
            "verdict": record.verdict,
            "reasons": json.dumps(record.reasons)[:5000],
            "retrain_triggered": str(record.retrain_triggered).lower(),
        }
        run = self.client.create_run(self._experiment_id(experiment), run_name=record.run_name, tags=tags)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0, model_id=mv.model_id) for k, v in record.metrics.items()]
        try:
            self.client.log_batch(run_id, metrics=metrics)
            for name, path in record.files.items():
                self.client.log_artifact(run_id, str(path), str(Path(name).parent))
        except MlflowException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id)
        stamp = datetime.fromtimestamp(run.info.start_time / 1000, UTC).isoformat(timespec="seconds")
        for key, value in {"verdict": record.verdict, "run_id": run_id, "at": stamp}.items():
            self.client.set_model_version_tag(self.model_name, version, f"monitor.{key}", value)
        return run_id

    def _experiment_id(self, name: str) -> str:
        """The experiment's id, created with the configured artifact root if it does not exist yet."""
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        return self.client.create_experiment(name, artifact_location=self.artifact_location)

    @_answers("load the drift reference of a version of {model}")
    def load_reference(self, version: str) -> tuple[pd.DataFrame, np.ndarray]:
        """A version's drift reference: sampled training rows and held-out normal scores.

        Raises:
            RegistryError: the version has no reference (it was registered before monitoring existed).
        """
        run_id = _run_id(self.client.get_model_version(self.model_name, version))
        if not self.client.list_artifacts(run_id, "reference"):
            raise NoReferenceError(
                f"version {version} of {self.model_name} has no drift reference (reference/ in run "
                f"{run_id}); retrain to register a version that has one"
            )
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(self._download(f"runs:/{run_id}/reference", tmp))
            rows = pd.read_parquet(folder / "rows.parquet")
            scores = pd.read_parquet(folder / "scores.parquet")["score"].to_numpy()
        return rows, scores

    @_answers("attach an export to a version of {model}")
    def log_export(self, version: str, path: Path) -> None:
        """Attach an exported artifact to the run of a registered version (under export/)."""
        run_id = self.client.get_model_version(self.model_name, version).run_id
        self.client.log_artifact(run_id, str(path), "export")

    @_answers("move the champion of {model}")
    def promote(
        self, version: str, expected_champion: str | None, note: str, action: str = "promote"
    ) -> None:
        """Make `version` the champion, if the champion is still `expected_champion` (compare-and-set).

        The old champion becomes ``previous``; the move goes into the ledger with `action` and `note`.
        A retry after an attempt that failed part-way (champion already `version`, previous still
        `expected_champion`) completes that move instead of reporting a conflict.

        Raises:
            PromotionConflictError: the champion changed since the flow read it; nothing was moved.
        """
        with self.move_lock():
            self._compare_and_move(version, expected_champion, note, action)

    @_answers("settle the champion moves of {model}")
    def reconcile(self) -> list[LedgerEntry]:
        """Settle the moves whose process died part-way; returns them as settled (empty: nothing open).

        Taken under the move lock, so no live move is open: each open ledger run belongs to a dead
        holder. One whose champion alias landed is completed (its version tagged, ``previous`` dropped
        after a rollback) and closed done; one that did not land gets ``previous`` back as it was and is
        closed failed. Either way its note says it was reconciled. The retrain flow calls this first, and
        every move does the same before its compare-and-set.
        """
        with self.move_lock():
            return self._settle()

    def _settle(self) -> list[LedgerEntry]:
        """`reconcile`, with the move lock held."""
        champion = self.alias_version(CHAMPION)
        settled = []
        for run in self._ledger_runs("attributes.status = 'RUNNING'"):
            tags = {key.removeprefix("ledger."): value for key, value in run.data.tags.items()}
            landed = tags["champion"] == champion
            if landed:
                self._finish_move(tags["action"], tags["champion"], tags["replaced"] or None)
            else:
                self._restore_previous(tags.get("previous_before") or None)
            outcome = "the move had landed" if landed else "the champion had not moved"
            note = f"{tags['note']} [reconciled: its process stopped part-way; {outcome}]"
            self.client.set_tag(run.info.run_id, "ledger.note", note[:5000])
            self.client.set_terminated(run.info.run_id, "FINISHED" if landed else "FAILED")
            settled.append(_entry(self.client.get_run(run.info.run_id)))
        return settled

    def _restore_previous(self, version: str | None) -> None:
        """Point ``previous`` back at `version` (none: drop it), as it was before a move that did not land."""
        if self.alias_version(PREVIOUS) == version:
            return
        if version is None:
            self.client.delete_registered_model_alias(self.model_name, PREVIOUS)
        else:
            self.client.set_registered_model_alias(self.model_name, PREVIOUS, version)

    def _finish_move(self, action: str, champion: str, replaced: str | None) -> None:
        """The steps after the champion alias moved: idempotent, so a reconciliation can repeat them."""
        if action == "rollback":
            if self.alias_version(PREVIOUS) == champion:
                self.client.delete_registered_model_alias(self.model_name, PREVIOUS)
            if replaced is not None:
                self.client.set_model_version_tag(self.model_name, replaced, "rolled_back", "true")
        else:
            self.client.set_model_version_tag(self.model_name, champion, "promoted", "true")

    def _compare_and_move(self, version: str, expected_champion: str | None, note: str, action: str) -> None:
        """`promote`'s compare-and-set, with the move lock held; moves a dead process left open go first."""
        self._settle()
        current = self.alias_version(CHAMPION)
        resuming = current == version and self.alias_version(PREVIOUS) == expected_champion
        if current != expected_champion and not resuming:
            meanwhile = "while this run trained" if action == "promote" else f"before this {action}"
            raise PromotionConflictError(
                f"champion of {self.model_name} changed from {expected_champion} to {current} "
                f"{meanwhile}; version {version} was registered but not promoted"
            )
        with self._ledger(action, version, expected_champion, note):
            if expected_champion is not None:
                self.client.set_registered_model_alias(self.model_name, PREVIOUS, expected_champion)
            self.client.set_registered_model_alias(self.model_name, CHAMPION, version)
            self._finish_move(action, version, expected_champion)

    @contextmanager
    def _ledger(self, action: str, champion: str, replaced: str | None, note: str) -> Iterator[None]:
        """Record a champion move around the block that makes it: open before, closed after (or failed).

        The run also keeps where ``previous`` pointed before, which `reconcile` restores when the process
        died before the champion moved.
        """
        tags = {"action": action, "champion": champion, "replaced": replaced or "", "note": note[:5000]}
        tags["previous_before"] = self.alias_version(PREVIOUS) or ""
        run = self.client.create_run(
            self._experiment_id(self.ledger_experiment),
            run_name=f"{action} v{champion}",
            tags={f"ledger.{k}": v for k, v in tags.items()},
        )
        try:
            yield
        except BaseException:
            self.client.set_terminated(run.info.run_id, "FAILED")
            raise
        self.client.set_terminated(run.info.run_id)

    @property
    def ledger_experiment(self) -> str:
        """The experiment holding this model's promotion ledger."""
        return f"{self.model_name}-promotions"

    @_answers("read the promotion ledger of {model}")
    def promotions(self) -> list[LedgerEntry]:
        """Every champion move of this model, oldest first (empty before the first one).

        Raises:
            RegistryError: the tracking server cannot be read.
        """
        return [_entry(run) for run in self._ledger_runs()]

    def _ledger_runs(self, where: str = "") -> list[Any]:
        """The ledger's runs matching `where` (an MLflow filter), oldest first."""
        experiment = self.client.get_experiment_by_name(self.ledger_experiment)
        if experiment is None:
            return []
        return list(
            self.client.search_runs(
                [experiment.experiment_id], where, order_by=["attributes.start_time ASC"], max_results=50_000
            )
        )

    @_answers("promote a version of {model} by hand")
    def override(self, version: str, reason: str, replacing: str | None = None) -> str | None:
        """Promote `version` by hand, whatever its gates said; returns the champion it replaced.

        The move replaces the champion read here, or only `replacing` when given (the champion the
        operator saw): if another move came first, this one raises and moves nothing. The reason and time
        are tagged on the version first, so even an attempt that loses a race stays on record (status
        shows it as attempted). The replaced champion becomes ``previous`` (`rollback` undoes it).

        Raises:
            RegistryError: no reason, no such version, or it is the champion already.
            PromotionConflictError: the champion is no longer the one replaced; nothing was moved.
        """
        if not reason.strip():
            raise RegistryError("a manual promotion needs a reason (--reason), kept on the version")
        version = str(self._model_version(version).version)  # "02" -> "2"
        current = self.alias_version(CHAMPION)
        if current == version:
            raise RegistryError(f"version {version} of {self.model_name} is the champion already")
        expected = current if replacing is None else str(self._model_version(replacing).version)
        with self.move_lock():  # the tags too: concurrent overrides never write at once
            now = datetime.now(UTC).isoformat(timespec="seconds")
            self.client.set_model_version_tag(self.model_name, version, "override_reason", reason.strip())
            self.client.set_model_version_tag(self.model_name, version, "override_at", now)
            self._compare_and_move(version, expected, reason.strip(), "override")
        return expected

    @_answers("adopt a version into {model}")
    def adopt(self, source: Registry, version: str) -> str:
        """Register `source`'s version here, unchanged, and make it this registry's champion.

        A backtest starts from the version that served then. The copy keeps the detector, contract and
        input example, and is tagged ``adopted_from``. Returns its version number here.

        Raises:
            RegistryError: `source` has no such version or cannot be read.
        """
        mv = source._model_version(version)
        with tempfile.TemporaryDirectory() as tmp:
            local = source._download_version(mv, tmp)
            loaded = _loaded(mv, local)
            example = mlflow.models.Model.load(str(local)).load_input_example(str(local))
        origin = f"version {loaded.version} of {source.model_name} at {source.tracking_uri}"
        record = CandidateRecord(
            loaded.detector, loaded.contract, Decision(()), {}, {}, {"adopted_from": origin}, example
        )
        _, here = self.log_candidate(record, run_name=f"adopted v{loaded.version}")
        self.promote(here, self.alias_version(CHAMPION), f"copy of {origin}", action="adopt")
        return here

    @_answers("roll back the champion of {model}")
    def rollback(self) -> tuple[str, str]:
        """Point ``champion`` back at ``previous`` (and drop ``previous``); returns (from, to) versions.

        Raises:
            RegistryError: there is no previous champion to go back to.
        """
        with self.move_lock():
            self._settle()
            current, previous = self.alias_version(CHAMPION), self.alias_version(PREVIOUS)
            if current is None or previous is None:
                raise RegistryError(f"nothing to roll back to: {self.model_name} has no previous champion")
            with self._ledger("rollback", previous, current, f"version {current} rolled back"):
                self.client.set_registered_model_alias(self.model_name, CHAMPION, previous)
                self._finish_move("rollback", previous, current)
        return current, previous

    @_answers("list versions of {model}")
    def status(self) -> dict[str, Any]:
        """Model, champion, previous and every version with its gates and any manual override reason."""
        versions = self.client.search_model_versions(f"name='{self.model_name}'")
        rows = []
        for mv in sorted(versions, key=lambda v: int(v.version)):
            gates = {g.pop("name"): g for g in json.loads(mv.tags.get("gate_report", "[]"))}
            rows.append(
                {
                    "version": str(mv.version),
                    "promoted": mv.tags.get("promoted") == "true",
                    "override": mv.tags.get("override_reason"),
                    "gates": gates,
                }
            )
        return {
            "model": self.model_name,
            "champion": self._alias_summary(CHAMPION),
            "previous": self._alias_summary(PREVIOUS),
            "versions": rows,
        }

    def _alias_summary(self, alias: str) -> dict[str, Any] | None:
        version = self.alias_version(alias)
        if version is None:
            return None
        mv = self.client.get_model_version(self.model_name, version)
        metrics = self.client.get_run(_run_id(mv)).data.metrics
        interval = [metrics.get("candidate_fpr_low95"), metrics.get("candidate_fpr_high95")]
        return {
            "version": version,
            "run_id": mv.run_id,
            "threshold": metrics.get("candidate_threshold"),
            "fpr_interval_95": None if None in interval else interval,
        }


def _monitor_summary(run: Any) -> dict[str, Any]:
    """A monitor run as people read it: when, which version, verdict, reasons, trigger, report, run id."""
    tags = run.data.tags
    return {
        "at": datetime.fromtimestamp(run.info.start_time / 1000, UTC).isoformat(timespec="seconds"),
        "version": tags.get("model_version"),
        "dataset": tags.get("dataset"),
        "as_of": tags.get("as_of"),
        "verdict": tags.get("verdict"),
        "reasons": json.loads(tags.get("reasons", "[]")),
        "trigger": tags.get("trigger"),
        "report": tags.get("report"),
        "run_id": run.info.run_id,
    }


def _entry(run: Any) -> LedgerEntry:
    """A ledger run as an entry; a run still open is `unconfirmed`, one closed on an error `failed`."""
    tags = run.data.tags
    return LedgerEntry(
        at=datetime.fromtimestamp(run.info.start_time / 1000, UTC),
        action=tags["ledger.action"],
        champion=tags["ledger.champion"],
        replaced=tags["ledger.replaced"] or None,
        note=tags["ledger.note"],
        state={"FINISHED": "done", "RUNNING": "unconfirmed"}.get(run.info.status, "failed"),
    )


def _run_id(mv: ModelVersion) -> str:
    """The run that logged the version (every version this project registers comes from a run)."""
    if mv.run_id is None:
        raise RegistryError(f"version {mv.version} of {mv.name} was not registered from a run")
    return mv.run_id


def _loaded(mv: ModelVersion, local: Path) -> LoadedVersion:
    """The detector and contract of a downloaded version."""
    from vae import VAEDetector

    detector = VAEDetector.load(local / "artifacts" / DETECTOR_ARTIFACT)
    contract = DataContract.model_validate_json((local / "artifacts" / "contract.json").read_text())
    return LoadedVersion(str(mv.version), _run_id(mv), detector, contract)


def _epoch_metrics(history: tuple[EpochStats, ...]) -> list[Metric]:
    """The training history as metrics epoch_loss, epoch_kl, ... with the epoch as step (one batch write)."""
    now = int(time.time() * 1000)
    names = ("loss", "reconstruction", "kl", "beta", "val_loss", "active_units")
    return [Metric(f"epoch_{n}", float(getattr(s, n)), now, s.epoch) for s in history for n in names]


def _verdict(passed: bool) -> str:
    return "pass" if passed else "fail"


def _requirements() -> list[str]:
    """The registered model's requirements, pinned to the versions that logged it.

    MLflow and the core's own dependencies (this package's metadata), all from a public index; nothing of
    this project, whose core travels with the model as code.
    """
    from importlib.metadata import requires, version

    core = [
        re.split(r"[ ;<>=!~\[]", r, maxsplit=1)[0] for r in requires("vae-sentinel") or [] if "extra" not in r
    ]
    return [f"{name}=={version(name).split('+')[0]}" for name in ["mlflow", *core]]
