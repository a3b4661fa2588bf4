"""``streamal export-model``: the trained river model of a checkpoint, for plain river."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streamal.cli.errors import friendly_errors

__all__ = ["register"]

HELP = """Write the trained river model of CHECKPOINT_DIR's newest snapshot to OUT.

OUT is a pickle of the river model alone (load it with pickle.load in a river program);
OUT.json beside it gives its sha256, the model class, the labels learned, and the
packages loading needs (river; also streamal for the logreg, softmax, ovr and gnb
models). A pickle runs code when loaded: load only files you exported or trust.
CHECKPOINT_DIR may also be one snapshot file. The service's state is not touched.
"""


@friendly_errors
def export_model_command(
    checkpoint_dir: Annotated[
        Path, typer.Argument(help="The service's checkpoint directory (or a snapshot file).")
    ],
    out: Annotated[Path, typer.Argument(help="Where to write the model (a pickle).")],
) -> None:
    from streamal.core.export import export_model

    info = export_model(checkpoint_dir, out)
    typer.echo(
        f"wrote {out} ({info['bytes']} bytes, sha256 {info['sha256']}): "
        f"{info['model']['class']}, model version {info['model_version']}, from "
        f"{info['snapshot']['path']}; loading needs {', '.join(info['needs']) or 'Python'}; "
        f"details in {out}.json",
        err=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``export-model`` to the app."""
    app.command("export-model", help=HELP)(export_model_command)
