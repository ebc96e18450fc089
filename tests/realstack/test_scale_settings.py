"""PostgreSQL session settings the front desk's queries are measured with (issue 12)."""

import pytest
from django.db import connection

pytestmark = [pytest.mark.realstack, pytest.mark.django_db]


def test_the_app_connects_with_jit_compilation_off():
    # JIT compiling cost more than the Worklist problems query it compiled (ris/settings.py).
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)
