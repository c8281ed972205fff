"""The one typed settings object: defaults < `sentinel.toml` < `SENTINEL_*` environment < arguments.

Nested sections use `__` in environment names, e.g. `SENTINEL_DETECTOR__TARGET_FPR=0.005`.

Example:
    >>> settings = Settings()
    >>> settings.home, settings.detector.target_fpr
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from vae.config import DetectorConfig

CONFIG_FILE = "sentinel.toml"


class DemoSettings(BaseModel):
    """What `sentinel demo` runs on."""

    datasets: tuple[str, ...] = Field(
        ("cardio", "thyroid", "mammography", "shuttle"),
        description="Shipped tabular sets (data/tabular/*_NAME.npz).",
    )
    seed: int = Field(0, description="Seed of the train/test split and the detectors.")


class Settings(BaseSettings):
    """Configuration of every part of VAE Sentinel."""

    model_config = SettingsConfigDict(
        env_prefix="SENTINEL_", env_nested_delimiter="__", toml_file=CONFIG_FILE, extra="forbid"
    )

    home: Path = Field(Path(".sentinel"), description="State folder: models, reports, local stores.")
    data_dir: Path = Field(Path("data"), description="Folder of the real datasets shipped with the repo.")
    detector: DetectorConfig = Field(DetectorConfig(), description="Detector options (model, train, score).")
    demo: DemoSettings = DemoSettings()

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
