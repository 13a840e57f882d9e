"""Writes that belong to no app: a user's API tokens."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from rest_framework.authtoken.models import Token


@transaction.atomic
def api_token_create(*, user: AbstractBaseUser) -> Token:
    """A new key for this user's scripts; DRF keeps one token per user, so an old key stops working."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)


def api_token_revoke(*, user: AbstractBaseUser) -> bool:
    """Delete this user's key; True when there was one."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted > 0
