"""What PostgreSQL did for a query: EXPLAIN ANALYZE of a queryset's own SQL, walked node by node."""

from collections.abc import Iterator

from django.db import connection


def plan(queryset) -> dict:
    """The root node of EXPLAIN (ANALYZE, FORMAT JSON) of `queryset`'s SQL, as the app runs it."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        return cursor.fetchone()[0][0]["Plan"]


def nodes(node: dict) -> Iterator[dict]:
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)
