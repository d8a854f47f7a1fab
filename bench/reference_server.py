"""The reference server: scim2-server's in-memory SCIM service under uvicorn.

    BENCH_SCIM_TOKEN=... python -m bench.reference_server --port P --users N

It seeds ``N`` users, the same ones the benchmark seeds into scim-reconciler,
into scim2-server's ``InMemoryStorage``. Then it serves scim2-server's ASGI
application on 127.0.0.1 under uvicorn, the HTTP server of
``scim-reconciler serve``, so that the comparison measures the two SCIM
implementations and not two HTTP servers. Requests must carry
``Authorization: Bearer TOKEN``, as in scim2-server's own ``--bearer-token``
mode. The SCIM base URL is ``http://127.0.0.1:P/v2``, and
``/v2/ServiceProviderConfig`` needs no token, so it serves as the readiness
check.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import time
from typing import Any

import uvicorn
from scim2_models import Context, UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage, InMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.service import ScimService
from scim2_server.utils import load_default_provider

from bench.workload import TOKEN_ENV, user_body

logger = logging.getLogger("bench.reference_server")


class BearerTokenASGIApplication(ASGIApplication):
    """scim2-server's ASGI application, accepting one static bearer token."""

    def __init__(self, storage: AsyncInMemoryStorage, token: str) -> None:
        provider = load_default_provider()
        # The secret signs pagination cursors; the benchmark pages by startIndex.
        service = ScimService(provider, secret=secrets.token_urlsafe(32))
        super().__init__(storage, provider, service)
        self.token = token

    def check_auth(self, request: ScimRequest) -> None:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.encode(), self.token.encode()
        ):
            raise UnauthorizedException


def seed(storage: InMemoryStorage, service: ScimService, users: int) -> None:
    """Create ``users`` users through the storage, as a POST /Users would."""
    resource_type = service.get_resource_type("User")
    model: Any = service.get_model(resource_type)
    for index in range(users):
        resource = model.model_validate(
            user_body(index), scim_ctx=Context.RESOURCE_CREATION_REQUEST
        )
        storage.create(resource_type, resource)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reference_server",
        description="Serve scim2-server's in-memory SCIM service with seeded users. "
        f"The bearer token comes from the {TOKEN_ENV} variable.",
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port.")
    parser.add_argument(
        "--users", type=int, required=True, help="Number of users to seed."
    )
    arguments = parser.parse_args(argv)
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise SystemExit(f"{TOKEN_ENV} is not set: give the SCIM bearer token in it")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    storage = InMemoryStorage()
    application = BearerTokenASGIApplication(AsyncInMemoryStorage(storage), token)
    started = time.perf_counter()
    seed(storage, application.service, arguments.users)
    logger.info(
        "Seeded %d users in %.1f s", arguments.users, time.perf_counter() - started
    )
    uvicorn.run(
        application,
        host="127.0.0.1",
        port=arguments.port,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
