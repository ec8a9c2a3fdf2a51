"""``nasforge predict RUN IMAGE...``: classify image files with a search run's best network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from nasforge.cli._app import app


@app.command("predict")
def predict(
    run_dir: Annotated[Path, typer.Argument(help="a finished search run directory")],
    images: Annotated[list[Path], typer.Argument(help="image files (PNG/JPEG)")],
    int8: Annotated[bool, typer.Option("--int8", help="use best/model.int8.onnx (onnxruntime) instead of the "
                                       "fp32 network")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the predictions as JSON")] = False,
) -> None:
    """Classify images, preprocessed as the network's training images were (resize, scaling, mean/std)."""
    from nasforge.jobs._predict import predict as run_predict

    rows = run_predict(run_dir, [str(p) for p in images], int8=int8)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['image']}\t{r['class']}\t{r['probability']:.4f}")
