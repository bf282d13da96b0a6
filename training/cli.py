"""memoria command line: `python -m training <command> --task ... [--preset ...] [--set key=value ...]`.

data             fetch the pinned data set and prepare its splits
train            train, export + verify + register the bundle, promote it if it beats the champion
retrain          train again with the champion's own config (on the data as it is now), then the same gate;
                 --feedback: production's corrections join the training split
export           export the experiment's best run, register, promote if better
ensure-champion  train with the preset only for tasks that have no champion yet (used by `make run`)
baseline         peer model on the same test split, logged as its own MLflow run
study            sentiment: the peer, each cell, each technique, default and full on one split (docs/measured.md);
                 trains only variants without a finished run (--variant NAME to pick, --retrain to redo)
sweep            a grid over config keys (--axes "model.cell=rnn,lstm model.init=xavier,orthogonal"), each point
                 a training run nested under one parent run that logs the comparison (nothing is registered)
promote          move the champion alias to a registered version
rollback         move the champion alias back to the version it replaced (it is never promoted again by itself)
history          every move of the champion alias: versions, reason, scores, who, when
status           registered versions and champions
pull             copy the champion bundles into --to (default bundles/), e.g. for `make bento`
sign-bundle PATH sign an existing bundle with the signing key (MEMORIA_SIGNING_KEY or the local pair)
drift            the inference log against the champion's training profile: distances, figures, novel words,
                 feedback disagreement, logged as a run of the memoria-drift experiment (`make drift`)
ui-links         links that open each experiment's runs table in the MLflow UI (`make ui` prints them)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from serving.contract.names import TASKS
from training.config import PRESETS, Workspace, apply_overrides, from_dict
from training.tasks import preset, task_named


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command",
        choices=[
            "data",
            "train",
            "retrain",
            "export",
            "ensure-champion",
            "baseline",
            "study",
            "sweep",
            "promote",
            "rollback",
            "history",
            "status",
            "pull",
            "sign-bundle",
            "ui-links",
            "drift",
        ],
    )
    parser.add_argument("path", nargs="?", help="sign-bundle: the bundle folder to sign")
    parser.add_argument("--task", default="sentiment", choices=[*TASKS, "all"])
    parser.add_argument("--preset", default="default", choices=PRESETS)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set model.cell=gru --set optim.max_epochs=3",
    )
    parser.add_argument("--version", help="registry version (promote)")
    parser.add_argument("--to", default="bundles", help="destination folder (pull)")
    parser.add_argument("--variant", action="append", default=[], help="study: only this variant (repeatable)")
    parser.add_argument("--retrain", action="store_true", help="study: train again even if a finished run exists")
    parser.add_argument("--axes", default="", help='sweep: "key=v1,v2 key2=v3,v4" (every combination is trained)')
    parser.add_argument("--url", default="http://127.0.0.1:5000", help="ui-links: where the MLflow UI answers")
    parser.add_argument(
        "--feedback", action="store_true", help="retrain: add production's corrections to the training split"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs, CI)")
    parser.add_argument(
        "--fetch-only", action="store_true", help="data: only download the pinned artifacts, prepare nothing"
    )
    args = parser.parse_args(argv)
    _quiet_logs()

    if args.command == "sign-bundle":
        return _sign_bundle(args.path)
    if args.path:
        parser.error(f"{args.command} takes no PATH argument (only sign-bundle does)")
    if args.feedback and args.command != "retrain":
        parser.error("--feedback is for retrain (make retrain TASK=... FEEDBACK=1)")
    if args.fetch_only and args.command != "data":
        parser.error("--fetch-only is for data (make data TASK=... ARGS=--fetch-only)")
    ws = Workspace.from_env()
    if args.command == "ui-links":
        from training.tracking.store import runs_page_links, use_store

        print("MLflow UI, each experiment's runs (MLflow 3.17 opens its GenAI view on a plain experiment link):")
        for line in runs_page_links(use_store(ws), args.url):
            print(f"  {line}")
        return 0
    tasks = list(TASKS) if args.task == "all" else [args.task]
    progress = not args.no_progress and sys.stderr.isatty()
    try:
        if args.command == "ensure-champion":
            _ensure_champions(args, tasks, ws, progress)
        else:
            for task in tasks:
                _run(args, task, ws, progress)
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        # A refusal from the tracking server (e.g. 403 for an account without the right) is the user's to fix,
        # not a bug: one clear line instead of a traceback. mlflow is imported here so `--help` stays fast.
        from mlflow.exceptions import MlflowException

        if not isinstance(e, MlflowException):
            raise
        print(f"error: the tracking server refused: {e}", file=sys.stderr)
        return 2
    return 0


def _quiet_logs() -> None:
    """Our INFO lines, other libraries' warnings; Lightning keeps its own handler (no duplicate lines)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("training").setLevel(logging.INFO)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).propagate = False
        logging.getLogger(name).addFilter(lambda record: "litlogger" not in record.getMessage())


