"""How a secret reads where text is shown: the one place that writes the mask.

Every report, error message and URL shown by the reference, the harness, the smoke tool and the
load tool hides secrets through here (tests/unit/test_single_homes.py keeps it the only place).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

MASK = "***"


def masker(secrets: Iterable[str]) -> Callable[[str], str]:
    """A function replacing each of `secrets` by MASK (longest first: a secret holding another
    is hidden whole; empty values are ignored)."""
    ordered = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def mask(text: str) -> str:
        for secret in ordered:
            text = text.replace(secret, MASK)
        return text

    return mask
