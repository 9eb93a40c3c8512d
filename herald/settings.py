"""Role settings, read from ``HERALD_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from proto import audience, keys
from proto.audience import AudienceLimits


def _default_node_id() -> str:
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())
    return f"{host[:40]}-{os.getpid()}"


class CommonSettings(BaseSettings):
    """Settings every role reads."""

    model_config = SettingsConfigDict(env_prefix="HERALD_", extra="ignore")

    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL (redis.asyncio).")
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    metrics_port: int = Field(0, description="Port of the Prometheus /metrics endpoint; 0 = off.")
    metrics_host: str = Field("127.0.0.1", description="Address the metrics endpoint binds.")
    log_level: str = Field("info", description="debug, info, warning or error.")
    group_prefix: str = Field("", description="Prefix of every Kafka consumer group name: "
                              "keeps deployments (or test runs) that share a Kafka apart.")


class AudienceSettings(CommonSettings):
    """Audience limits, for the roles that validate audiences (the router and the API); the
    defaults are Tencent Push's."""

    tags_per_account: int = Field(audience.TAGS_PER_ACCOUNT, description="Tags per account.")
    tag_bytes: int = Field(audience.TAG_BYTES, description="Bytes of UTF-8 in one tag.")
    accounts_per_call: int = Field(audience.ACCOUNTS_PER_CALL,
                                   description="Accounts one tag or attribute call may name.")
    accounts_per_import: int = Field(audience.ACCOUNTS_PER_IMPORT,
                                     description="Accounts one bulk import may name.")
    attributes_per_app: int = Field(audience.ATTRIBUTES_PER_APP,
                                    description="Attribute names an app may declare.")
    attribute_bytes: int = Field(audience.ATTRIBUTE_BYTES,
                                 description="Bytes of an attribute name or value.")
    terms_per_list: int = Field(audience.TERMS_PER_LIST,
                                description="Terms in one AND, OR or NOT list of a condition.")
    audience_accounts: int = Field(audience.AUDIENCE_ACCOUNTS,
                                   description="Accounts one push may list.")
    audience_registration_ids: int = Field(audience.AUDIENCE_REGISTRATION_IDS,
                                           description="Registration ids one push may list.")

    def audience_limits(self) -> AudienceLimits:
        """The limits as ``proto.audience`` takes them."""
        return AudienceLimits(**{name: getattr(self, name)
                                 for name in AudienceLimits.__dataclass_fields__})


class GatewaySettings(CommonSettings):
    """Settings of ``herald gateway``."""

    host: str = Field("127.0.0.1", description="Address the websocket server binds.")
    port: int = Field(8700, description="Websocket port.")
    node_id: str = Field(default_factory=_default_node_id,
                         description="Unique id of this node (default: host-pid).")
    metrics_port: int = Field(9701, description="Port of the Prometheus /metrics endpoint.")
    heartbeat_s: int = Field(10, description="Heartbeat interval a client is told to keep.")
    heartbeat_timeout_s: float = Field(25.0, description="Silence after which a client is closed.")
    hello_timeout_s: float = Field(5.0, description="Time a new connection has to say HELLO.")
    ack_timeout_s: float = Field(10.0, description="Time a device has to ACK a push.")
    token_ttl_s: int = Field(30 * 86400, description="Lifetime of device tokens.")
    max_frame_bytes: int = Field(16 * 1024, description="Largest message a device may send.")
    compression: bool = Field(False, description="Offer permessage-deflate to devices.")
    client_rate: float = Field(20.0, description="Frames per second a device may send.")
    client_burst: float = Field(50.0, description="Frames a device may send in one burst.")
    max_pending: int = Field(256, description="Unacknowledged pushes kept per connection.")
    max_queue: int = Field(64, description="Frames queued for a slow socket before it is closed.")
    write_low_water: int = Field(64 * 1024,
                                 description="Unsent bytes below which frames go out directly.")
    listen_backlog: int = Field(4096, description="Pending connects the kernel queues.")
    drain_grace_s: float = Field(2.0,
                                 description="Time a draining node keeps reading its inbox.")


class RouterSettings(AudienceSettings):
    """Settings of ``herald router``."""

    metrics_port: int = Field(9702, description="Port of the Prometheus /metrics endpoint.")
    batch_records: int = Field(500, description="Push requests routed per batch at most.")
    fanout_shard: int = Field(1000, description="Devices per fan-out shard (a share of a "
                              "large audience that one router routes at a time).")
    fanout_step: int = Field(20, description="Shards one planning step cuts before it hands "
                             "the rest of the audience on: bounds a router's memory.")
    fanout_batch: int = Field(4, description="Fan-out records (shards, steps) routed per "
                              "batch at most.")
    vendor_batch: int = Field(500, description="Devices per vendor job at most.")
    inbox_max: int = Field(100, description="Messages a device's offline inbox keeps.")
    timer_tick_s: float = Field(0.02, description="How often the router looks for due timers "
                                "(scheduled pushes, paced shards, pushes held by quiet hours).")
    timer_batch: int = Field(500, description="Timers published per look at most.")
    timer_lease_ms: int = Field(30_000, description="How long a router holds the timers it "
                                "took before another may publish them (if it died).")


