"""The one check of an e-mail address, wherever one is entered or used as a recipient.

An address is accepted only as a bare ``local@domain.tld`` in ASCII: no display name, no
comments or quoting, no control characters (a CR or LF in a recipient is a header injection,
and a stored one stopped the outbox for good, issue 11), at most 254 characters. No DNS
lookups: ``.local`` and ``.test`` domains of internal and test setups are fine.

Pure stdlib, so ``config.py`` checks the address settings with the same rule at startup.
"""

from __future__ import annotations

import re
import unicodedata
from email.utils import parseaddr

MAX_LENGTH = 254
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(
    rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>(?:{_LABEL}\.)+[A-Za-z]{{2,63}})"
)


def address_problem(value: object) -> str | None:
    """Why ``value`` is not an acceptable e-mail address, or ``None`` if it is one."""
    if not isinstance(value, str) or not value:
        return "is not an email address"
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            return f"must not contain control characters (found {char!r})"
    if len(value) > MAX_LENGTH:
        return f"is longer than {MAX_LENGTH} characters"
    match = _ADDRESS.fullmatch(value)
    if match is None or parseaddr(value) != ("", value):
        return "is not a valid email address (use name@domain.tld)"
    if len(match["local"]) > 64:
        return "has more than 64 characters before the @"
    return None


def is_valid(value: object) -> bool:
    return address_problem(value) is None


def split_list(value: str) -> list[str]:
    """The addresses of a comma-separated list (blanks dropped, each stripped of spaces)."""
    return [part.strip(" \t") for part in value.split(",") if part.strip(" \t")]


def list_problem(value: object) -> str | None:
    """Why ``value`` is not a comma-separated list of acceptable addresses (``None``: it is)."""
    if not isinstance(value, str):
        return "is not an email address"
    addresses = split_list(value)
    if not addresses:
        return "names no email address"
    for address in addresses:
        problem = address_problem(address)
        if problem is not None:
            return f"{address!r} {problem}"
    return None


def sender_problem(value: object) -> str | None:
    """Like :func:`address_problem`, but a display name is allowed (``Orders <o@x.com>``)."""
    if not isinstance(value, str) or not value:
        return "is not an email address"
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in value):
        return "must not contain control characters"
    name, address = parseaddr(value)
    if not address or (not name and address != value.strip()):
        return "is not a valid email address (use name@domain.tld or Name <name@domain.tld>)"
    return address_problem(address)


def field_errors(**values: object) -> dict[str, list[str]]:
    """``{field: [message]}`` for each given address field that holds a bad address.

    ``None`` and ``""`` are not checked (whether a field is required is the table's rule).
    """
    return {
        name: [problem]
        for name, value in values.items()
        if value not in (None, "") and (problem := address_problem(value)) is not None
    }
