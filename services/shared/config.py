"""Settings from `OFFERSEAL_*` environment variables: the one place that reads the environment.

Every variable, its type and its meaning is declared in `VARIABLES` (`variables/`, re-exported
here); its default is the `Settings` field's. docs/configuration.md is generated from both
(`offerseal config docs`), and a test fails when it is stale.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .redact import redact_url
from .variables import (
    VARIABLES,
    Variable,
    parse_bool,
    parse_duration,
    parse_list,
    parse_size,
)

__all__ = [
    "ANVIL_DEV_KEY",
    "ANVIL_DEV_KEY_2",
    "VARIABLES",
    "ConfigError",
    "Settings",
    "Variable",
    "load_settings",
    "parse_bool",
    "parse_duration",
    "parse_list",
    "parse_size",
]

# Anvil's first two development accounts. Used only when OfferSeal starts Anvil itself; any
# other chain needs OFFERSEAL_SIGNER_KEY and OFFERSEAL_CONTRACTS_SIGNER_KEY.
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_DEV_KEY_2 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


class ConfigError(ValueError):
    """A variable has a value that cannot be used; the message names the variable."""


_URLS = {
    "database_url",
    "smtp_url",
    "broker_url",
    "rate_limit_storage",
    "rpc_url",
    "webhook_url",
    "evidence_url",
    "notify_url",
}
_URL_LISTS = {"tsa_urls"}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".offerseal")
    database_url: str = ""
    broker_url: str = "memory://"
    rpc_url: str = ""
    signer_key: str = ""
    registry_address: str = ""
    registry_admin: str = ""
    auto_deploy: bool = True
    master_key: str = ""
    master_keys_previous: str = ""
    receipt_key: str = ""
    certificate_key: str = ""
    certificate_cert: str = ""
    host: str = "127.0.0.1"
    evidence_port: int = 8101
    contracts_port: int = 8102
    contracts_signer_key: str = ""
    agreements_address: str = ""
    evidence_url: str = ""
    contracts_url: str = ""
    notify_url: str = ""
    api_key: str = ""
    public_url: str = ""
    link_secret: str = ""
    link_ttl: float = 30 * 86400.0
    sweep_interval: float = 30.0
    tx_poll_interval: float = 0.1
    tx_stuck_blocks: int = 3
    tx_stuck_after: float = 90.0
    default_timezone: str = "Asia/Shanghai"
    notify_port: int = 8103
    web_port: int = 8100
    notify_public_url: str = ""
    smtp_url: str = ""
    web_public_url: str = ""
    mail_from: str = "OfferSeal <no-reply@offerseal.local>"
    dkim_selector: str = ""
    dkim_private_key: str = ""
    mail_domain: str = "offerseal.local"
    webhook_url: str = ""
    webhook_secret: str = ""
    notify_outbox_dir: Path | None = None
    sms_provider: str = ""
    sms_access_key_id: str = ""
    sms_access_key_secret: str = ""
    sms_endpoint: str = ""
    sms_sdk_app_id: str = ""
    sms_region: str = "ap-guangzhou"
    sms_sign_name: str = ""
    sms_templates: str = ""
    sms_report_interval: float = 60.0
    chat_robot_hosts: tuple[str, ...] = ()
    sms_endpoint_hosts: tuple[str, ...] = ()
    checkin_interval: float = 48 * 3600.0
    quiet_hours: str = "21:00-09:00"
    dispatch_interval: float = 0.5
    touchpoint_max_attempts: int = 8
    retention: float = 30 * 86400.0
    broker_heartbeat: float = 10.0
    anvil_port: int = 8545
    web_threads: int = 16
    trusted_proxies: int = 0
    workers: int = 1
    batch_interval: float = 1.0
    batch_max: int = 10_000
    confirmations: int = 1
    reconcile_interval: float = 10.0
    outbox_interval: float = 0.2
    tsa_urls: tuple[str, ...] = ()
    tsa_ca_file: Path | None = None
    btoe_secret_id: str = ""
    btoe_secret_key: str = ""
    btoe_region: str = "ap-guangzhou"
    btoe_endpoint: str = "https://btoe.tencentcloudapi.com"
    btoe_hash: str = "sm3"
    max_document_bytes: int = 25 * 1024 * 1024
    auto_breach: bool = True
    breach_alert_lead: float = 2 * 86400.0
    candidate_uploads: str = "review"
    public_rate_limit: str = "300/minute"
    rate_limit_storage: str = "memory://"
    session_ttl: float = 8 * 3600.0
    session_idle: float = 30 * 60.0
    report_recipients: str = ""
    login_rate_limit: str = "5/minute;20/hour"
    log_level: str = "INFO"
    failpoint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'offerseal.db').resolve()}"

    @property
    def evidence_base_url(self) -> str:
        """Where the other services reach the evidence service: OFFERSEAL_EVIDENCE_URL without a
        trailing slash, or the evidence service started beside them on this host."""
        return self.evidence_url.rstrip("/") or f"http://127.0.0.1:{self.evidence_port}"

    @property
    def contracts_base_url(self) -> str:
        """Where the console reaches the contracts service: OFFERSEAL_CONTRACTS_URL without a
        trailing slash, or the contracts service started beside it on this host."""
        return self.contracts_url.rstrip("/") or f"http://127.0.0.1:{self.contracts_port}"

    @property
    def notify_base_url(self) -> str:
        """Where the contracts service reaches the notify service: OFFERSEAL_NOTIFY_URL without
        a trailing slash, or the notify service started beside it on this host."""
        return self.notify_url.rstrip("/") or f"http://127.0.0.1:{self.notify_port}"

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def redacted(self) -> dict[str, Any]:
        """Settings safe to log: secrets replaced by whether they are set."""
        out: dict[str, Any] = {}
        for var in VARIABLES:
            value = getattr(self, var.attr)
            if var.attr in {
                "webhook_secret",
                "sms_access_key_secret",
                "signer_key",
                "master_key",
                "master_keys_previous",
                "receipt_key",
                "certificate_key",
                "contracts_signer_key",
                "link_secret",
                "dkim_private_key",
                "api_key",
                "btoe_secret_key",
            }:
                value = "(set)" if value else "(unset)"
            elif var.attr in _URLS and value:
                value = redact_url(value)
            elif var.attr in _URL_LISTS:
                value = ",".join(redact_url(v) for v in value)
            out[var.env] = str(value)
        return out


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for var in VARIABLES:
        raw = env.get(var.env)
        if raw is None or raw == "":
            continue
        try:
            values[var.attr] = var.parse(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{var.env}: {exc}") from None
    values.update(overrides)
    settings = Settings(**values)
    if settings.workers < 1:
        raise ConfigError("OFFERSEAL_WORKERS must be at least 1")
    if settings.batch_max < 1:
        raise ConfigError("OFFERSEAL_BATCH_MAX must be at least 1")
    if settings.touchpoint_max_attempts < 1:
        raise ConfigError("OFFERSEAL_TOUCHPOINT_MAX_ATTEMPTS must be at least 1")
    if settings.retention < 3600:
        raise ConfigError("OFFERSEAL_RETENTION must be at least 1h")
    if settings.registry_admin:
        from web3 import Web3

        if not Web3.is_address(settings.registry_admin):
            raise ConfigError("OFFERSEAL_REGISTRY_ADMIN: not an address")
    if settings.confirmations < 1:
        raise ConfigError("OFFERSEAL_CONFIRMATIONS must be at least 1")
    if settings.tx_stuck_blocks < 1:
        raise ConfigError("OFFERSEAL_TX_STUCK_BLOCKS must be at least 1")
    if settings.tx_poll_interval <= 0:
        raise ConfigError("OFFERSEAL_TX_POLL_INTERVAL must be above 0")
    try:
        from limits import parse_many

        parse_many(settings.public_rate_limit)
    except ValueError:
        raise ConfigError(
            "OFFERSEAL_PUBLIC_RATE_LIMIT: not a rate limit (e.g. `300/minute`)"
        ) from None
    for url in settings.tsa_urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"OFFERSEAL_TSA_URLS: {redact_url(url)} is not an http(s) URL")
    if bool(settings.btoe_secret_id) != bool(settings.btoe_secret_key):
        raise ConfigError(
            "OFFERSEAL_BTOE_SECRET_ID and OFFERSEAL_BTOE_SECRET_KEY are set together (or neither)"
        )
    if settings.btoe_hash not in {"sm3", "sha256"}:
        raise ConfigError("OFFERSEAL_BTOE_HASH: `sm3` or `sha256`")
    if not settings.btoe_endpoint.startswith(("http://", "https://")):
        raise ConfigError("OFFERSEAL_BTOE_ENDPOINT: an http:// or https:// URL")
    if bool(settings.dkim_selector) != bool(settings.dkim_private_key):
        raise ConfigError(
            "OFFERSEAL_DKIM_SELECTOR and OFFERSEAL_DKIM_PRIVATE_KEY are set together (or neither)"
        )
    if settings.web_public_url and not settings.web_public_url.startswith(("http://", "https://")):
        raise ConfigError("OFFERSEAL_WEB_PUBLIC_URL: an http:// or https:// URL")
    try:
        parse_many(settings.login_rate_limit)
    except ValueError:
        raise ConfigError(
            "OFFERSEAL_LOGIN_RATE_LIMIT: not a rate limit (e.g. `5/minute;20/hour`)"
        ) from None
    if settings.session_ttl < 60 or settings.session_idle < 60:
        raise ConfigError("OFFERSEAL_SESSION_TTL and OFFERSEAL_SESSION_IDLE: at least 1m")
    if settings.candidate_uploads not in {"review", "auto"}:
        raise ConfigError("OFFERSEAL_CANDIDATE_UPLOADS: `review` or `auto`")
    if not settings.rate_limit_storage.startswith(("memory://", "redis://", "rediss://")):
        raise ConfigError("OFFERSEAL_RATE_LIMIT_STORAGE: use memory:// or redis://host:port")
    _check_sms(settings)
    return settings


def parse_sms_templates(text: str) -> dict[str, str]:
    """`code=SMS_1,checkin=SMS_2` as {kind: template id}."""
    out = {}
    for part in parse_list(text):
        kind, sep, template = part.partition("=")
        if not sep or not kind or not template:
            raise ValueError(f"{part!r} is not kind=template-id")
        out[kind.strip()] = template.strip()
    return out


def _check_sms(settings: Settings) -> None:
    if not settings.sms_provider:
        return
    if settings.sms_provider not in {"aliyun", "tencent"}:
        raise ConfigError("OFFERSEAL_SMS_PROVIDER: `aliyun` or `tencent`")
    if not (settings.sms_access_key_id and settings.sms_access_key_secret):
        raise ConfigError(
            "OFFERSEAL_SMS_PROVIDER needs OFFERSEAL_SMS_ACCESS_KEY_ID and "
            "OFFERSEAL_SMS_ACCESS_KEY_SECRET"
        )
    if settings.sms_provider == "tencent" and not settings.sms_sdk_app_id:
        raise ConfigError("OFFERSEAL_SMS_PROVIDER=tencent needs OFFERSEAL_SMS_SDK_APP_ID")
    try:
        parse_sms_templates(settings.sms_templates)
    except ValueError as exc:
        raise ConfigError(f"OFFERSEAL_SMS_TEMPLATES: {exc}") from None
