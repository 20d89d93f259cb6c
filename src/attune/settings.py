"""One typed settings object.

Precedence, lowest first: the defaults below < ``attune.toml`` in the data directory
< ``ATTUNE_*`` environment variables (nested fields with ``__``, for example
``ATTUNE_INGEST__MAX_BATCH_EVENTS=500``) < explicit keyword arguments (CLI options).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_NAME = "attune.toml"


class IngestSettings(BaseModel):
    """Limits and rules applied to every incoming event."""

    max_batch_events: int = Field(1000, description="Most events accepted in one request.")
    max_body_bytes: int = Field(1024 * 1024, description="Largest request body accepted, in bytes.")
    max_id_length: int = Field(256, description="Longest user, anonymous, item or event id.")
    max_string_length: int = Field(8192, description="Longest string value inside context or properties.")
    max_properties_bytes: int = Field(32 * 1024, description="Largest serialized properties object.")
    min_timestamp: float = Field(
        631152000.0, description="Earliest event time accepted (epoch seconds; default 1990-01-01)."
    )
    max_future_seconds: float = Field(
        86400.0, description="How far past the server clock an event time may lie (clock skew allowance)."
    )
    session_timeout_seconds: float = Field(
        1800.0, description="Inactivity after which a new session starts when the client sends none."
    )
    workers: int | None = Field(
        None,
        ge=0,
        description=(
            "Processes that validate and append event batches beside the serving process "
            "(`attune serve`); unset: one per CPU core (at most 4; none on one core); "
            "0: all in the serving process."
        ),
    )
    worker_min_body_bytes: int = Field(
        # 0: single events go to the workers too. Handled in the serving process they saved
        # the hand-over but competed with its event loop and consumers for one interpreter:
        # at 200 single events/s p99 was 35-90 ms there, 15-21 ms in the workers.
        0,
        ge=0,
        description="Bodies at least this large go to an ingest worker; smaller ones are handled in the serving process.",
    )


class ProfileSettings(BaseModel):
    """How unified profiles are kept."""

    recent_interactions: int = Field(50, description="Interactions listed in a profile answer.")
    source_priority: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "Trait conflict rule: a higher number wins over a lower one regardless of time "
            "(for example {crm = 10, web = 0}); equal priorities fall back to newest-timestamp-wins."
        ),
    )


class RecommendSettings(BaseModel):
    """Serving defaults for recommendations."""

    event_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "view": 1.0,
            "page_view": 0.5,
            "click": 2.0,
            "rating": 3.0,
            "add_to_cart": 4.0,
            "purchase": 8.0,
        },
        description="How much each event type counts towards an item's popularity.",
    )
    popularity_half_life_days: float = Field(14.0, description="Half-life of the popularity time decay.")
    cache_seconds: float = Field(10.0, description="How long a computed popularity ranking is reused.")


class TrainingSettings(BaseModel):
    """Model training, automatic model choice and scheduled retraining."""

    retrain_every_hours: float | None = Field(
        None, gt=0, description="Retrain in the background this often while serving (off when unset)."
    )
    retrain_model: str = Field("auto", description="Model a scheduled retraining fits (auto tunes and picks).")
    retrain_promote: bool = Field(True, description="Promote a scheduled retraining's version at once.")
    tune_trials: int = Field(20, ge=1, description="Optuna trials per candidate model in `train --model auto`.")
    tune_timeout_seconds: float = Field(
        900.0,
        gt=0,
        description="Time limit of the single-model tuning in `auto`, shared among them (a safety net: the "
        "trial count should end each search, so that the choice is repeatable).",
    )
    max_validation_users: int | None = Field(
        5000, ge=1, description="Users sampled to score each tuning trial (all when unset)."
    )


class LakeSettings(BaseModel):
    """The Parquet lake written by the lake consumer."""

    flush_events: int = Field(50_000, description="Buffered events that trigger a Parquet write.")
    flush_seconds: float = Field(5.0, description="Longest time an event waits in the buffer.")


class FeatureSettings(BaseModel):
    """Per-person features: sliding windows, activity measures and the engagement score."""

    windows: list[str | float] = Field(
        default_factory=lambda: ["1h", "24h", "7d", "30d"],
        description="Sliding windows shown per person (durations like 90s, 15m, 1h, 7d, or seconds); "
        "the longest also bounds the windows rules may use.",
    )
    activity_window: str | float = Field(
        "30d", description="Window of frequency, active_days, monetary, dwell_seconds, share_rate, engagement_score."
    )
    engagement_weights: dict[str, float] = Field(
        default_factory=lambda: {"dwell_seconds": 0.3, "share_rate": 0.2, "active_days": 0.3, "frequency": 0.2},
        description="Weight of each normalized feature in engagement_score (weights are divided by their sum).",
    )
    engagement_caps: dict[str, float] = Field(
        default_factory=lambda: {"dwell_seconds": 1800.0, "share_rate": 0.25, "active_days": 10.0, "frequency": 50.0},
        description="Value at which a feature counts fully: normalized = min(value / cap, 1).",
    )
    view_types: list[str] = Field(
        default_factory=lambda: ["view", "page_view"], description="Event types counted as views (share_rate)."
    )
    share_types: list[str] = Field(default_factory=lambda: ["share"], description="Event types counted as shares.")
    purchase_types: list[str] = Field(
        default_factory=lambda: ["purchase"], description="Event types whose value adds to monetary."
    )
    category_refresh_seconds: float = Field(
        5.0, ge=0, description="How often item categories are re-read from the catalog (changed items only)."
    )
    write_every_subjects: int = Field(
        # Bounds each write transaction (~12 ms per 1,000 people on SQLite), during which
        # appends wait at the write gate: 20,000 held them for a quarter of a second.
        5_000, ge=1, description="Changed people that trigger writing feature state before the periodic flush."
    )
    flush_seconds: float = Field(
        # Often, so each flush is small: at 200 events/s a 5-second flush serialized and wrote
        # ~1,000 people at once (24 ms of CPU, appends waiting at the write gate meanwhile),
        # and single events caught in it took 60-130 ms instead of 5.
        1.0, gt=0, description="How often changed people's features are written (seconds)."
    )


class SecuritySettings(BaseModel):
    """Access control defaults."""

    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to call the API.")


class RateLimit(BaseModel):
    """A token bucket: ``rate`` requests per second on average, bursts of up to ``burst``."""

    rate: float = Field(gt=0, description="Sustained requests per second.")
    burst: float = Field(ge=1, description="Largest burst (bucket size).")


class PrivacySettings(BaseModel):
    """Consent, pseudonymization, minimization, encryption at rest, retention and rate limits."""

    pseudonymize: bool = Field(
        False,
        description=(
            "Store user and anonymous ids as keyed HMAC-SHA256 pseudonyms. Off by default for "
            "existing stores; `attune init` writes `pseudonymize = true` into new installations."
        ),
    )
    pseudonym_keys: dict[str, str] = Field(
        default_factory=dict,
        description="HMAC keys by key id (base64, at least 32 bytes); default: the data directory's keyring.",
    )
    pseudonym_key_id: str | None = Field(None, description="Key id new pseudonyms use (default: the newest).")
    master_key: str | None = Field(
        None, description="Master key (base64 of 32 bytes) wrapping per-person data keys; default: the keyring file."
    )
    master_key_id: str = Field("env", description="Id recorded with data keys wrapped by `master_key`.")
    purposes: list[str] = Field(
        default_factory=lambda: ["analytics", "personalization", "marketing"],
        description="Purposes people consent to.",
    )
    consent_mode: str = Field(
        "opt-out", pattern="^(opt-in|opt-out)$", description="Default without a decision: opt-in denies, opt-out grants."
    )
    purpose_modes: dict[str, str] = Field(
        default_factory=lambda: {"marketing": "opt-in"},
        description="Per-purpose override of consent_mode (marketing is opt-in by default).",
    )
    consent_cache_seconds: float = Field(
        1.0, ge=0, description="How long another process's consent change may take to be seen here."
    )
    event_purposes: dict[str, list[str]] = Field(
        default_factory=lambda: {"*": ["analytics"], "identify": ["personalization"], "consent": []},
        description='Purposes an event type serves ("*": every type not listed).',
    )
    purpose_actions: dict[str, str] = Field(
        default_factory=lambda: {"analytics": "strip", "personalization": "strip", "marketing": "drop"},
        description="What happens to an event whose purpose lacks consent: strip (personal fields) or drop.",
    )
    pii_action: str = Field("remove", pattern="^(remove|hash)$", description="E-mails, phones, cards in text.")
    property_allowlist: dict[str, list[str]] = Field(
        default_factory=dict, description="Event type -> the only properties stored (types not listed: all)."
    )
    retention_days: dict[str, float] = Field(
        default_factory=dict,
        description="Days kept per data class: raw_events, inactive_profiles, audit (unset: forever).",
    )
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=dict,
        description="Token buckets by scope (ingest, read, admin) or key id; a key id wins over its scopes.",
    )


class SegmentSettings(BaseModel):
    """Segment memberships: webhook delivery of entries and exits."""

    webhook_urls: list[str] = Field(
        default_factory=list, description="URLs that receive a POST for every segment entry and exit."
    )
    webhook_timeout_seconds: float = Field(5.0, gt=0, description="Time limit of one webhook delivery attempt.")
    webhook_max_attempts: int = Field(
        8, ge=1, description="Attempts per delivery before it is marked failed (kept in the outbox)."
    )
    webhook_backoff_seconds: float = Field(
        1.0, gt=0, description="Wait before the first retry; doubled after every failed attempt."
    )
    webhook_backoff_max_seconds: float = Field(600.0, gt=0, description="Longest wait between two attempts.")
    webhook_secret: str | None = Field(
        None, description="When set, each delivery carries X-Attune-Signature: sha256=HMAC(secret, body)."
    )
    webhook_poll_seconds: float = Field(1.0, gt=0, description="How often the outbox is checked for due deliveries.")
    bulk_threshold: int = Field(
        10_000,
        ge=0,
        description="A re-evaluation changing more memberships of one segment than this stores the segment as "
        "one compressed snapshot and records those changes as hourly counts, not one history row per person.",
    )
    learn_every_hours: float | None = Field(
        None, gt=0, description="Re-learn the clustered segments this often in `serve`/`worker` (off by default)."
    )
    learn_method: str = Field("gmm", description="Clustering of scheduled learning: kmeans, dbscan or gmm.")
    refresh_seconds: float = Field(
        1.0,
        gt=0,
        description="A process that does not run the consumers (API beside a worker) reloads memberships "
        "changed by others this often.",
    )


class ServingSettings(BaseModel):
    """Serving recommendations: cold start, fold-in, segment boosts and the in-memory caches."""

    fold_in_min_items: int = Field(
        3, ge=1, description="A new person's events become a folded-in user vector from this many known items."
    )
    demographic_traits: list[str] = Field(
        default_factory=lambda: ["age", "gender", "country"],
        description="Traits that define 'people like you' for cold-start popularity (age in ten-year bands).",
    )
    min_group_size: int = Field(20, ge=1, description="Smallest group (segment or traits) whose popularity is used.")
    segment_boosts: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Per segment, per category: score factor for members, weighted by membership confidence.",
    )
    segment_filters: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per segment: categories never recommended to its members (e.g. {kids = [\"horror\"]}).",
    )
    user_cache_size: int = Field(200_000, ge=1, description="People kept in serving's memory.")
    user_cache_seconds: float = Field(600.0, gt=0, description="Longest time a cached person is trusted.")
    catalog_poll_seconds: float = Field(10.0, gt=0, description="How often another process's catalog writes are looked for.")
    cache_bodies: bool = Field(True, description="Keep each person's rendered answers until something they depend on changes.")


class Settings(BaseSettings):
    """Everything configurable about one Attune installation."""

    model_config = SettingsConfigDict(
        env_prefix="ATTUNE_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    data_dir: Path = Field(Path("./attune-data"), description="Directory holding all state.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the store; default: SQLite in the data directory."
    )
    environment: str = Field("development", description="development or production.")
    host: str = Field("127.0.0.1", description="Interface `serve` listens on.")
    port: int = Field(8000, description="Port `serve` listens on.")
    log_level: str = Field("info", description="Logging level.")
    log_format: str = Field("console", description="console or json (structured logs).")
    sqlite_synchronous: str = Field(
        "FULL", description="SQLite synchronous mode: FULL survives power loss, NORMAL only crashes."
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    profiles: ProfileSettings = Field(default_factory=ProfileSettings)
    recommend: RecommendSettings = Field(default_factory=RecommendSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    segments: SegmentSettings = Field(default_factory=SegmentSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = _toml_path(init_settings)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path is not None and toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        """The store URL, defaulting to SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'attune.db').resolve()}"

    @property
    def lake_dir(self) -> Path:
        """Directory of the Parquet lake."""
        return self.data_dir / "lake"


def _toml_path(init_settings: PydanticBaseSettingsSource) -> Path | None:
    """Find attune.toml in the data directory chosen by argument, environment or default."""
    import os

    explicit: Any = init_settings().get("data_dir")
    data_dir = explicit or os.environ.get("ATTUNE_DATA_DIR") or "./attune-data"
    return Path(data_dir) / CONFIG_FILE_NAME


def load_settings(**overrides: Any) -> Settings:
    """Build the settings with the given explicit overrides (``None`` values are ignored)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
