# -*- test-case-name: tests.test_gateway_models -*-
"""``--models FILE`` and ``--default-model``: each tracker's model, hence the
:class:`~teltotwist.catalogue.Naming` of its records' attributes."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from teltotwist.catalogue import Catalogue, Naming, UnknownModelError
from teltotwist.codec.imei import MAX_LOGIN_LENGTH, is_digits
from teltotwist.gateway.filewatch import FileWatch

NamingFor = Callable[[str], Naming | None]
"""The naming of an IMEI's records; ``None``: no attributes."""


class ModelsError(ValueError):
    """A models file that cannot be read, or a line that is no ``imei,model``
    of a model the catalogue knows."""


def catalogue_model(catalogue: Catalogue, model: str, where: str) -> str:
    """The catalogue's spelling of *model*; a :class:`ModelsError` naming
    *where* and the near matches if it is unknown."""
    try:
        return catalogue.model_named(model)
    except UnknownModelError as error:
        raise ModelsError(f"{where}: {error}") from None


def parse_models(text: str, source: str, catalogue: Catalogue) -> dict[str, str]:
    """IMEI -> model from CSV *text* (``imei,model`` per line; blank lines
    and ``#`` comments skipped; an IMEI listed twice is an error)."""
    models: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        where = f"{source}:{number}"
        fields = [field.strip() for field in next(csv.reader([entry]))]
        if len(fields) != 2:
            raise ModelsError(f"{where}: {entry!r} is not imei,model")
        imei, model = fields
        if not (is_digits(imei) and len(imei) <= MAX_LOGIN_LENGTH):
            raise ModelsError(f"{where}: {imei!r} is not an IMEI")
        if imei in models:
            raise ModelsError(f"{where}: IMEI {imei} is listed twice")
        models[imei] = catalogue_model(catalogue, model, where)
    return models


class TrackerModels(Service):
    """Each tracker's model: from a models file, reloaded when it changes,
    else *default_model* (``None``: unknown, named by the no-model rule).

    Called with an IMEI, gives the naming of its records (a
    :data:`NamingFor`). As a service it checks the file's modification time
    every *check_interval* seconds; :meth:`reload` (wired to SIGHUP) re-reads
    it at once. A reload that fails keeps the previous map, and logs why.
    """

    log = Logger()

    def __init__(
        self,
        catalogue: Catalogue,
        clock: IReactorTime,
        path: Path | None = None,
        default_model: str | None = None,
        check_interval: float = 5.0,
    ) -> None:
        self.path = path
        self._catalogue = catalogue
        self._default = catalogue.naming(
            None
            if default_model is None
            else catalogue_model(catalogue, default_model, "--default-model")
        )
        self._namings: dict[str, Naming] = {}
        self._watch: FileWatch | None = None
        if path is not None:
            self._watch = FileWatch(
                path, clock, check_interval, self.reload, self._lost
            )
            self._load(self._watch)

    def __call__(self, imei: str) -> Naming:
        """The naming of *imei*'s records now."""
        return self._namings.get(imei, self._default)

    def __len__(self) -> int:
        return len(self._namings)

    def _load(self, watch: FileWatch) -> None:
        try:
            models = watch.read(self._parse)
        except (OSError, UnicodeDecodeError) as error:
            raise ModelsError(
                f"cannot read the models file {watch.path}: {error}"
            ) from None
        self._namings = {
            imei: self._catalogue.naming(model) for imei, model in models.items()
        }

    def _parse(self, text: str) -> dict[str, str]:
        return parse_models(text, str(self.path), self._catalogue)

    def reload(self) -> None:
        """Re-read the file now; on failure log why and keep the current map."""
        if self._watch is None:
            return
        try:
            self._load(self._watch)
        except ModelsError as error:
            self.log.error(
                "Keeping the models of {count} IMEIs: {error}",
                count=len(self),
                error=error,
            )
            return
        self.log.info(
            "Models {path} loaded: {count} IMEIs", path=self.path, count=len(self)
        )

    def _lost(self, error: OSError) -> None:
        self.log.error("Models {path} unreadable: {error}", path=self.path, error=error)

    def startService(self) -> None:
        Service.startService(self)
        if self._watch is not None:
            self._watch.start()

    def stopService(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        Service.stopService(self)