def _run(args: argparse.Namespace, task: str, ws: Workspace, progress: bool) -> None:
    cfg = apply_overrides(preset(task, args.preset), args.overrides)
    if args.command == "data" and args.fetch_only:
        from training.tasks import fetch_data

        fetched = fetch_data(cfg, ws)
        print(f"{task}: {len(fetched)} pinned download(s) in place in {ws.artifact_cache}")
    elif args.command == "data":
        _prepare_data(cfg, ws, progress)
    elif args.command == "train":
        _train_and_publish(cfg, ws, progress)
    elif args.command == "retrain":
        config, champion_run = champion_config(ws, task)
        feedback = ["feedback.use=true"] if args.feedback else []  # training/data/feedback.py
        _train_and_publish(apply_overrides(config, [*feedback, *args.overrides]), ws, progress, champion_run)
    elif args.command == "export":
        from training.registry.publish import export_best

        _print(export_best(ws, task_named(task)))
    elif args.command == "sweep":
        from training.experiments.sweep import run_sweep

        run_sweep(task_named(task), args.preset, args.axes, args.overrides, ws, progress)
    elif args.command == "study":
        from training.experiments.study import STUDY_TASK, run_study

        if task != STUDY_TASK:
            raise ValueError(f"study exists for --task {STUDY_TASK} only")
        print(run_study(ws, args.variant or None, args.retrain))
    elif args.command == "baseline":
        print(json.dumps(task_named(task).run_peers(cfg, ws), indent=2))
    elif args.command == "promote":
        from training.registry.promotion import promote
        from training.tracking.store import use_store

        if not args.version:
            raise ValueError("promote needs --version")
        promote(use_store(ws), task, args.version)
        print(f"{task}: champion -> version {args.version}")
    elif args.command == "rollback":
        from training.registry.promotion import rollback
        from training.tracking.store import use_store

        print(f"{task}: champion -> version {rollback(use_store(ws), task)}")
    elif args.command == "history":
        from training.registry.alias_history import read_history
        from training.tracking.store import use_store

        moves = read_history(use_store(ws), task)
        print(f"{task}: {len(moves)} move(s) of the champion alias" + (":" if moves else ""))
        for move in moves:
            print("  " + move.line())
    elif args.command == "status":
        _status(ws, task)
    elif args.command == "pull":
        _pull(ws, task, Path(args.to))
    elif args.command == "drift":
        from training.production.drift_report import run_drift_report

        print("\n".join(run_drift_report(ws, task).lines()))


def _ensure_champions(args: argparse.Namespace, tasks: list[str], ws: Workspace, progress: bool) -> None:
    """Train the preset for each task without a champion (`make run`). While the first of them trains, a background
    process downloads the pinned data artifacts of the others (`data --fetch-only`): the downloads wait on the
    network, not on the cores, so they overlap training instead of following it (docs/measured.md, "Time"). Each later
    task waits for its downloads, then prepares and trains as usual; if the download process failed, preparing fetches
    again, so a failure shows where it can be read."""
    from training.registry.promotion import champion
    from training.tracking.store import use_store

    client = use_store(ws)
    missing = []
    for task in tasks:
        current = champion(client, task)
        if current is None:
            missing.append(task)
        else:
            print(f"{task}: champion is version {current.version} (run {current.run_id}); not retraining")
    background: dict[str, tuple[subprocess.Popen, Path]] = {}
    try:
        for position, task in enumerate(missing):
            cfg = apply_overrides(preset(task, args.preset), args.overrides)
            if position == 0:
                _prepare_data(cfg, ws, progress)  # its own downloads first: no two processes fetch the same file
                for later in missing[1:]:
                    background[later] = _fetch_in_background(later, args, ws)
            elif task in background:
                process, log = background.pop(task)
                if process.wait() != 0:
                    print(f"{task}: fetching its data in the background failed (log: {log}); fetching it here")
            print(f"{task}: no champion yet, training preset {cfg.preset}")
            _train_and_publish(cfg, ws, progress)
    finally:
        for process, _ in background.values():  # the first training failed or was interrupted: stop them too
            process.terminate()


