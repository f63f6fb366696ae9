from __future__ import annotations

import difflib
import enum
import importlib.metadata
import re
from collections.abc import Iterable, Sequence


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """"; did you mean 'x'?" for the closest of ``known``, or "" when none is close."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def install_command(extra: str) -> str:
    """``pip install ...`` for the packages of one of consentmw's extras, by their own names: consentmw
    itself is not on a package index, so asking one for consentmw with the extra would fail."""
    try:
        requires = importlib.metadata.requires("consentmw") or []
    except importlib.metadata.PackageNotFoundError:
        requires = []
    marker = re.compile(r"""extra\s*==\s*["']""" + re.escape(extra) + """["']""")
    packages = sorted(r.partition(";")[0].strip() for r in requires if marker.search(r.partition(";")[2]))
    return "pip install " + " ".join(f"'{p}'" for p in packages) if packages else f"pip install the {extra!r} extra of consentmw"


class ConfigError(ValueError):
    """A setting or policy that consentmw cannot work with; the message says what to change."""


class PolicyError(ConfigError):
    """The policy does not validate. ``problems`` lists every problem found as (JSON path,
    message), one per line of the error's text; ``path`` is the first one's."""

    def __init__(self, message: str, path: str = "$", *, problems: Sequence[tuple[str, str]] = ()) -> None:
        self.problems: list[tuple[str, str]] = list(problems) or [(path, message)]
        self.path = self.problems[0][0]
        super().__init__("\n".join(f"{where}: {what}" for where, what in self.problems))


class UnknownCategory(ValueError):
    """``Consent.allows()`` was asked about a name that is neither a category of the policy nor
    an alias of one: a typo in code would otherwise read as a refusal forever."""

    def __init__(self, name: str, categories: Sequence[str], aliases: Sequence[str]) -> None:
        super().__init__(
            f"{name!r} is not a category of this policy; its categories: {', '.join(categories)}"
            + (f"; aliases: {', '.join(aliases)}" if aliases else "")
        )
        self.name = name


class ErrorCode(enum.Enum):
    # One visitor-facing code per way a request can be refused; the value is (status, message).
    METHOD_NOT_ALLOWED = (405, "This endpoint does not accept that method.")
    CROSS_SITE = (403, "Consent can only be changed from this site's own pages.")
    UNSUPPORTED_MEDIA_TYPE = (415, "Send JSON (application/json) or a form (application/x-www-form-urlencoded).")
    BODY_TOO_LARGE = (413, "The request body is larger than the limit.")
    MALFORMED_JSON = (400, "The request body is not valid JSON.")
    MALFORMED_FORM = (400, "The form data could not be read.")
    INVALID_BODY = (422, "The request must contain either 'choices' or 'accept', not both.")
    INVALID_ACCEPT = (422, "'accept' must be 'all', 'necessary' or 'do-not-sell'.")
    INVALID_CHOICE = (422, "Each choice must be true or false.")
    UNKNOWN_CATEGORY = (422, "The policy has no such category.")
    REQUIRED_CATEGORY = (422, "A required category cannot be refused.")
    CONFLICTING_CHOICES = (422, "The same category was both allowed and refused (under two of its names).")
    INVALID_NEXT = (400, "The return address 'next' must be a path on this site, without control characters or whitespace.")
    INVALID_PAGE = (422, "'page' must be a path without control characters or whitespace.")
    NOT_FOUND = (404, "No such consent endpoint.")
    UNKNOWN_BROWSER = (404, "There is no cookie guide for that browser; see 'known'.")
    UNKNOWN_LANGUAGE = (400, "The language must be one of 'known'.")
    TOO_MANY_POSTS = (429, "Too many consent posts from this address; try again after Retry-After seconds.")
    STORE_UNAVAILABLE = (503, "The choice could not be recorded; nothing was changed. Please try again.")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def message(self) -> str:
        return self.value[1]
