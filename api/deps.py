"""Request dependencies: the store, the settings, and the caller's identity."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from api.settings import Settings
from api.store import Store

LOCAL_OWNER = "local"


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_owner(request: Request) -> str:
    """The caller's owner name from its bearer token; the local owner when auth is off.

    401 without a bearer token, 403 for a token that is not configured. Tokens are compared
    in constant time, and every configured token is compared, so timing tells nothing."""
    owners: dict[str, str] = request.app.state.owners
    if not owners:
        return LOCAL_OWNER
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "authorization: a bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    found = None
    for known, owner in owners.items():
        if hmac.compare_digest(known.encode(), token.strip().encode()):
            found = owner
    if found is None:
        raise HTTPException(403, "authorization: the token gives no access")
    return found


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
OwnerDep = Annotated[str, Depends(get_owner)]
