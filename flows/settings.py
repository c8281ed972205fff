"""The one typed settings object: defaults < `sentinel.toml` < `SENTINEL_*` environment < arguments.

Nested sections use `__` in environment names, e.g. `SENTINEL_DETECTOR__TARGET_FPR=0.005`.

Example:
    >>> settings = Settings()
    >>> settings.home, settings.detector.target_fpr
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import pydantic_settings
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from flows.errors import SettingsError
from vae.config import DetectorConfig
from validation.contracts import ContractPolicy
from validation.drift import DriftPolicy
from validation.gates import GateBounds
from validation.trigger import TriggerPolicy

CONFIG_FILE = "sentinel.toml"
REPO_DATA = Path(__file__).resolve().parents[1] / "data"


class _Section(BaseModel):
    """A settings section: an unknown option in it (a typo) is an error, as at the top level."""

    model_config = ConfigDict(extra="forbid")


class EvaluateSettings(_Section):
    """What `sentinel evaluate` runs on."""

    datasets: tuple[str, ...] = Field(
        ("cardio", "thyroid", "mammography", "shuttle"),
        description="Shipped tabular sets (data/tabular/*_NAME.npz).",
    )
    series: tuple[str, ...] = Field(
        ("*/*.csv",),
        description="Shipped SKAB experiments, as patterns under data/timeseries/skab (e.g. 'valve1/*.csv').",
    )
    window: int = Field(16, ge=2, description="Window length of the detectors fitted on the series.")
    seed: int = Field(0, description="Seed of the train/test split and the detectors.")


class DemoSettings(_Section):
    """What `sentinel demo` seeds its lake with."""

    dataset: str = Field("mammography", description="Shipped labelled set cut into day partitions.")
    days: int = Field(10, ge=10, description="Day partitions to write, ending today.")
    seed: int = Field(0, description="Seed of the shuffle and of the failing sensor's noise.")


class LakeSettings(_Section):
    """Where the day-partitioned datasets live."""

    root: str | None = Field(None, description="A folder or s3://bucket/prefix; default: HOME/lake.")
    endpoint_url: str | None = Field(None, description="S3 endpoint for MinIO or other S3-compatible stores.")
    s3_attempts: int = Field(
        5,
        ge=1,
        description="Tries of each S3 request; 503 SlowDown, 500, resets and timeouts are retried "
        "with exponential backoff (boto3's standard retry mode).",
    )
    s3_timeout_seconds: float = Field(
        20.0, gt=0, description="Connect and read timeout of each S3 request (a stalled answer is retried)."
    )


class RegistrySettings(_Section):
    """Where runs and registered versions go."""

    tracking_uri: str | None = Field(
        None, description="MLflow tracking/registry URI; default SQLite in HOME."
    )
    artifact_location: str | None = Field(None, description="Artifact root of new experiments; default HOME.")
    model_name: str = Field("vae-sentinel", description="Registered model name (models:/NAME@champion).")
    experiment: str = Field("vae-sentinel-retrain", description="MLflow experiment of the retraining runs.")
    http_retries: int = Field(
        3,
        ge=0,
        description="Retries of one MLflow HTTP request (backoff 1, 2, 4 s...); MLflow's own default of 7 "
        "keeps a command waiting minutes on an unreachable server. Flows retry failed tasks on top.",
    )


class RetrainSettings(_Section):
    """What `sentinel retrain` trains on and how it decides."""

    dataset: str = Field("mammography", description="Dataset folder in the lake.")
    window_days: int = Field(7, ge=2, description="Days of partitions in a training window.")
    holdout_days: int = Field(1, ge=1, description="Newest days held out to calibrate and to compare models.")
    shadow_key: str | None = Field(
        None, description="Known anomalies, a parquet file relative to the dataset (e.g. _shadow/a.parquet)."
    )
    contract_file: Path | None = Field(
        None, description="A hand-edited contract that overrides the champion's."
    )
    reference_rows: int = Field(
        20_000, ge=100, description="Training rows kept with each version as the drift reference."
    )
    sample_rows: int = Field(
        200_000,
        ge=1_000,
        description="Clean rows of the window a candidate trains, calibrates and is compared on: a seeded "
        "uniform sample (all of them when the window is smaller); memory grows with it, not the window.",
    )
    memory_limit_gb: float | None = Field(
        None,
        gt=0,
        description="Memory a retrain may plan for; None: 80% of what is available when it starts. A "
        "window that would need more stops before reading.",
    )
    contract: ContractPolicy = ContractPolicy()
    gates: GateBounds = GateBounds()


class MonitorSettings(_Section):
    """What `sentinel monitor` checks and when it may trigger a retrain."""

    window_days: int = Field(1, ge=1, description="Newest days of partitions compared with the reference.")
    experiment: str = Field("vae-sentinel-monitor", description="MLflow experiment of the monitor runs.")
    drift: DriftPolicy = DriftPolicy()
    trigger: TriggerPolicy = TriggerPolicy()


class ReviewSettings(_Section):
    """`sentinel report` and the latent maps logged with candidates."""

    history_days: int = Field(14, ge=1, description="Days of alert volume and score quantiles on the page.")
    examples: int = Field(3, ge=0, description="Flagged rows shown beside their reconstructions.")
    candidates: int = Field(3, ge=0, description="Most recent candidates compared with the champion.")
    map_method: Literal["pca", "tsne"] = Field(
        "pca",
        description="Latent map projection: PCA (linear, milliseconds) or t-SNE (neighbourhoods, ~10 s).",
    )
    map_points: int = Field(1000, ge=10, description="Most rows per set on a latent map (sampled).")
    evidently_workspace: bool = Field(
        True, description="Add each monitor run's snapshot to the Evidently workspace in HOME/evidently."
    )


class ServeSettings(_Section):
    """The scoring service."""

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, description="Port to listen on.")
    token: SecretStr | None = Field(None, description="Bearer token required on /score and /metadata.")
    insecure: bool = Field(False, description="Allow a non-loopback host without a token (else refused).")
    max_rows: int = Field(100_000, ge=1, description="Most rows in one /score request (413 above).")
    max_body_bytes: int = Field(64 * 2**20, ge=1, description="Largest request body (413 above).")
    poll_seconds: float = Field(10.0, gt=0, description="How often the champion alias is checked.")
    torch_threads: int = Field(
        1, ge=1, description="Torch threads per server process; scale out with more processes instead."
    )
    stream_beta: float = Field(
        0.9, ge=0, lt=1, description="EMA weight of the past in /stream's smoothed scores (0: no smoothing)."
    )
    stream_gamma: float | None = Field(
        None,
        gt=0,
        description="/stream flags against adaptive conformal thresholds with this step size, which hold "
        "the alert rate at the target when the stream moves; a sustained anomaly is alerted for about "
        "target / gamma windows (1,000 at a 1% target and 1e-5); unset: a fixed threshold.",
    )
    max_streams: int = Field(
        10_000, ge=1, description="Streams whose state /stream keeps; the least recently used go first."
    )
    streams_file: Path | None = Field(
        None,
        description="Where /stream's states are kept across a graceful restart; default: "
        "HOME/serve/streams.sqlite (one service per file).",
    )


class StackSettings(_Section):
    """`sentinel stack`: the production topology as processes on this machine (loopback only)."""

    host: str = Field("127.0.0.1", description="Interface every part listens on.")
    postgres_port: int = Field(5433, description="PostgreSQL, holding the MLflow and Prefect databases.")
    s3_port: int = Field(9100, description="The S3-compatible server (moto) for the lake and the artifacts.")
    mlflow_port: int = Field(5000, description="MLflow tracking server (proxied artifacts on S3).")
    prefect_port: int = Field(4200, description="Prefect server with its scheduler.")
    worker_ports: tuple[int, int] = Field(
        (8091, 8092), description="Health endpoints of the retrain and the monitor worker."
    )
    lake_bucket: str = Field("sentinel-lake", description="Bucket of the lake (lake.root is s3://BUCKET).")
    artifact_bucket: str = Field("sentinel-artifacts", description="Bucket of MLflow's artifacts.")
    retrain_pool: str = Field("sentinel-retrain", description="Process work pool that runs retrains.")
    monitor_pool: str = Field("sentinel-process", description="Process work pool that runs monitors.")
    dask_workers: int = Field(
        0, ge=0, description="Dask workers for batch scoring (0: no Dask scheduler; `score` runs in threads)."
    )
    dask_ports: tuple[int, int, int] = Field(
        (8786, 8787, 8788),
        description="Dask scheduler, its HTTP (health) port, and the first worker's port (one per worker).",
    )
    scheduler_loop_seconds: float = Field(
        60.0, gt=0, description="How often Prefect's scheduler creates runs from schedules."
    )
    slot_wait_seconds: float = Field(
        30.0, gt=0, description="Prefect's wait between tries of a run queued for a deployment's slot."
    )
    start_seconds: float = Field(180.0, gt=0, description="How long each part may take to answer.")


class Settings(BaseSettings):
    """Configuration of every part of VAE Sentinel."""

    model_config = SettingsConfigDict(
        env_prefix="SENTINEL_", env_nested_delimiter="__", toml_file=CONFIG_FILE, extra="forbid"
    )

    home: Path = Field(Path(".sentinel"), description="State folder: models, reports, local stores.")
    data_dir: Path = Field(REPO_DATA, description="Folder of the real datasets shipped with the repo.")
    detector: DetectorConfig = Field(DetectorConfig(), description="Detector options (model, train, score).")
    evaluate: EvaluateSettings = EvaluateSettings()
    demo: DemoSettings = DemoSettings()
    lake: LakeSettings = LakeSettings()
    registry: RegistrySettings = RegistrySettings()
    retrain: RetrainSettings = RetrainSettings()
    monitor: MonitorSettings = MonitorSettings()
    review: ReviewSettings = ReviewSettings()
    serve: ServeSettings = ServeSettings()
    stack: StackSettings = StackSettings()
    score_chunk_rows: int = Field(
        50_000, ge=1, description="Rows batch scoring puts through the model at once (files run in parallel)."
    )
    torch_threads: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 1) // 2),
        ge=1,
        description="Torch threads of a process running flows (retrain, score, monitor, backtest); default: "
        "half the cores, so two runs or a neighbour on one host do not spin against each other.",
    )
    dask_address: str | None = Field(
        None,
        description="Dask scheduler (tcp://host:8786) that scores batch chunks on a cluster (extra [dask]); "
        "default: local threads.",
    )
    prefect_api_url: str | None = Field(
        None, description="Prefect server API; default: a temporary local one."
    )
    flow_heartbeat_seconds: int = Field(
        60,
        ge=30,
        description="Seconds between a flow run's heartbeats (workers: PREFECT_FLOWS_HEARTBEAT_FREQUENCY); "
        "`sentinel deploy` marks a run Crashed once it has been silent for 2.5 of them.",
    )

    def lake_root(self) -> str:
        """The lake's root: the configured one, else HOME/lake."""
        return self.lake.root or str((self.home / "lake").resolve())

    def tracking_uri(self) -> str:
        """The MLflow URI: the configured one, else sqlite:///HOME/mlflow.db."""
        return self.registry.tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    def streams_file(self) -> Path:
        """Where the service keeps its stream states across a restart: the configured file, else HOME's."""
        return self.serve.streams_file or self.home / "serve" / "streams.sqlite"

    def artifact_location(self) -> str | None:
        """Artifact root for new experiments: the configured one, else HOME/mlartifacts.

        With a tracking server and no configured root it is None: the server's own artifact store.
        """
        if self.registry.artifact_location or self.registry.tracking_uri:
            return self.registry.artifact_location
        return (self.home / "mlartifacts").resolve().as_uri()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit arguments win over the environment, which wins over the TOML file."""
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)


def load_settings() -> Settings:
    """`Settings()`, with a one-line `SettingsError` naming the bad option and where it was set.

    Raises:
        SettingsError: sentinel.toml is not valid TOML, or an option is unknown or has an invalid value.
    """
    try:
        return Settings()
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{CONFIG_FILE} is not valid TOML: {exc}") from None
    except pydantic_settings.SettingsError as exc:  # e.g. a SENTINEL_* variable with malformed JSON
        raise SettingsError(f"malformed environment variable: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        where = origins().get(name, "settings")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        if first["type"] == "extra_forbidden":
            raise SettingsError(f"unknown setting {name} (from {where}){more}") from None
        raise SettingsError(f"invalid setting {name} (from {where}): {first['msg']}{more}") from None


def origins() -> dict[str, str]:
    """Where each option set outside the defaults comes from ("environment" or the TOML file), by dotted name.

    Read through the same pydantic-settings sources `Settings` uses, so the answer cannot disagree with it.
    """
    from_file = dict.fromkeys(_flat(TomlConfigSettingsSource(Settings)()), CONFIG_FILE)
    from_env = dict.fromkeys(_flat(EnvSettingsSource(Settings)()), "environment")
    return from_file | from_env  # the environment wins


def described(settings: Settings) -> list[tuple[str, Any, str]]:
    """Every option as (dotted name, value with secrets masked, where it came from), in declaration order."""
    where = origins()
    return [
        (name, value, where.get(name, "default"))
        for name, value in _flat(settings.model_dump(mode="json")).items()
    ]


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out
