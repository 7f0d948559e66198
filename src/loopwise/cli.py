"""The ``loopwise`` command: serve, demo, users, audit. Every command takes ``--db``."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loopwise.config import DEFAULT_DATABASE_URL, Settings

app = typer.Typer(help="loopwise: keep people in charge of machine-learning decisions.",
                  no_args_is_help=True, add_completion=False)
users_app = typer.Typer(help="People and their tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: $LOOPWISE_DATABASE_URL, else "
                 f"{DEFAULT_DATABASE_URL}); a bare path means a SQLite file."),
]


def _settings(db: str | None) -> Settings:
    if db is None:
        return Settings()
    return Settings(database_url=db if "://" in db else f"sqlite:///{db}")


def _fail(message: str, code: int = 2) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
) -> None:
    """Run the service (REST API and pages); migrates the database first."""
    import uvicorn

    from loopwise.store.db import Database

    settings = _settings(db)
    Database(settings.database_url).migrate()
    os.environ["LOOPWISE_DATABASE_URL"] = settings.database_url
    uvicorn.run("loopwise.server:create_app", factory=True, host=host, port=port,
                workers=workers, log_level="info")


@app.command()
def demo(
    db: DbOption = None,
    simulate: Annotated[bool, typer.Option(
        "--simulate", help="Simulated reviewers answer the queue; print the figures.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    dataset: Annotated[str, typer.Option(
        help="With --simulate: breast-cancer (569 cases) or digits (1,797 scans).")] = (
        "breast-cancer"),
    target_error: Annotated[float | None, typer.Option(
        "--target-error", help="With --simulate: a promise instead of a fixed threshold "
        "(error of automatic decisions <= this, with probability 0.9).")] = None,
    host: Annotated[str, typer.Option(help="Address to serve on (without --simulate).")] = (
        "127.0.0.1"),
    port: Annotated[int, typer.Option(help="Port to serve on (without --simulate).")] = 8000,
) -> None:
    """The whole loop on real data (scikit-learn's breast-cancer diagnosis cases).

    With --simulate, simulated reviewers answer the review queue and the figures are
    printed. Without it, the project is built (first labels, first model, the rest routed),
    the server starts, and you review the waiting items in your browser.
    """
    from loopwise.demo import simulate as run_simulation
    from loopwise.demo.data import DATASETS
    from loopwise.errors import InvalidInput
    from loopwise.loop import Loop

    settings = _settings(db)
    loop = Loop(settings=settings, random_state=seed)
    if simulate:
        if dataset not in DATASETS:
            raise typer.BadParameter(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}",
                                     param_hint="--dataset")
        policy = None if target_error is None else {"target_error": target_error, "delta": 0.1}
        console = Console(stderr=True)
        with Progress(TextColumn("streaming cases"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, disable=as_json) as bar:
            task = bar.add_task("demo", total=None)
            try:
                figures = run_simulation(
                    loop, random_state=seed, dataset=dataset, policy=policy,
                    on_progress=lambda done, total: bar.update(task, completed=done,
                                                               total=total))
            except InvalidInput as exc:
                raise typer.BadParameter(str(exc), param_hint="--target-error") from None
        loop.close()
        if as_json:
            typer.echo(json.dumps({k: v for k, v in figures.items() if k != "project"}))
        else:
            _print_figures(figures)
        return
    _serve_demo(loop, settings, seed, host, port)


def _print_figures(f: dict[str, Any]) -> None:
    def pct(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:.1f}%"

    ci = f["estimated_auto_error_ci"]
    table = Table(title=f"loopwise demo · project {f['project']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("items", str(f["items"]))
    table.add_row("automation rate", pct(f["automation_rate"]))
    table.add_row("model-alone accuracy", pct(f["model_accuracy"]))
    table.add_row("final-decision accuracy", pct(f["system_accuracy"]))
    table.add_row(
        "estimated auto-error (95% CI)",
        f"{pct(f['estimated_auto_error'])} [{pct(ci[0])}, {pct(ci[1])}], "
        f"n={f['estimated_auto_error_n']:g}")
    table.add_row("true auto-error", pct(f["true_auto_error"]))
    table.add_row("reviews", str(f["reviews"]))
    table.add_row("model versions", str(f["model_versions"]))
    curve = [c for c in f.get("learning_curve", []) if c["holdout_accuracy"] is not None]
    if curve:
        table.add_row("learning curve (holdout accuracy)", " → ".join(
            f"{c['human_labels']}: {pct(c['holdout_accuracy'])}"
            + ("" if c["status"] != "rejected" else " ✗") for c in curve))
    if f["gate_mode"] == "promise":
        table.add_row("promise", f"auto-error ≤ {pct(f['target_error'])} with probability 90%")
        if f["certified"]:
            table.add_row("certified threshold", f"{f['certified_threshold']:.3f}")
        else:
            table.add_row("certified threshold",
                          f"none yet: {f['labels_needed']} more labels needed")
        kept = ci[1] is not None and ci[1] <= f["target_error"]
        table.add_row("estimate vs promise", "within" if kept else "not shown yet")
    else:
        table.add_row("gate", "fixed threshold, no promise (try --target-error 0.05)")
    Console().print(table)


def _serve_demo(loop: Any, settings: Settings, seed: int, host: str, port: int) -> None:
    import numpy as np
    import uvicorn

    from loopwise.demo.data import breast_cancer_records
    from loopwise.demo.simulate import SimulatedReviewer, _unique_name, drain_queue
    from loopwise.server import create_app

    records, y, labels = breast_cancer_records(seed)
    truth = {r["external_id"]: int(t) for r, t in zip(records, y, strict=True)}
    name = _unique_name(loop, "breast-cancer")
    proj = loop.create_project(name, labels=labels, policy={"threshold": 0.9, "audit_rate": 0.1})
    helper = f"{name}-first-labels"
    loop.create_user(helper, "reviewer")
    proj.submit(records[:40])
    drain_queue(loop, name, [SimulatedReviewer(helper, 1.0, np.random.default_rng(seed))],
                truth, len(labels), labels)
    proj.train()
    proj.submit(records[40:])
    you = loop.create_user(_free_user(loop, "you"), "reviewer")
    admin = loop.create_user(_free_user(loop, "admin"), "admin")
    waiting = proj.metrics()["queue"]["open"]
    url = f"http://{host}:{port}"
    # Plain lines: a terminal must not wrap a token or a URL that people copy.
    typer.echo(f"loopwise demo · project {name}: {waiting} cases wait for a person.")
    typer.echo(f"Review them at {url}/projects/{name}/review (sign in at {url}/)")
    typer.echo(f"API docs at {url}/docs")
    typer.echo(f"Admin token: {admin['token']}")
    typer.echo(f"Your reviewer token: {you['token']}")
    uvicorn.run(create_app(service=loop.service), host=host, port=port, log_level="warning")


def _free_user(loop: Any, base: str) -> str:
    names = {u["name"] for u in loop.service.list_users(loop.actor)}
    name, i = base, 1
    while name in names:
        i += 1
        name = f"{base}-{i}"
    return name


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    role: Annotated[str, typer.Option(help="admin, expert, reviewer or service.")] = "reviewer",
    db: DbOption = None,
) -> None:
    """Create a user and print the token (shown only once, the last word of the output)."""
    from loopwise.errors import LoopwiseError
    from loopwise.loop import Loop

    loop = Loop(settings=_settings(db))
    try:
        user = loop.create_user(name, role)
    except LoopwiseError as exc:
        _fail(str(exc))
        return
    finally:
        loop.close()
    typer.echo(f"created {user['role']} {user['name']}; token (shown once): {user['token']}")


@audit_app.command("verify")
def audit_verify(
    db: DbOption = None,
    file: Annotated[str | None, typer.Option(
        "--file", help="Verify this export (JSONL) instead of the database.")] = None,
) -> None:
    """Verify the trail (chain, signed checkpoints, completeness); exit 1 and name the
    first problem."""
    if file is not None:
        from loopwise.service.audit import verify_export

        try:
            with open(file, encoding="utf-8") as f:
                trail = verify_export(f)
        except (OSError, ValueError) as exc:
            _fail(f"{file}: {exc}")
            return
        typer.echo(str(trail))
        if not trail.ok:
            raise typer.Exit(1)
        return
    from loopwise.loop import Loop

    loop = Loop(settings=_settings(db))
    try:
        result = loop.verify_audit()
    finally:
        loop.close()
    typer.echo(result["summary"])
    if not result["ok"]:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    out: Annotated[str, typer.Option("--out", help="Write the JSONL here.")],
    db: DbOption = None,
) -> None:
    """Write the trail as JSONL: every event, checkpoint and public key, so a third party
    can verify it (`loopwise audit verify --file OUT`)."""
    from loopwise.loop import Loop

    n = 0
    with Loop(settings=_settings(db)) as loop, open(out, "w", encoding="utf-8") as f:
        for line in loop.export_audit():
            f.write(line)
            n += 1
    typer.echo(f"wrote {n} lines to {out}")


@app.command()
def report(
    project: Annotated[str, typer.Argument(help="The project's name.")],
    out: Annotated[str | None, typer.Option("--out", help="Write to this file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The figures as JSON.")] = False,
    db: DbOption = None,
) -> None:
    """The oversight report: one self-contained HTML page (or --json)."""
    from loopwise.errors import LoopwiseError
    from loopwise.loop import Loop

    with Loop(settings=_settings(db)) as loop:
        try:
            text = (json.dumps(loop.service.report(loop.actor, project), indent=1)
                    if as_json else loop.service.report_html(loop.actor, project))
        except LoopwiseError as exc:
            _fail(exc.message)
            return
    if out is None:
        typer.echo(text)
    else:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)


def main() -> None:
    """Entry point of the ``loopwise`` command."""
    app(prog_name="loopwise")


if __name__ == "__main__":  # pragma: no cover
    main()