def _fetch_in_background(task: str, args: argparse.Namespace, ws: Workspace) -> tuple[subprocess.Popen, Path]:
    """`python -m training data --fetch-only` for `task` in a child process (the same workspace: same environment
    and folder), its output in a log file. Only the downloads: preparing beside a training at the same CPU
    priority made sentiment's first epoch end 249 s into its run instead of 90 s, at the lowest priority each
    domain's download waited for the previous domain's extraction, so most downloads came after the training, and
    preparing at the lowest priority after the downloads got 2% of a core: torch's OpenMP threads spin between
    operations, so the training leaves no idle core time, and it still lost 45 s to the preparation while saving 22
    (docs/measured.md, "Preparing translation's data beside sentiment's training")."""
    log = ws.data_dir / f"fetch-{task}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "training", "data", "--task", task, "--preset", args.preset, "--fetch-only"]
    command += [f"--set={override}" for override in args.overrides]
    print(f"{task}: fetching its data in the background while the first model trains (log: {log})")
    with log.open("w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT), log


def champion_config(ws: Workspace, task: str):
    """The whole config the champion's run was trained with (its logged config.json), and that run's id."""
    from training.registry.promotion import champion
    from training.tracking.store import use_store

    client = use_store(ws)
    current = champion(client, task)
    if current is None:
        raise ValueError(f"{task} has no champion to retrain: make train TASK={task} first")
    with tempfile.TemporaryDirectory() as tmp:
        logged = json.loads(Path(client.download_artifacts(current.run_id, "config.json", tmp)).read_text())
    print(f"{task}: retraining with the config of champion v{current.version} (run {current.run_id})")
    return from_dict(task_named(task).config, logged), current.run_id


def _prepare_data(cfg, ws: Workspace, progress: bool) -> None:
    from training.tasks import fetch_data, prepare_data

    fetch_data(cfg, ws)  # also what training reads beside the splits (a lexicon): `make data`, then offline
    prepared = prepare_data(cfg, ws, progress)
    print(f"{cfg.task}: prepared in {prepared.dir}")
    print(json.dumps(prepared.card.get("splits", prepared.card), indent=2, default=str))


def _train_and_publish(cfg, ws: Workspace, progress: bool, champion_run: str = "") -> None:
    """Train, then export + register + gate. `champion_run` (retrain): say whether the data changed since it."""
    from training.tasks import publish_run, train

    result = train(cfg, ws, progress=progress)
    if result is None:  # a rank > 0 of a multi-process run: it only trained; rank 0 reports and publishes
        return
    shown = {k: round(v, 4) for k, v in sorted(result.metrics.items()) if not k.startswith("final_")}
    print(f"{cfg.task}: run {result.run_id} trained in {result.seconds:.0f}s")
    print(json.dumps(shown, indent=2))
    if champion_run:
        from training.registry.evaluation_sets import data_change
        from training.tracking.store import use_store

        print(f"{cfg.task}: {data_change(use_store(ws), champion_run, result.run_id)}")
    _print(publish_run(ws, result.run_id))


def _print(result) -> None:
    d = asdict(result)
    verdict = "promoted to champion" if d["promoted"] else f"not promoted (champion stays v{d['champion_version']})"
    served = f", serves {d['served_precision']}" if d.get("served_precision") else ""
    print(
        f"{d['task']}: registered version {d['version']} (score {d['score']:.4f}, parity max diff "
        f"{d['parity_max_abs_diff']:.1e}{served}), {verdict}"
    )
    if d.get("gate"):
        print(f"{d['task']}: gate: {d['gate']}")


def _pull(ws: Workspace, task: str, dest: Path) -> None:
    import shutil
    import tempfile

    from serving.contract.registry import champion_bundle

    with tempfile.TemporaryDirectory() as cache:
        served = champion_bundle(task, ws.tracking_uri, Path(cache))
        target = dest / task
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(served.bundle.path, target)
    print(f"{task}: {served.label} -> {target}")


def _sign_bundle(path: str | None) -> int:
    from serving.contract.bundle import BundleError
    from training.export.signing import sign_bundle

    if not path:
        print("error: sign-bundle needs the bundle folder: python -m training sign-bundle PATH", file=sys.stderr)
        return 2
    try:
        bundle = sign_bundle(Path(path))
    except (BundleError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{bundle.task}: signed {path} (sha256:{bundle.short_digest}, unchanged)")
    return 0


def _status(ws: Workspace, task: str) -> None:
    from training.registry.promotion import champion
    from training.tracking.store import use_store

    client = use_store(ws)
    current = champion(client, task)
    versions = client.search_model_versions(f"name = '{task}'")
    print(f"{task}: {len(versions)} registered version(s); champion: {current.version if current else 'none'}")
    for v in sorted(versions, key=lambda v: int(v.version)):
        score = client.get_run(v.run_id).data.metrics.get("selection_score")
        mark = "*" if current and v.version == current.version else " "
        print(f" {mark} v{v.version}  run {v.run_id}  score {score}")


if __name__ == "__main__":
    sys.exit(main())
