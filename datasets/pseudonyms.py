"""The pseudonym an annotator has in exported raw judgements.

A keyed hash of the user id (HMAC-SHA256, key derived from SECRET_KEY by Django's salted_hmac): the same
person has the same pseudonym in every version and export, so their judgements can be followed across
versions, while neither their username nor their id can be read from it or guessed by hashing ids
without the key. Rotating SECRET_KEY gives everyone new pseudonyms in the versions frozen after it.
"""

from django.utils.crypto import salted_hmac

_SALT = "mhp.datasets.annotator-pseudonym"
PREFIX = "a-"
HEX_DIGITS = 12  # 48 bits: no collision to expect among millions of annotators


def annotator_pseudonym(user_id: int) -> str:
    return PREFIX + salted_hmac(_SALT, str(user_id), algorithm="sha256").hexdigest()[:HEX_DIGITS]
