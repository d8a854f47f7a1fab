"""Run the application under uvicorn, with graceful shutdown on SIGTERM."""

from __future__ import annotations

from types import FrameType

import uvicorn

from scim_reconciler.app import create_app
from scim_reconciler.lifecycle import Shutdown
from scim_reconciler.observability.logging import configure_logging
from scim_reconciler.settings import Settings


class GracefulServer(uvicorn.Server):
    """A uvicorn server that passes SIGTERM and SIGINT on to ``stop_request``.

    uvicorn itself stops accepting connections and waits for the requests in
    flight. The stop request halts the scheduler and a running apply at the
    same moment, instead of after the requests are done.
    """

    def __init__(self, config: uvicorn.Config, stop_request: Shutdown) -> None:
        super().__init__(config)
        # Not "shutdown": uvicorn.Server has a method of that name.
        self.stop_request = stop_request

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stop_request.request()
        super().handle_exit(sig, frame)


def run_server(settings: Settings, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then stop within the grace period."""
    configure_logging(settings.log_level, settings.log_format)
    shutdown = Shutdown(settings.shutdown_grace_seconds)
    config = uvicorn.Config(
        create_app(settings, shutdown=shutdown),
        host=host,
        port=port,
        # Logging is configured above; uvicorn's own setup would replace it.
        log_config=None,
        log_level=settings.log_level.lower(),
        # The application logs each SCIM request with its id.
        access_log=False,
        server_header=False,
        # Forwarded headers only from the proxies the settings name: anyone
        # else could choose the address that sign-in throttling counts.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    GracefulServer(config, shutdown).run()
