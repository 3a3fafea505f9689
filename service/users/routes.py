"""HTTP routes for users."""

from __future__ import annotations

from litestar import post
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from service.users.schemas import UserCreate, UserCreated
from service.users.service import create_user


@post("/api/v1/users", status_code=201, summary="Create a user")
async def create_user_route(
    data: UserCreate, db_session: AsyncSession, state: State
) -> UserCreated:
    """Create a user; the token in the answer is shown only this once."""
    user, token = await create_user(
        db_session, username=data.username, key=state.signing_key
    )
    return UserCreated(
        id=user.id, username=user.username, token=token, created_at=user.created_at
    )
