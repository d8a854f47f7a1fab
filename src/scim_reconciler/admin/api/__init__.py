"""The HTTP admin API under /admin/v1, for operators and organization admins.

``router`` contains every endpoint; ``install_problem_handlers`` makes their errors
problem details (RFC 9457). docs/admin-api.md describes the API.
"""

from fastapi import APIRouter, Depends

from . import access, connector, organizations, runs, users
from .dependencies import reject_nul_characters
from .problems import PREFIX, install_problem_handlers

router = APIRouter(
    prefix=PREFIX, tags=["admin"], dependencies=[Depends(reject_nul_characters)]
)
for module in (organizations, access, connector, runs, users):
    router.include_router(module.router)

__all__ = ["install_problem_handlers", "router"]
