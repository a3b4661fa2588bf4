"""The live service: settings, the loop, metrics and the HTTP endpoints (the edge)."""

from streamal.service.config import Settings, load_settings
from streamal.service.handlers import MessageHandler, Topics
from streamal.service.loop import LoopPolicy, Service
from streamal.service.metrics import Metrics

__all__ = [
    "LoopPolicy",
    "MessageHandler",
    "Metrics",
    "Service",
    "Settings",
    "Topics",
    "load_settings",
]
