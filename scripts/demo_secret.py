"""Print the demo's SECRET_KEY, kept in a file next to its SQLite database so a restart keeps everyone logged in.

The file is created once with a random key, readable by its owner only (mode 600); later runs read it back.
With a DATABASE_URL that is not SQLite the file lives in the project folder. Standard library only: demo.sh
calls it before Django's settings can load (they need the key).
"""

import os
import secrets
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

PROJECT = Path(__file__).resolve().parent.parent
FILE_NAME = "secret_key"


def key_file(database_url: str | None, project: Path = PROJECT) -> Path:
    """`secret_key` in the folder of the SQLite database that DATABASE_URL names (mhp/env.py's parsing)."""
    if not database_url:
        return project / FILE_NAME
    parts = urlsplit(database_url)
    if parts.scheme != "sqlite":
        return project / FILE_NAME
    path = Path(unquote(parts.path[1:] if parts.path.startswith("/") else parts.path))
    return (project / path if not path.is_absolute() else path).parent / FILE_NAME


def secret_key(path: Path) -> str:
    """The key stored at `path`, written first (random, mode 600) when there is none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two demos started at once cannot both write a key; the loser reads the winner's.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(50) + "\n")
    return path.read_text().strip()


def main() -> int:
    print(secret_key(key_file(os.environ.get("DATABASE_URL"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
