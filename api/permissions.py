"""Scopes: what a caller may do. An API client has the scopes an admin gave it; a logged-in user the
scopes of their roles (the front desk books, the technologist moves exams along), as on the pages."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import permissions
from rest_framework.request import Request

from scheduling.roles import ADMIN, FRONT_DESK, TECHNOLOGIST, user_roles

from .models import ApiClient, Scope

ROLE_SCOPES = {
    FRONT_DESK: {Scope.READ, Scope.BOOK},
    TECHNOLOGIST: {Scope.READ, Scope.WORKFLOW},
    ADMIN: {Scope.READ},
}


def caller_scopes(request: Request) -> set[str]:
    client = request.auth if isinstance(request.auth, ApiClient) else None
    if client is not None:
        scopes = set(client.scopes)
        return set(Scope.values) if Scope.ADMIN in scopes else scopes
    user = request.user
    if user.is_authenticated and user.is_superuser:
        return set(Scope.values)
    return set().union(*(ROLE_SCOPES[role] for role in user_roles(user)))


def caller_client(request: Request) -> ApiClient | None:
    return request.auth if isinstance(request.auth, ApiClient) else None


class HasScope(permissions.BasePermission):
    """The view's `scopes`: method -> scope needed. Reading needs "read" unless the view says otherwise."""

    def has_permission(self, request: Request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        wanted = getattr(view, "scopes", {}).get(request.method)
        if wanted is None:
            wanted = Scope.READ if request.method in permissions.SAFE_METHODS else Scope.ADMIN
        if wanted in caller_scopes(request):
            return True
        self.message = _("This needs the “%(scope)s” scope.") % {"scope": wanted}
        return False
