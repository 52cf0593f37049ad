"""Typed keys under which app.py stores the control plane's shared objects."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.credentials import CredentialCipher
from hydite_controlplane.config.cache import SnapshotCache
from hydite_controlplane.config.node_status import NodeStatusStore
from hydite_controlplane.config.propagation import Propagation
from hydite_controlplane.messaging import NatsLink
from hydite_controlplane.settings import ControlplaneSettings

SETTINGS = web.AppKey("settings", ControlplaneSettings)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
CIPHER = web.AppKey("cipher", CredentialCipher)
CACHE = web.AppKey("cache", SnapshotCache)
NODE_STATUS = web.AppKey("node_status", NodeStatusStore)
PROPAGATION = web.AppKey("propagation", Propagation)
NATS = web.AppKey("nats", NatsLink)
