"""Guessing passwords over real HTTP, against production settings with gunicorn reached directly.

Each attack is what a client talking to gunicorn can send: its own X-Forwarded-For, any number of
usernames, connections from several addresses (127.0.0.0/8 is all ours, so a test can be "at" many).
RIS_PROXY_COUNT is left unset, as on a deployment without a proxy: the header must not be believed.
The username and address limits are lowered from 20 and 30 to keep the test short (each wrong password
costs a real PBKDF2 hash, most of a second here; see the `server` fixture); the pair limit is the
default, 5.
"""

from __future__ import annotations

from tests.security.conftest import PASSWORD

LOCKED = 429
WRONG = 200  # the login form again, "enter a correct username and password"
LOGGED_IN = 302


def test_a_new_forwarded_address_per_guess_does_not_dodge_the_lockout(server):
    guesser = server.browser()

    statuses = [guesser.log_in("nok", "wrong", forwarded_for=f"203.0.113.{n}") for n in range(1, 6)]
    right = guesser.log_in("nok", PASSWORD, forwarded_for="198.51.100.7")

    # With the header believed (RIS_PROXY_COUNT 1 by default in production, before), 100 guesses were
    # answered WRONG, none locked, and the right password then logged in.
    assert statuses == [WRONG, WRONG, WRONG, WRONG, LOCKED]
    assert right == LOCKED


def test_a_stranger_cannot_lock_a_clerk_out_by_claiming_their_address(server):
    stranger, clerk_desk = server.browser("127.0.0.9"), server.browser("127.0.0.2")

    statuses = [stranger.log_in("clerk", "wrong", forwarded_for="127.0.0.2") for _ in range(5)]

    assert statuses[-1] == LOCKED  # the stranger's own address is locked out for "clerk"...
    assert clerk_desk.log_in("clerk", PASSWORD) == LOGGED_IN  # ...the clerk's is not


def test_guesses_spread_over_addresses_lock_the_username(server):
    first, second, third = (server.browser(f"127.0.1.{n}") for n in (1, 2, 3))

    # Below the limit of 5 per address, 7 in all: RIS_USERNAME_FAILURE_LIMIT.
    statuses = [first.log_in("tech", "wrong") for _ in range(4)]
    statuses += [second.log_in("tech", "wrong") for _ in range(3)]

    assert statuses == [WRONG] * 6 + [LOCKED]
    assert third.log_in("tech", PASSWORD) == LOCKED


def test_guesses_spread_over_usernames_lock_the_address(server):
    sprayer, elsewhere = server.browser("127.0.2.1"), server.browser("127.0.2.2")

    # Below the limit of 5 per username, 9 in all: RIS_ADDRESS_FAILURE_LIMIT.
    statuses = [sprayer.log_in(name, "wrong") for name in ["ghost1"] * 4 + ["ghost2"] * 4 + ["ghost3"]]

    assert statuses == [WRONG] * 8 + [LOCKED]
    assert sprayer.log_in("frontdesk", PASSWORD) == LOCKED
    assert elsewhere.log_in("frontdesk", PASSWORD) == LOGGED_IN


def test_the_password_reset_form_is_throttled_per_address(server):
    anonymous, other = server.browser("127.0.3.1"), server.browser("127.0.3.2")

    def ask(browser, forwarded_for: str = "") -> int:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
        response, _ = browser.post_form("/accounts/password_reset/", {"email": "nobody@example.org"}, headers)
        return response.status

    # A made-up X-Forwarded-For per request changes nothing here either.
    statuses = [ask(anonymous, f"203.0.113.{n}") for n in range(1, 5)]

    assert statuses == [302, 302, 302, 429]
    assert ask(other) == 302
