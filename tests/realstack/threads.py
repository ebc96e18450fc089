"""Run work in threads released together, each with its own database connection."""

import threading

from django.db import connection


def run_concurrently(n: int, work, timeout: float = 30) -> list:
    """Run work(i) in n threads released together; return each one's result or exception."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc
        finally:
            # Each thread has its own connection; close it so the test database can be flushed and dropped.
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a writer is still blocked"
    return results
