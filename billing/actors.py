"""Who caused a change: the value every state-changing service takes as `actor`.

Views pass the API key of the call, admin actions the staff user, tasks and commands `SYSTEM`.
`billing.outbox.emit` stores it on the outbox row, so webhooks and the activity log can say who
did it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from billing.models import ActorType, ApiKey

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.http import HttpRequest
    from rest_framework.request import Request


@dataclass(frozen=True)
class Actor:
    """An API key, a staff user or the system (a task, a command), as recorded on a change."""

    kind: ActorType
    id: str
    display: str

    @classmethod
    def for_api_key(cls, api_key: ApiKey) -> Actor:
        """The API key a call authenticated with."""
        return cls(ActorType.API_KEY, str(api_key.pk), str(api_key))

    @classmethod
    def for_user(cls, user: AbstractBaseUser) -> Actor:
        """A staff user of the admin."""
        return cls(ActorType.USER, str(user.pk), user.get_username())

    @classmethod
    def system(cls, name: str) -> Actor:
        """A job of the back office itself, named for what it is (a task, a command)."""
        return cls(ActorType.SYSTEM, name, name)

    @classmethod
    def from_request(cls, request: HttpRequest | Request) -> Actor:
        """The API key of a DRF call (`request.auth`), else the logged-in user (admin)."""
        api_key = getattr(request, "auth", None)
        if isinstance(api_key, ApiKey):
            return cls.for_api_key(api_key)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return cls.for_user(user)
        # Every write path is authenticated first; reaching here is a wiring mistake.
        raise ValueError("an anonymous request has no actor")


SYSTEM = Actor.system("system")
