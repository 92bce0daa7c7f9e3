"""The launch stage: who may use a tenant's app before it opens to everyone. No I/O here.

At stage ``Internal`` only the tenant's testers get through: a token whose
subject is on ``allowSubjects``, or whose verified email (the ``email`` claim,
unless ``email_verified`` is false) is at a domain on ``allowEmailDomains``
(exactly that domain, not its subdomains). At ``GeneralAvailability``
everyone with a valid token does.
"""

from __future__ import annotations

from gateway._types import AccessSpec, Principal

#: What a refused caller is told (HTTP 403, ``error="access_denied"``).
NOT_OPEN = "this app is not open yet"


def admits(access: AccessSpec, principal: Principal) -> bool:
    """True when ``principal`` may use an app at ``access``'s stage."""
    if access.open or principal.subject in access.allow_subjects:
        return True
    email = principal.email
    if email is None or "@" not in email:
        return False
    return email.rsplit("@", 1)[1].lower() in access.allow_email_domains
