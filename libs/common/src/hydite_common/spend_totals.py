"""Running spend totals in the JetStream KV bucket every data plane watches (budgets read them).

One entry per entity (`kind.entity`), written after the Postgres commit that changed its
`spend_totals` rows, by spend-ingest (ingested usage) or the control plane (an admin set or reset).
An entry holds absolute values, never increments, and the sum of its rows' versions: a writer
replaces an entry only with a newer one, by compare-and-set on the entry's revision, so two writers
racing never put an older total back. `ingested` says, per publishing data-plane process, up to
which batch sequence every batch is counted in the total, so a data plane knows which of its own
settled costs the total already includes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

import orjson
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from hydite_common.settings import BaseServiceSettings

_SAFE_ENTITY = re.compile(r"[A-Za-z0-9_=-]{1,128}")
CAS_ATTEMPTS = 20


def totals_bucket_name(settings: BaseServiceSettings) -> str:
    """This deployment's spend totals bucket, e.g. HYDITE_SPEND_TOTALS."""
    return settings.nats_name("SPEND_TOTALS")


def totals_key(kind: str, entity: str) -> str:
    """The KV key of an entity's total: `kind.entity` when the id is a plain token (key hashes,
    generated ids), else `kind.h<sha256 of the id>` (KV keys take few characters)."""
    if not entity:
        return f"{kind}._"
    if _SAFE_ENTITY.fullmatch(entity):
        return f"{kind}.{entity}"
    return f"{kind}.h{hashlib.sha256(entity.encode()).hexdigest()[:48]}"


@dataclass(frozen=True, slots=True)
class TotalRow:
    """One `spend_totals` row (one currency of an entity)."""

    kind: str
    entity: str
    currency: str
    spend: Decimal
    requests: int
    total_tokens: int
    version: int
    reset_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WindowBaseline:
    """One budget period of an entity: when it began, when it resets, and the entity's running
    total (per currency, decimal strings) when it began."""

    start_ms: float
    reset_at_ms: float | None
    baseline: dict[str, str]

    def encode(self) -> dict[str, object]:
        """Its JSON form."""
        return {"start_ms": self.start_ms, "reset_at_ms": self.reset_at_ms, "baseline": self.baseline}

    @classmethod
    def decode(cls, raw: dict[str, object]) -> WindowBaseline:
        """From its JSON form (KeyError, TypeError or ValueError when it is not one)."""
        reset_at = raw.get("reset_at_ms")
        baseline = raw["baseline"]
        if not isinstance(baseline, dict):
            raise TypeError("baseline is not an object")
        return cls(
            start_ms=float(raw["start_ms"]),  # type: ignore[arg-type]
            reset_at_ms=None if reset_at is None else float(reset_at),  # type: ignore[arg-type]
            baseline={str(k): str(v) for k, v in baseline.items()},
        )


