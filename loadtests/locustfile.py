"""Locust entry point: `locust -f loadtests/locustfile.py ClaimUser [EnqueueUser IntakeUser]`.

Run it as its own process (never import it into pytest: importing locust monkey-patches the
interpreter with gevent). `dragonfly-harness load` starts it, seeds the queue and audits.
"""

from loadtests import hooks
from loadtests.claim_user import ClaimUser
from loadtests.http_users import EnqueueUser, IntakeUser

__all__ = ["ClaimUser", "EnqueueUser", "IntakeUser", "hooks"]
