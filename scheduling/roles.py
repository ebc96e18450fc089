"""Who may do what: four roles, each a Django group (migration 0004_roles, 0017 for the department lead).

Front desk registers and edits patients and books, moves, cancels and edits orders; the technologist
marks arrival, start and completion at the scanner; Admin looks after the catalog, rooms, users and
corrections in the Django admin (is_staff plus model permissions; the front-desk pages are not theirs);
the department lead reads the department's reports (volumes, room use, waiting, turnaround), as the
admin may too, and changes nothing.
Superusers pass every check. Reading (schedule, lists, order page, slip) needs only a login, which
LoginRequiredMiddleware enforces.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

FRONT_DESK = "Front desk"
TECHNOLOGIST = "Technologist"
ADMIN = "Admin"
DEPARTMENT_LEAD = "Department lead"
ROLES = (FRONT_DESK, TECHNOLOGIST, ADMIN, DEPARTMENT_LEAD)

# app label -> model -> what the Admin group may do in the Django admin. Migration 0004_roles holds
# the copy that created the groups; change both (and add a migration) together.
ADMIN_PERMISSIONS = {
    "scheduling": {
        "procedure": ("add", "change", "delete", "view"),
        "room": ("add", "change", "delete", "view"),
        "openinghours": ("add", "change", "delete", "view"),
        # Corrections go through the services (see scheduling/admin.py); orders are never deleted.
        "patient": ("add", "change", "view"),
        "order": ("add", "change", "view"),
        "accessioncounter": ("view",),
    },
    "worklist_export": {"worklistentry": ("view",)},
    # Who read which patient (access_audit); granted by access_audit's migration 0002, read-only.
    "access_audit": {"accessevent": ("view",)},
    # API clients (api/admin.py); granted by api's migration 0002. Never deleted: disabled.
    "api": {"apiclient": ("add", "change", "view")},
    # The HL7 link (hl7_link/admin.py); granted by hl7_link's migration 0002. Senders are disabled,
    # never deleted; the message log and the outbox are records, read-only.
    "hl7_link": {
        "sender": ("add", "change", "view"),
        "receiver": ("add", "change", "delete", "view"),
        "message": ("view",),
        "outboundmessage": ("view",),
    },
    # The PACS link (pacs_link/admin.py); granted by pacs_link's migration 0004. The presets are the
    # site's to edit; studies, series and the feed cursor are the follower's records, read-only.
    "pacs_link": {
        "windowpreset": ("add", "change", "view"),
        "study": ("view",),
        "series": ("view",),
        "feedcursor": ("view",),
    },
    "auth": {"user": ("add", "change", "view"), "group": ("view",)},
}


def roles_ensure() -> None:
    """Create the role groups and the Admin group's permissions if missing (idempotent).

    Migration 0004 does this on every database; tests that flush the database call it again.
    """
    from django.contrib.auth.models import Group, Permission

    for name in ROLES:
        Group.objects.get_or_create(name=name)
    wanted = [
        (app_label, f"{action}_{model}")
        for app_label, models in ADMIN_PERMISSIONS.items()
        for model, actions in models.items()
        for action in actions
    ]
    Group.objects.get(name=ADMIN).permissions.add(
        *(Permission.objects.get(content_type__app_label=app, codename=code) for app, code in wanted)
    )


def user_roles(user: AbstractBaseUser | AnonymousUser) -> set[str]:
    """The role names of `user`; every role for a superuser, none for an anonymous visitor."""
    if not user.is_authenticated or not user.is_active:
        return set()
    if user.is_superuser:
        return set(ROLES)
    # Cached on the user object: a page asks several times (navbar, buttons, the view itself).
    if not hasattr(user, "_ris_roles"):
        user._ris_roles = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    return user._ris_roles


def user_has_role(user: AbstractBaseUser | AnonymousUser, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def require_role(*roles: str) -> Callable:
    """View decorator: 403 (PermissionDenied) unless the user has one of `roles` or is a superuser.

    The check runs before the view loads anything, so a refused request changes nothing. Anonymous
    visitors never get here: LoginRequiredMiddleware sends them to the login page first.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not user_has_role(request.user, *roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def roles_context(request: HttpRequest) -> dict[str, dict[str, bool]]:
    """Template context processor: {{ roles.front_desk }}, {{ roles.technologist }} hide the buttons a
    user cannot use. The views check again: hiding a button is a courtesy, not the control."""
    user = getattr(request, "user", None)
    have = user_roles(user) if user is not None else set()
    return {
        "roles": {
            "front_desk": FRONT_DESK in have,
            "technologist": TECHNOLOGIST in have,
            "admin": ADMIN in have,
            "department_lead": DEPARTMENT_LEAD in have,
        }
    }
