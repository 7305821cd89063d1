"""SQLAlchemy 2 typed models: the tables every part of the product shares.

Datetimes are timezone-aware and stored in UTC. Secrets and personal data live in ``*_enc`` columns
(ciphertext from :mod:`aaa.vault`); lookups by CPF/CNPJ use ``document_hash`` (a keyed hash).
``nas``, ``plans`` and ``subscribers`` carry ``change_seq``, the value of the change counter when
the row last changed, so the server's cache can refresh only what changed (see :mod:`aaa.db.changes`).
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware datetime stored in UTC on every engine (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timezone-aware column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        Decimal: Numeric(12, 2),
        dict[str, Any]: JSON,
    }


class SubscriberStatus(enum.StrEnum):
    """A subscriber's place in its life cycle (Anatel Res. 765/2023 for notified/suspended/terminated)."""

    ACTIVE = "active"
    NOTIFIED = "notified"
    REDUCED = "reduced"
    SUSPENDED = "suspended"
    DISABLED = "disabled"
    TERMINATED = "terminated"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DEAD = "dead"


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class ChangeCounter(Base):
    """One row: ``value`` grows on every change to NAS, plans or subscribers; ``epoch`` on deletions."""

    __tablename__ = "change_counter"
    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)


class Nas(TimestampMixin, Base):
    """A RADIUS client (a MikroTik router): where requests come from and where CoA goes."""

    __tablename__ = "nas"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(64))
    secret_enc: Mapped[str] = mapped_column(Text)
    vendor: Mapped[str] = mapped_column(String(32), default="mikrotik")
    coa_port: Mapped[int] = mapped_column(Integer, default=3799)
    require_message_authenticator: Mapped[bool] = mapped_column(Boolean, default=True)
    api_username: Mapped[str | None] = mapped_column(String(64))
    api_password_enc: Mapped[str | None] = mapped_column(Text)
    api_port: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(String(255))
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0, index=True)


class Plan(TimestampMixin, Base):
    """What a subscriber buys: speeds (bit/s), burst, pools, timeouts, data limit and price."""

    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    download_bps: Mapped[int] = mapped_column(BigInteger)
    upload_bps: Mapped[int] = mapped_column(BigInteger)
    burst_download_bps: Mapped[int | None] = mapped_column(BigInteger)
    burst_upload_bps: Mapped[int | None] = mapped_column(BigInteger)
    burst_threshold_download_bps: Mapped[int | None] = mapped_column(BigInteger)
    burst_threshold_upload_bps: Mapped[int | None] = mapped_column(BigInteger)
    burst_time_seconds: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int | None] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    ipv4_pool: Mapped[str | None] = mapped_column(String(64))
    ipv6_pool: Mapped[str | None] = mapped_column(String(64))
    delegated_ipv6_pool: Mapped[str | None] = mapped_column(String(64))
    session_timeout: Mapped[int | None] = mapped_column(Integer)
    idle_timeout: Mapped[int | None] = mapped_column(Integer)
    interim_interval: Mapped[int | None] = mapped_column(Integer)
    data_limit_bytes: Mapped[int | None] = mapped_column(BigInteger)
    mikrotik_group: Mapped[str | None] = mapped_column(String(64))
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0, index=True)


class Customer(TimestampMixin, Base):
    """The person or company who signs the contract; personal data encrypted at rest (LGPD)."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    document_kind: Mapped[str | None] = mapped_column(String(4))
    document_enc: Mapped[str | None] = mapped_column(Text)
    document_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    address_enc: Mapped[str | None] = mapped_column(Text)
    due_day: Mapped[int | None] = mapped_column(Integer)
    consent_whatsapp: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_at: Mapped[dt.datetime | None] = mapped_column()
    subscribers: Mapped[list[Subscriber]] = relationship(back_populates="customer")


class Subscriber(TimestampMixin, Base):
    """A login on a router (PPPoE or Hotspot user, or a MAC for MAC authentication)."""

    __tablename__ = "subscribers"
    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(128), unique=True)
    password_enc: Mapped[str | None] = mapped_column(Text)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=SubscriberStatus.ACTIVE.value, index=True)
    status_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    static_ipv4: Mapped[str | None] = mapped_column(String(45), unique=True)
    delegated_ipv6_prefix: Mapped[str | None] = mapped_column(String(64))
    mac_binding: Mapped[str | None] = mapped_column(String(17), index=True)
    simultaneous_use: Mapped[int] = mapped_column(Integer, default=1)
    trust_unlock_until: Mapped[dt.datetime | None] = mapped_column()
    trust_unlock_cycle: Mapped[str | None] = mapped_column(String(7))
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    plan: Mapped[Plan] = relationship()
    customer: Mapped[Customer | None] = relationship(back_populates="subscribers")


class SubscriberEvent(Base):
    """History of a subscriber's status and plan: what changed, who or what caused it, when."""

    __tablename__ = "subscriber_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(String(64))
    new_value: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(255))


