"""The Ministry of the Interior's political nuances: code -> name, so parties can be found by name.

Results files give each candidate or list a nuance code (``ENS``, ``UG``, ``LRN``...). Organisers
know parties by name ("Ensemble", "Rassemblement national"), so the codes used since 2017 are
named here. Lists (European and municipal elections) use the same codes prefixed with ``L``
(``LENS``: a list of Ensemble). Source: the "grilles des nuances" published with each election's
results on data.gouv.fr (Ministère de l'Intérieur); a code not listed here still works by itself.
"""

from __future__ import annotations

import re
import unicodedata

# Candidate nuances (legislative elections 2017-2024; the list nuances add an "L").
NUANCES: dict[str, str] = {
    "EXG": "Extrême gauche",
    "COM": "Parti communiste français",
    "FI": "La France insoumise",
    "SOC": "Parti socialiste",
    "RDG": "Parti radical de gauche",
    "VEC": "Les Écologistes (Europe Écologie Les Verts)",
    "ECO": "Écologistes",
    "DVG": "Divers gauche",
    "UG": "Union de la gauche (Nouveau Front populaire)",
    "NUP": "Nouvelle union populaire écologique et sociale (NUPES)",
    "REG": "Régionalistes",
    "DIV": "Divers",
    "REN": "Renaissance",
    "REM": "La République en marche",
    "MDM": "Mouvement démocrate (MoDem)",
    "HOR": "Horizons",
    "ENS": "Ensemble (majorité présidentielle)",
    "DVC": "Divers centre",
    "UDI": "Union des démocrates et indépendants",
    "UC": "Union du centre",
    "LR": "Les Républicains",
    "DVD": "Divers droite",
    "DSV": "Droite souverainiste",
    "DLF": "Debout la France",
    "UD": "Union de la droite",
    "REC": "Reconquête",
    "RN": "Rassemblement national",
    "FN": "Front national",
    "UXD": "Union de l'extrême droite",
    "EXD": "Extrême droite",
    "GJ": "Gilets jaunes",
}
LIST_PREFIX = "L"


def normalise(text: str) -> str:
    """Upper case, no accents, words separated by one space (for comparing names)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^A-Z0-9]+", " ", plain.upper()).split())


def nuance_name(code: str | None) -> str | None:
    """The name of a nuance code (``LENS`` -> "Liste Ensemble ..."), None when unknown."""
    if not code:
        return None
    code = code.upper()
    if code in NUANCES:
        return NUANCES[code]
    if code.startswith(LIST_PREFIX) and code[1:] in NUANCES:
        return "Liste " + NUANCES[code[1:]]
    return None