@dataclass(frozen=True, slots=True)
class TotalEntry:
    """What the KV entry of one entity says."""

    kind: str
    entity: str
    spend: dict[str, str]
    """Spend per currency, as decimal strings (exact)."""
    requests: int
    total_tokens: int
    version: int
    reset_at_ms: float | None
    updated_ms: float
    ingested: dict[str, int] = field(default_factory=dict)
    windows: dict[str, WindowBaseline] = field(default_factory=dict)
    """Budget periods of the entity by duration ("1d", "30d", ...): spend in one is `spend` minus
    its baseline."""

    @property
    def key(self) -> str:
        """Its KV key."""
        return totals_key(self.kind, self.entity)

    def encode(self) -> bytes:
        """The entry's bytes."""
        return orjson.dumps(
            {
                "kind": self.kind,
                "entity": self.entity,
                "spend": self.spend,
                "requests": self.requests,
                "total_tokens": self.total_tokens,
                "version": self.version,
                "reset_at_ms": self.reset_at_ms,
                "updated_ms": self.updated_ms,
                "ingested": self.ingested,
                "windows": {duration: window.encode() for duration, window in self.windows.items()},
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> TotalEntry:
        """An entry from its bytes (ValueError if they are not one)."""
        try:
            raw = orjson.loads(data)
            return cls(
                kind=str(raw["kind"]),
                entity=str(raw["entity"]),
                spend={str(k): str(v) for k, v in raw["spend"].items()},
                requests=int(raw["requests"]),
                total_tokens=int(raw["total_tokens"]),
                version=int(raw["version"]),
                reset_at_ms=None if raw.get("reset_at_ms") is None else float(raw["reset_at_ms"]),
                updated_ms=float(raw["updated_ms"]),
                ingested={str(k): int(v) for k, v in raw.get("ingested", {}).items()},
                windows={str(k): WindowBaseline.decode(v) for k, v in raw.get("windows", {}).items()},
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a spend total entry: {exc}") from None


def entries_of(
    rows: Iterable[TotalRow], *, updated_ms: float, ingested: Mapping[str, int] | None = None
) -> list[TotalEntry]:
    """One entry per entity of the rows (its currencies together)."""
    grouped: dict[tuple[str, str], list[TotalRow]] = {}
    for row in rows:
        grouped.setdefault((row.kind, row.entity), []).append(row)
    entries = []
    for (kind, entity), group in grouped.items():
        resets = [row.reset_at for row in group if row.reset_at is not None]
        entries.append(
            TotalEntry(
                kind=kind,
                entity=entity,
                spend={row.currency: str(row.spend) for row in group},
                requests=sum(row.requests for row in group),
                total_tokens=sum(row.total_tokens for row in group),
                version=sum(row.version for row in group),
                reset_at_ms=max(resets).timestamp() * 1000 if resets else None,
                updated_ms=updated_ms,
                ingested=dict(ingested or {}),
            )
        )
    return entries


def window_baseline(
    start: datetime, reset_at: datetime | None, baseline: Mapping[str, object]
) -> WindowBaseline:
    """A window of an entry from a `spend_windows` row's values."""
    return WindowBaseline(
        start_ms=start.timestamp() * 1000,
        reset_at_ms=None if reset_at is None else reset_at.timestamp() * 1000,
        baseline={str(currency): str(amount) for currency, amount in baseline.items()},
    )


def with_windows(
    entries: Iterable[TotalEntry], windows: Mapping[tuple[str, str], Mapping[str, WindowBaseline]]
) -> list[TotalEntry]:
    """The entries, each carrying its entity's budget windows (kind, entity -> duration -> window)."""
    return [replace(entry, windows=dict(windows.get((entry.kind, entry.entity), {}))) for entry in entries]


async def totals_bucket(js: JetStreamContext, settings: BaseServiceSettings) -> KeyValue:
    """The totals bucket, created if it does not exist yet (one value per key, on disk)."""
    name = totals_bucket_name(settings)
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        return await js.create_key_value(
            config=KeyValueConfig(bucket=name, history=1, storage=StorageType.FILE)
        )


async def put_if_newer(kv: KeyValue, entry: TotalEntry) -> bool:
    """Write entry unless the bucket already holds a version at least as new; False if it did."""
    return await _put_if_newer(kv, entry, {})


KnownRevisions = dict[str, tuple[int, int]]
"""KV key -> (revision, version) of the entry a writer last wrote or read there."""


async def put_if_newer_known(kv: KeyValue, entry: TotalEntry, known: KnownRevisions) -> bool:
    """As put_if_newer, for a writer that keeps `known`: an entry of a key it last wrote (and
    nobody wrote since) takes one update at the known revision instead of a read and an update,
    and one not newer than the known version takes none."""
    seen = known.get(entry.key)
    if seen is not None:
        revision, version = seen
        if version >= entry.version:
            return False
        try:
            known[entry.key] = (await kv.update(entry.key, entry.encode(), last=revision), entry.version)
            return True
        except KeyWrongLastSequenceError:
            del known[entry.key]
    return await _put_if_newer(kv, entry, known)


async def _put_if_newer(kv: KeyValue, entry: TotalEntry, known: KnownRevisions) -> bool:
    data = entry.encode()
    for _ in range(CAS_ATTEMPTS):
        try:
            current = await kv.get(entry.key)
        except KeyNotFoundError:
            try:
                known[entry.key] = (await kv.create(entry.key, data), entry.version)
                return True
            except KeyWrongLastSequenceError:
                continue
        if current.value is not None:
            try:
                stored = TotalEntry.decode(current.value).version
                if stored >= entry.version:
                    known[entry.key] = (current.revision or 0, stored)
                    return False
            except ValueError:
                pass  # an unreadable entry is replaced
        try:
            known[entry.key] = (await kv.update(entry.key, data, last=current.revision), entry.version)
            return True
        except KeyWrongLastSequenceError:
            continue
    raise RuntimeError(f"spend total {entry.key} kept changing under {CAS_ATTEMPTS} writes")