class AcctSession(Base):
    """One accounting session (radacct): identity, addresses, times and traffic counters.

    Octet counters hold the full 64-bit value (gigawords folded in).
    """

    __tablename__ = "sessions"
    __table_args__ = (
        UniqueConstraint("nas_id", "acct_session_id", name="uq_sessions_nas_acct_session"),
        Index("ix_sessions_open_login", "login", "stopped_at"),
        Index("ix_sessions_nas_open", "nas_id", "stopped_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    nas_id: Mapped[int] = mapped_column(ForeignKey("nas.id"))
    acct_session_id: Mapped[str] = mapped_column(String(64))
    acct_unique_id: Mapped[str | None] = mapped_column(String(64))
    login: Mapped[str] = mapped_column(String(128))
    subscriber_id: Mapped[int | None] = mapped_column(Integer, index=True)
    framed_ip: Mapped[str | None] = mapped_column(String(45), index=True)
    framed_ipv6_prefix: Mapped[str | None] = mapped_column(String(64))
    calling_station_id: Mapped[str | None] = mapped_column(String(64))
    called_station_id: Mapped[str | None] = mapped_column(String(64))
    nas_port_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column()
    stopped_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    session_time: Mapped[int] = mapped_column(Integer, default=0)
    input_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    output_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    input_packets: Mapped[int] = mapped_column(BigInteger, default=0)
    output_packets: Mapped[int] = mapped_column(BigInteger, default=0)
    terminate_cause: Mapped[str | None] = mapped_column(String(32))
    interim_interval: Mapped[int | None] = mapped_column(Integer)
    class_: Mapped[str | None] = mapped_column("class", String(128))


class NasReboot(Base):
    """A NAS rebooted (Accounting-On or Accounting-Off) at ``rebooted_at``: the sessions of that NAS that
    started earlier are over, whenever their records are applied (see :mod:`aaa.acct_writer`)."""

    __tablename__ = "nas_reboots"
    nas_id: Mapped[int] = mapped_column(ForeignKey("nas.id", ondelete="CASCADE"), primary_key=True)
    rebooted_at: Mapped[dt.datetime] = mapped_column(primary_key=True)


class AuthLog(Base):
    """One authentication decision: who, from which NAS and MAC, accept or reject and why."""

    __tablename__ = "auth_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    login: Mapped[str] = mapped_column(String(128), index=True)
    nas_id: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(String(8))
    method: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(255))
    calling_station_id: Mapped[str | None] = mapped_column(String(64))


class Outbox(Base):
    """A side effect to carry out (CoA, Disconnect, message, OLT command), durable and idempotent."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    nas_id: Mapped[int | None] = mapped_column(Integer, index=True)
    subscriber_id: Mapped[int | None] = mapped_column(Integer, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))
    result: Mapped[dict[str, Any] | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column()


class AuditLog(Base):
    """Tamper-evident record of admin actions and of every access to personal data (hash chain)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any] | None] = mapped_column()
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AdminUser(TimestampMixin, Base):
    """A member of the ISP's staff who runs the system (roles: admin, operator, finance, auditor)."""

    __tablename__ = "admin_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    totp_secret_enc: Mapped[str | None] = mapped_column(Text)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    last_login_at: Mapped[dt.datetime | None] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class JobLease(Base):
    """Which node runs a periodic job until when (several ``aaa serve`` nodes on one PostgreSQL)."""

    __tablename__ = "job_leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime] = mapped_column()
    last_run_at: Mapped[dt.datetime | None] = mapped_column()