class ApiSettings(AudienceSettings):
    """Settings of ``herald api``."""

    host: str = Field("127.0.0.1", description="Address the HTTP API binds.")
    port: int = Field(8710, description="HTTP API port.")
    metrics_port: int = Field(9704, description="Port of the Prometheus /metrics endpoint.")
    admin_token: str = Field("", description="Bearer token that may create apps over HTTP "
                             "(POST /v1/apps); empty = app creation over HTTP is disabled.")
    # The largest body within the default limits, an attribute call for 100 accounts of 10
    # values each, is about 120 KB; escaped text can double that.
    max_body_bytes: int = Field(512 * 1024, description="Largest request body, in bytes.")
    recall_window_s: int = Field(24 * 3600, description="How long after it started a task "
                                 "may be recalled (Tencent Push allows 24 h).")


class StatsSettings(CommonSettings):
    """Settings of ``herald stats``."""

    metrics_port: int = Field(9705, description="Port of the Prometheus /metrics endpoint.")
    batch_records: int = Field(2000, description="Events folded per batch at most.")
    trace_ttl_s: int = Field(keys.TRACE_TTL_S, description="How long the trace of one "
                             "delivery (each hop, with times) is kept.")


class CallbacksSettings(CommonSettings):
    """Settings of ``herald callbacks``."""

    metrics_port: int = Field(9706, description="Port of the Prometheus /metrics endpoint.")
    batch_records: int = Field(2000, description="Events read per batch at most.")
    flush_ms: int = Field(200, description="Longest an event waits to fill a post.")
    request_timeout_s: float = Field(5.0, description="Timeout of one callback post retried "
                                     "from push.callbacks.retry.")
    first_timeout_s: float = Field(2.0, description="Timeout of a post's first attempt, in the "
                                   "main loop: the longest one app's receiver holds back "
                                   "other apps' callbacks.")
    retry_batch_records: int = Field(100, description="Retries read per batch at most (their "
                                     "posts run concurrently).")
    max_attempts: int = Field(5, description="Attempts per post before it is parked.")
    backoff_base_s: float = Field(0.2, description="First retry delay (doubles per attempt).")
    backoff_max_s: float = Field(5.0, description="Largest retry delay.")
    config_ttl_s: float = Field(10.0, description="How long an app's callback config is "
                                "reused before it is read again.")


class ReceiptsSettings(CommonSettings):
    """Settings of ``herald receipts``."""

    host: str = Field("127.0.0.1", description="Address the receipt endpoint binds.")
    port: int = Field(8711, description="Receipt endpoint port (vendors post here).")
    metrics_port: int = Field(9707, description="Port of the Prometheus /metrics endpoint.")
    max_body_bytes: int = Field(1024 * 1024, description="Largest receipt body, in bytes.")


class VendorSettings(CommonSettings):
    """Settings of ``herald vendor NAME``."""

    metrics_port: int = Field(9703, description="Port of the Prometheus /metrics endpoint.")
    sandbox_url: str = Field("http://127.0.0.1:8790/push",
                             description="Endpoint the sandbox vendor posts to.")
    request_timeout_s: float = Field(10.0, description="Timeout of one vendor request.")
    max_attempts: int = Field(5, description="Attempts per job before it is dead-lettered.")
    backoff_base_s: float = Field(0.2, description="First retry delay (doubles per attempt).")
    backoff_max_s: float = Field(10.0, description="Largest retry delay.")
    concurrency: int = Field(64, description="Vendor requests in flight at once.")
    vendor_url: str = Field("", description="Base URL of the vendor's push API (empty: the "
                            "vendor's production host); tests point it at a fake.")
    vendor_auth_url: str = Field("", description="Token endpoint of Huawei and Honor (empty: "
                                 "the vendor's); FCM and HarmonyOS take token_uri from the "
                                 "app's credentials.")
    vendor_sandbox_url: str = Field("", description="APNs host of development credentials "
                                    "(empty: Apple's sandbox host).")
    vendor_ca_file: str = Field("", description="PEM file of the CAs to trust for vendor TLS "
                                "instead of the system's (empty: the system's).")
    credentials_ttl_s: float = Field(30.0, description="How long an app's credentials are "
                                     "reused before they are read again: rotation delay.")
    rate_limit_max_wait_s: float = Field(30.0, description="Longest wait a vendor's "
                                         "Retry-After or quota may impose; a longer one parks "
                                         "the job in the dead-letter topic.")
    vendor_rps: float = Field(0.0, description="Requests per second to the vendor from this "
                              "process; 0 = no limit.")
    app_rps: float = Field(0.0, description="Requests per second per app from this process; "
                           "0 = no limit.")
    app_daily_quota: int = Field(0, description="Devices per app and day through this vendor, "
                                 "counted in Redis across senders; 0 = no limit.")
    app_limits: dict[str, dict[str, float]] = Field(
        {}, description='Per-app overrides, JSON: {"app": {"rps": 5, "daily_quota": 10000}}.')
    quota_utc_offset_h: float = Field(8.0, description="UTC offset of the day a daily quota "
                                      "counts (8: China, where vendors reset their quotas).")


def describe(settings: type[BaseSettings]) -> str:
    """The environment variables a settings class reads, for ``--help``."""
    prefix = settings.model_config.get("env_prefix", "")
    lines = ["environment variables:"]
    for name, info in settings.model_fields.items():
        default = "host-pid" if info.default_factory else info.default
        lines.append(f"  {(prefix + name).upper():<30} {info.description} [{default}]")
    return "\n".join(lines)
