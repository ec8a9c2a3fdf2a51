"""``nasforge latency measure | build | predict | fit``: latency on this machine, lookup tables, predictors."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from nasforge.cli._app import app
from nasforge.cli._options import OptionArg, parse_options, progress_bar, stderr_console
from nasforge.errors import NasforgeError

latency_app = typer.Typer(help="Latency: measure, build lookup tables, fit predictors.", no_args_is_help=True)
app.add_typer(latency_app, name="latency")

DeviceOpt = Annotated[str, typer.Option("--device", help="host (= cpu), cuda or cuda:N")]
RuntimeOpt = Annotated[str, typer.Option("--runtime", help="torch or onnxruntime (CPU)")]
ThreadsOpt = Annotated[int, typer.Option("--threads", help="intra-op threads (pinned while measuring)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@latency_app.command("measure")
def measure_cmd(
    space: Annotated[str | None, typer.Option("--space", help="space of --arch",
                                              show_default="none")] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="architecture string of --space",
                                             show_default="none")] = None,
    archs: Annotated[str | None, typer.Option("--archs", help="CSV list of architectures of --space (column 'arch', "
                                              "e.g. from `latency suggest --out`) to time one after another",
                                              show_default="none")] = None,
    out: Annotated[str | None, typer.Option("--out", help="with --archs: write the table (arch, COLUMN ms) here, "
                                            "to fit from",
                                            show_default="none: printed only")] = None,
    column: Annotated[str, typer.Option("--column", help="with --archs: latency column name in --out")] = "host_ms",
    onnx: Annotated[str | None, typer.Option("--onnx", help="an exported ONNX file instead of --space/--arch",
                                             show_default="none")] = None,
    input_shape: Annotated[str | None, typer.Option("--input-shape", help="with --onnx: e.g. 1,3,224,224",
                                                    show_default="none")] = None,
    option: OptionArg = None,
    device: DeviceOpt = "host",
    runtime: RuntimeOpt = "torch",
    threads: ThreadsOpt = 1,
    warmup: Annotated[int, typer.Option("--warmup")] = 10,
    repeats: Annotated[int, typer.Option("--repeats")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Median, min and IQR latency (ms, batch 1) of one architecture, a list of them (--archs) or an ONNX file."""
    from nasforge.hardware import measure_latency
    from nasforge.hardware._latency import measure_onnx_file
    from nasforge.spaces import get_space

    if archs is not None:
        from nasforge.hardware._fewshot import measure_list

        if space is None:
            raise NasforgeError("--archs needs --space")
        if out is not None and not out.endswith(".csv"):
            raise NasforgeError(f"--out {out!r} must end in .csv")
        rows = measure_list(get_space(space, **parse_options(option)), archs, out, column, device, runtime,
                            threads, warmup, repeats)
        if as_json:
            typer.echo(json.dumps(rows))
        else:
            for r in rows:
                typer.echo(f"{r[column]:.4f} ms  {r['arch']}")
        return
    if onnx is not None:
        if input_shape is None:
            raise NasforgeError("--onnx needs --input-shape, e.g. 1,3,224,224")
        try:
            shape = tuple(int(t) for t in input_shape.split(","))
        except ValueError:
            raise NasforgeError(f"bad --input-shape {input_shape!r}; expected integers like 1,3,224,224") from None
        stats = measure_onnx_file(onnx, shape, threads, warmup, repeats)
    else:
        if space is None or arch is None:
            raise NasforgeError("give --space and --arch (or --onnx FILE --input-shape ...)")
        sp = get_space(space, **parse_options(option))
        a = sp.parse(arch)
        module = sp.build(a)
        stats = measure_latency(module, (1, *sp.input_shape(a)), device, runtime, threads, warmup, repeats)
    if as_json:
        typer.echo(json.dumps(stats.to_dict()))
    else:
        typer.echo(f"median {stats.median_ms:.4f} ms  min {stats.min_ms:.4f} ms  IQR {stats.iqr_ms:.4f} ms  "
                   f"({stats.repeats} runs, {stats.device}/{stats.runtime}, {stats.threads} thread(s))")


