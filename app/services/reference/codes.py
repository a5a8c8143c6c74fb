"""French administrative codes: départements of communes, legislative constituency codes (pure)."""

from __future__ import annotations

import re


def normalise_constituency(code: str) -> str | None:
    """``92-13``, ``9213``, ``92013``, ``2A01``, ``971-01`` -> ``92-13`` style; None if not one.

    The département is 3 characters overseas (97x, 98x), 2 otherwise (2A, 2B for Corsica, ZA..ZZ
    as the Ministry of the Interior codes some overseas places and French people abroad); the rest
    is the constituency's number.
    """
    raw = re.sub(r"\s+", "", str(code or "")).upper()
    if "-" in raw:
        dep, _sep, num = raw.partition("-")
    else:
        width = 3 if raw[:2] in ("97", "98") else 2
        dep, num = raw[:width], raw[width:]
    if dep.isdigit() and len(dep) == 1:
        dep = "0" + dep
    if not re.fullmatch(r"[0-9]{2}|2[AB]|9[78][0-9]|Z[A-Z]", dep) or not num.isdigit():
        return None
    if not 1 <= int(num) <= 99:
        return None
    return f"{dep}-{int(num):02d}"


def departement_of(commune_code: str) -> str:
    """The département of an INSEE commune code (as ``porte_departement()`` in SQL)."""
    return commune_code[:3] if commune_code[:2] in ("97", "98") else commune_code[:2]
