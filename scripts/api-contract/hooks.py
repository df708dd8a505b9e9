"""Schemathesis hooks for `scripts/api-contract.sh`.

The run's own admin token
-------------------------
Schemathesis authenticates with an admin token of the owner `default`, which the API lists,
regenerates, disables and deletes like any other. Once schemathesis learns its id (from a
token list, it reuses the ids it sees), a regeneration would turn every later request into
a 401. `before_call` points any request at that one id to an id that does not exist instead:
the request is still sent, and answered 404.

Failures the schema cannot rule out
-----------------------------------
The OpenAPI document states every constraint the server enforces that JSON Schema can
express. A few rules depend on state or on the clock, which no schema can state; a request
that is valid by the schema can break them, and the server rightly refuses it. Each rule
below names the one error it excuses, and only for the `positive_data_acceptance` check
(ST202, "schema-valid request rejected"). Schemathesis prints every failure dropped here as
"dropped by `filter_failure`", so nothing is hidden.
"""

import json
import os
import re
import sys
import unicodedata

import schemathesis

if sys.version_info < (3, 12):
    # CPython 3.11's `ast.parse` can fail with "SystemError: AST constructor recursion depth
    # mismatch" when Hypothesis reads a lambda's source to name a filter, deep in
    # schemathesis's recursion. The name only labels a strategy, so a plain one will do.
    from hypothesis.internal import lambda_sources

    _describe = lambda_sources.lambda_description

    def _lambda_description(f):
        try:
            return _describe(f)
        except SystemError:
            return "lambda"

    lambda_sources.lambda_description = _lambda_description

# (status, error code) -> why the schema cannot rule the request out.
SCHEMA_CANNOT_SAY = {
    (400, "invalid_expiry"): (
        "an expiry must lie in the future: JSON Schema cannot compare a date-time with "
        "the server's clock"
    ),
    (400, "invalid_cursor"): (
        "a cursor must be one this server issued, for the same `q`: the document can "
        "only call it an opaque string"
    ),
    (400, "conflicting_owner"): (
        "when `owner` is in both the query and the body of an apply, the two must be "
        "equal: OpenAPI has no constraint across parameters"
    ),
    (412, "version_conflict"): (
        "a well-formed `If-Match` names a version; which version is current is the "
        "token's state, not the schema's"
    ),
}


UNSUPPORTED = re.compile(r"unsupported character U\+([0-9A-F]{4,6})")


def error(response):
    try:
        return json.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError):
        return {}


def unassigned(message):
    """Whether `message` is the core refusing a code point Unicode has not assigned.

    The document's patterns state every character the core refuses but these: some 700
    ranges that grow with each Unicode version, which as a pattern would make the document
    many times larger and generation about a hundred times slower. Python's Unicode database
    is older than the server's, so whatever the server finds unassigned, Python does too.
    """
    found = UNSUPPORTED.search(message or "")
    return found is not None and unicodedata.category(chr(int(found.group(1), 16))) == "Cn"


def mislabelled(case):
    """Whether schemathesis sent a case it calls positive with a part it generated negative.

    Schemathesis 4.32.5's coverage phase can carry a negative header (`If-Match: 0`) into a
    case it then labels positive.
    """
    meta = case.meta
    components = getattr(meta, "components", None) or {}
    return any(info.mode.is_negative for info in components.values())


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if getattr(failure, "code", None) != "ST202":
        return True
    body = error(response)
    if (response.status_code, body.get("code")) in SCHEMA_CANNOT_SAY:
        return False
    if body.get("code") in ("invalid_name", "invalid_owner") and unassigned(body.get("message")):
        return False
    return not mislabelled(case)


PROTECTED = set(filter(None, os.environ.get("API_CONTRACT_PROTECTED_IDS", "").split(",")))
ABSENT = "0" * 32


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.path_parameters and case.path_parameters.get("id") in PROTECTED:
        case.path_parameters["id"] = ABSENT