@latency_app.command("build")
def build_cmd(
    space: Annotated[str, typer.Option("--space", help="space whose blocks to measure")],
    out: Annotated[str, typer.Option("--out", help="table file: .json, .yaml or .yml")],
    option: OptionArg = None,
    device: DeviceOpt = "host",
    runtime: RuntimeOpt = "torch",
    threads: ThreadsOpt = 1,
    samples: Annotated[int, typer.Option("--samples", help="archs whose blocks are covered (all if the space is "
                                         "smaller)")] = 1000,
    fit_networks: Annotated[int, typer.Option("--fit-networks", help="whole networks measured to fit the "
                                              "constant")] = 5,
    warmup: Annotated[int, typer.Option("--warmup")] = 5,
    repeats: Annotated[int, typer.Option("--repeats")] = 20,
    stat: Annotated[str, typer.Option("--stat", help="min or median of the repeats")] = "min",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Measure every distinct block of a space once and write the lookup table."""
    from nasforge.hardware._lut import build_table
    from nasforge.spaces import get_space

    opts = parse_options(option)
    sp = get_space(space, **opts)
    if not out.endswith((".json", ".yaml", ".yml")):
        raise NasforgeError(f"--out {out!r} must end in .json, .yaml or .yml")
    with progress_bar("latency table", stderr_console(as_json)) as bar:  # a row per step, on stderr
        table = build_table(sp, device=device, runtime=runtime, threads=threads, warmup=warmup, repeats=repeats,
                            stat=stat, samples=samples, fit_networks=fit_networks, seed=seed, space_name=space,
                            space_options=opts, status=bar.stage)
    path = table.save(out)
    info = {"out": str(path), "entries": len(table), "device": table.device, "runtime": table.runtime,
            "threads": table.threads, "constant_ms": table.constant_ms}
    if as_json:
        typer.echo(json.dumps(info))
    else:
        typer.echo(f"wrote {path}: {len(table)} blocks on {table.device}/{table.runtime}, "
                   f"constant {table.constant_ms:+.4f} ms")


@latency_app.command("predict")
def predict_cmd(
    lut: Annotated[str, typer.Option("--lut", help="a table written by `latency build`")],
    arch: Annotated[list[str], typer.Option("--arch", help="architecture string (repeatable)")],
    as_json: JsonOpt = False,
) -> None:
    """Predicted latency (ms) of architectures from a lookup table: block sum + fitted constant."""
    from nasforge.hardware import LatencyTable
    from nasforge.spaces import get_space

    table = LatencyTable.load(lut)
    if table.space is None:
        raise NasforgeError(f"lookup table {lut!r} records no space (an OFA/ProxylessNAS table?); "
                            "use the Python API with a NetworkSpec")
    sp = get_space(table.space, **table.space_options)
    table.bind(sp)
    rows = [{"arch": a, "ms": table.predict(sp.parse(a))} for a in arch]
    if as_json:
        typer.echo(json.dumps(rows))
    else:
        for r in rows:
            typer.echo(f"{r['ms']:.4f} ms  {r['arch']}")


PriorOpt = Annotated[list[str] | None, typer.Option("--prior-table", help="CSV of latencies of the same space on "
                                                 "other devices (repeatable); enables transfer",
                                                 show_default="none: no transfer")]
PriorColsOpt = Annotated[list[str] | None, typer.Option("--prior-cols", help="device columns of the prior tables to "
                                                        "use (repeatable or comma-separated)",
                                                        show_default="every numeric column except row numbers")]
ChooseOpt = Annotated[str, typer.Option("--choose", help="which rows to measure/train on: active (spread over the "
                                        "prior) or random")]


def _cols(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [c.strip() for v in values for c in v.split(",") if c.strip()]


@latency_app.command("fit")
def fit_cmd(
    table: Annotated[str, typer.Option("--table", help="CSV of measured latencies")],
    arch_col: Annotated[str, typer.Option("--arch-col", help="column holding architecture strings")],
    target_col: Annotated[str, typer.Option("--target-col", help="latency column (ms) to predict")],
    space: Annotated[str, typer.Option("--space", help="space the architecture strings belong to")],
    train: Annotated[int, typer.Option("--train", help="rows to train on; the rest are the test")] = 1000,
    prior_table: PriorOpt = None,
    prior_cols: PriorColsOpt = None,
    prior_arch_col: Annotated[str | None, typer.Option("--prior-arch-col", help="arch column of the prior tables",
                                                       show_default="--arch-col")] = None,
    choose: ChooseOpt = "random",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    option: OptionArg = None,
    naive: Annotated[bool, typer.Option("--naive", help="the baseline: one-hot only, squared loss")] = False,
    save: Annotated[str | None, typer.Option("--save", help="write the fitted predictor here (.json, no pickle), "
                                             "for latency constraints (--latency-model)",
                                             show_default="not saved")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit a latency model on --train rows of a table (with --prior-table: transfer from other devices) and report
    within 10%/5%, Spearman, Kendall and the noise ceiling on all other rows."""
    from nasforge.hardware._fewshot import fit_table
    from nasforge.spaces import get_space

    if save is not None and not save.endswith(".json"):
        raise NasforgeError(f"--save {save!r} must end in .json")
    opts = parse_options(option)
    sp = get_space(space, **opts)
    d, pred = fit_table(sp, table, arch_col, target_col, train, prior_table or [], _cols(prior_cols), choose, seed,
                        naive, want_predictor=save is not None, prior_arch_col=prior_arch_col)
    if save is not None and pred is not None:
        pred.save(save, space, opts, extra={"transfer": d["transfer"]} if "transfer" in d else None)
    if as_json:
        typer.echo(json.dumps(d))
    else:
        ceiling = d["noise_ceiling_10pct"]
        typer.echo(f"{target_col}: within 10% {d['within_10pct']:.3f}"
                   + (f" (noise ceiling {ceiling:.3f})" if ceiling is not None else "")
                   + f"  within 5% {d['within_5pct']:.3f}  spearman {d['spearman']:.3f}  kendall {d['kendall']:.3f}"
                   f"  rmse {d['rmse']:.4f} ms  (train {d['n_train']}, test {d['n_test']})")


@latency_app.command("suggest")
def suggest_cmd(
    space: Annotated[str, typer.Option("--space", help="space of the architectures")],
    k: Annotated[int, typer.Option("--k", help="how many architectures to measure")] = 10,
    prior_table: PriorOpt = None,
    prior_cols: PriorColsOpt = None,
    arch_col: Annotated[str, typer.Option("--arch-col", help="arch column of the prior tables")] = "arch",
    choose: ChooseOpt = "active",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    option: OptionArg = None,
    out: Annotated[str | None, typer.Option("--out", help="also write the list as a CSV (column 'arch') for "
                                            "`latency measure --archs`",
                                            show_default="none: printed only")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The k architectures to measure on a new device: spread over the prior's devices (or, without a prior, over
    the space's analytic cost), deterministic for a seed."""
    from nasforge._files import write_atomic
    from nasforge.hardware._fewshot import suggest
    from nasforge.spaces import get_space

    if out is not None and not out.endswith(".csv"):
        raise NasforgeError(f"--out {out!r} must end in .csv")
    sp = get_space(space, **parse_options(option))
    archs = suggest(sp, k, prior_table or [], arch_col, _cols(prior_cols), choose, seed)
    if out is not None:
        write_atomic(out, "arch\n" + "".join(f"{_csv_field(a)}\n" for a in archs))
    if as_json:
        typer.echo(json.dumps(archs))
    else:
        for a in archs:
            typer.echo(a)


def _csv_field(text: str) -> str:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([text])
    return buf.getvalue()
