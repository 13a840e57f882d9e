"""OpenAPI schema adjustments (drf-spectacular postprocessing hooks)."""

TOKEN_SCHEME = "tokenAuth"


def token_auth_listed_last(result: dict, generator, request, public) -> dict:
    """List token authentication after session and basic in every operation's security alternatives.

    At run time TokenAuthentication comes first (so a missing or revoked key answers 401, not 403), but
    schema clients take the first alternative as the one to exercise: schemathesis cannot make an invalid
    request to an operation with no parameter out of an `Authorization` API key, and the docs page already
    has the session cookie. The set of alternatives is unchanged.
    """
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            security = operation.get("security") if isinstance(operation, dict) else None
            if security:
                operation["security"] = sorted(security, key=lambda alternative: TOKEN_SCHEME in alternative)
    return result
