"""``nasforge space list | describe | sample``: look at search spaces from the shell."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from nasforge.cli._app import app
from nasforge.cli._options import OptionArg, parse_options
from nasforge.errors import NasforgeError

if TYPE_CHECKING:  # numpy and the spaces load when a `space` command runs, not for `nasforge --help`
    from nasforge.spaces import SearchSpace

space_app = typer.Typer(help="Search spaces: list them, describe one, sample architectures.", no_args_is_help=True)
app.add_typer(space_app, name="space")

def _space(name: str, option: list[str] | None) -> SearchSpace:
    from nasforge.spaces import get_space

    return get_space(name, **parse_options(option))


def _check_n(n: int) -> int:
    if n < 1:
        raise NasforgeError(f"-n must be >= 1, got {n}")
    return n


@space_app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """The registered spaces with their default sizes."""
    from nasforge.spaces import get_space, list_spaces

    rows = [{"name": n, "size": get_space(n).size()} for n in list_spaces() if n != "config"]
    if "config" in list_spaces():
        rows.append({"name": "config", "size": None})
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        size = "needs --option path=FILE.yaml" if r["size"] is None else f"size {r['size']:,}"
        typer.echo(f"{r['name']:<12} {size}")


def cost_range(sp: SearchSpace, n: int, seed: int) -> dict[str, list[int]]:
    """[min, max] of params, MACs and fp32 peak memory over ``n`` sampled architectures."""
    import numpy as np

    rng = np.random.default_rng(seed)
    costs = [sp.cost(sp.sample(rng)) for _ in range(n)]
    fields = {"params": [c.params for c in costs], "macs": [c.macs for c in costs],
              "peak_memory_bytes": [c.peak_memory_bytes for c in costs]}
    return {k: [min(v), max(v)] for k, v in fields.items()}


@space_app.command("describe")
def describe_cmd(
    name: Annotated[str, typer.Argument(help="space name (see `nasforge space list`)")],
    option: OptionArg = None,
    samples: Annotated[int, typer.Option("--samples", help="architectures sampled for the cost range")] = 200,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Decisions with their choices, the exact size, and the cost range over a sample."""
    sp = _space(name, option)
    d = sp.describe()
    d["cost_range"] = cost_range(sp, _check_n(samples), seed)
    d["cost_range_samples"] = samples
    if as_json:
        typer.echo(json.dumps(d, default=str))
        return
    typer.echo(f"space {d['name']}: {d['size']:,} architectures ({len(d['decisions'])} decisions)")
    for dec in d["decisions"]:
        typer.echo(f"  {dec['name']:<20} {', '.join(str(c) for c in dec['choices'])}")
    typer.echo(f"cost range over {samples} samples (seed {seed}):")
    for k, (lo, hi) in d["cost_range"].items():
        typer.echo(f"  {k:<18} {lo:,} .. {hi:,}")


@space_app.command("sample")
def sample_cmd(
    name: Annotated[str, typer.Argument(help="space name (see `nasforge space list`)")],
    n: Annotated[int, typer.Option("-n", help="how many architectures")] = 5,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    option: OptionArg = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Canonical strings of sampled architectures with params, MACs and fp32 peak memory."""
    import numpy as np

    sp = _space(name, option)
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(_check_n(n)):
        a = sp.sample(rng)
        c = sp.cost(a)
        rows.append({"arch": str(a), "params": c.params, "macs": c.macs, "peak_memory_bytes": c.peak_memory_bytes})
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(f"{r['arch']}  params={r['params']:,} macs={r['macs']:,} peak={r['peak_memory_bytes']:,}B")
