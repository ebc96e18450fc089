import pytest

from access_audit.models import AccessEvent
from scheduling.roles import ADMIN, FRONT_DESK
from tests.factories import UserFactory


@pytest.fixture
def clerk(client, user):
    """The front desk's browser (the root conftest's `user`: front desk and technologist)."""
    client.force_login(user)
    return client


@pytest.fixture
def admin_member(db):
    """A member of the Admin group: staff with the group's model permissions, not a superuser."""
    return UserFactory(username="itadmin", roles=[ADMIN])


@pytest.fixture
def admin_browser(client, admin_member):
    client.force_login(admin_member)
    return client


@pytest.fixture
def front_desk_only(db):
    return UserFactory(username="desk2", roles=[FRONT_DESK])


@pytest.fixture
def reads():
    """reads() -> every access record, oldest first, as (action, username or calling AE, patient id,
    order id, item count): what an auditor reads off the list."""

    def list_them():
        return [
            (
                e.action,
                e.user.username if e.user else e.calling_ae,
                e.patient_id,
                e.order_id,
                e.item_count,
            )
            for e in AccessEvent.objects.select_related("user").order_by("at", "pk")
        ]

    return list_them
