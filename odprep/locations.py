"""Click path parameters that also take URLs: local paths are checked as click.Path
checks them; URLs are staged by the command's storage session (odprep.storage)."""

from __future__ import annotations

from pathlib import Path

import click

from odprep.errors import OdprepError


class Location(click.Path):
    """A path or URL. ``role`` says what a URL becomes: ``input`` (downloaded file or
    folder; a glob pattern downloads its matches), ``images`` (placeholders, bytes fetched
    in batches while encoding), ``output`` (a file published on success, with an existing
    label map beside it fetched first), ``output-file`` or ``output-folder``."""

    def __init__(self, role: str = "input", **kwargs) -> None:
        super().__init__(path_type=Path, **kwargs)
        self.role = role

    def convert(self, value, param, ctx):
        from odprep import storage

        if isinstance(value, str) and storage.is_url(value):
            what = (param.human_readable_name if param is not None else "path").lower()
            try:
                session = storage.current()
                if self.role == "images":
                    return session.images(value)
                if self.role == "output":
                    return session.output(value)
                if self.role == "output-file":
                    return session.output(value, label_map_name=None)
                if self.role == "output-folder":
                    return session.output_folder(value)
                return session.input(value, what)
            except OdprepError as error:
                self.fail(error.message, param, ctx)
        return super().convert(value, param, ctx)
