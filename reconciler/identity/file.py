"""The ``file`` provider: users kept in a YAML, JSON or CSV file (the embedded default, and
for teams whose users live somewhere without an API)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from reconciler.errors import ProviderUnavailable
from reconciler.identity.base import ProviderUser
from reconciler.textfiles import read_utf8

FIELDS = ("id", "email", "first_name", "last_name", "external_id", "active")


class FileProvider:
    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def _records(self) -> list[dict[str, Any]]:
        try:
            text = read_utf8(self.path)
        except OSError as exc:
            raise ProviderUnavailable(f"{self.path}: {exc.strerror}") from None
        except ValueError as exc:
            raise ProviderUnavailable(str(exc)) from None
        suffix = self.path.suffix.lower()
        try:
            if suffix == ".csv":
                data: Any = list(csv.DictReader(text.splitlines()))
            elif suffix == ".json":
                data = json.loads(text)
            else:
                data = yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError, csv.Error) as exc:
            raise ProviderUnavailable(
                f"{self.path}: not valid {suffix[1:] or 'YAML'}: {str(exc).splitlines()[0]}"
            ) from None
        if isinstance(data, dict) and isinstance(data.get("users"), list):
            data = data["users"]
        if not isinstance(data, list):
            raise ProviderUnavailable(f"{self.path}: expected a list of users (or `users:`)")
        return data

    def users(self) -> Iterator[ProviderUser]:
        return self._read()

    def _read(self) -> Iterator[ProviderUser]:
        for number, record in enumerate(self._records(), start=1):
            if not isinstance(record, dict) or not record.get("id"):
                raise ProviderUnavailable(f"{self.path}: user #{number} has no `id`")
            active = record.get("active", True)
            if isinstance(active, str):
                active = active.strip().lower() not in ("false", "0", "no", "")
            yield ProviderUser(
                id=str(record["id"]),
                email=_text(record.get("email")),
                first_name=_text(record.get("first_name")),
                last_name=_text(record.get("last_name")),
                active=bool(active),
                external_id=_text(record.get("external_id")),
            )

    def count(self) -> int | None:
        return len(self._records())

    def still_present(self, ids: Sequence[str]) -> list[str]:
        """The file read again: one rewritten while it was read (a shorter copy, a list cut
        off where a CSV row ends) leaves users out of the listing, not out of the file."""
        wanted = set(ids)
        found = {user.id for user in self._read() if user.id in wanted}
        return [user_id for user_id in ids if user_id in found]

    def close(self) -> None:
        """Nothing is held between calls: the file is read whole each time."""


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
