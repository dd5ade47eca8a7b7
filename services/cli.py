"""`counterpoint schedule ...` (steer a live run's curriculum over REST) and `counterpoint serve`
(the control plane on this machine, over the run folders under --runs-dir).

The `counterpoint` command (`counterpoint.cli`) calls `register(sub)` on its subparsers and
`main_for(args, make_submitter)` for these commands. This package does not import the cluster
package: the way `serve --ray-address` submits runs to a Ray cluster is handed in as
`make_submitter`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from counterpoint import exit_codes
from counterpoint.services.client import DEFAULT_URL, ApiError, ControlPlaneClient, Unreachable

TOKEN_ENV = "COUNTERPOINT_TOKEN"
URL_ENV = "COUNTERPOINT_URL"
COMMANDS = ("schedule", "serve")

Submit = Callable[[Any, str | None], str]
"""POST /v1/runs's way to a cluster: `(config, name) -> job id`."""
MakeSubmitter = Callable[..., Submit]
"""`make_submitter(address, token_file=..., no_auth=...)`: a Submit for the Ray Jobs API at
`address` (`counterpoint.cluster.jobs_cli.submitter`); raises RuntimeError when it cannot."""

SCHEDULE_EPILOG = """\
examples:
  counterpoint schedule show --run demo
  counterpoint schedule reorder creative structured --run demo --reason "creative first"
  counterpoint schedule pause --run demo                    # the whole run waits at its next step
  counterpoint schedule resume --stage creative --run demo
  counterpoint schedule set-weight structured math 0.5 --run demo --base-version 7
  counterpoint schedule set-entropy-target structured code 0.3 --run demo   # "none" removes it
  counterpoint schedule audit --run demo

The token comes from --token or $COUNTERPOINT_TOKEN (viewer tokens read, operator tokens write);
the URL from --url or $COUNTERPOINT_URL (default http://127.0.0.1:8000). Without --run, the only
run served is used. With --base-version a write is refused (409) unless the schedule is still at
that version; reorder without it uses the version it has just read. Changes apply at the run's
next step boundary.

""" + exit_codes.epilog()


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--url", default=os.environ.get(URL_ENV, DEFAULT_URL), help="control plane URL (default: %(default)s)"
    )
    p.add_argument("--run", help="run id (default: the only run served)")
    p.add_argument(
        "--token",
        default=None,
        help=f"bearer token (default: ${TOKEN_ENV}, which is better: arguments show in process lists)",
    )
    p.add_argument("--json", action="store_true", help="print the API's JSON answer")
    return p


def _write() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--base-version", type=int, help="refuse the change unless the schedule is at this version")
    p.add_argument("--reason", default="", help="why, for the audit log")
    return p


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `schedule` and `serve` commands to the `counterpoint` subparsers."""
    common, write = _common(), _write()
    sched = sub.add_parser(
        "schedule",
        help="show or change a live run's curriculum (REST client)",
        description="Show or change the curriculum of a live run through the control plane.",
        epilog=SCHEDULE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ops = sched.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    ops.add_parser("runs", parents=[common], help="list the runs served")
    show = ops.add_parser("show", parents=[common], help="the stages, their progress and versions")
    # its own dest: `counterpoint --version` is the top-level parser's `version`
    show.add_argument("--version", type=int, dest="schedule_version", metavar="N", help="show an older version")
    ops.add_parser("status", parents=[common], help="step, active stage, latest and applied version")
    reorder = ops.add_parser("reorder", parents=[common, write], help="put the stages in a new order")
    reorder.add_argument(
        "stages", nargs="+", metavar="STAGE", help="every stage, in the new order (finished ones may be left out)"
    )
    for name, what in (("pause", "pause"), ("resume", "resume")):
        p = ops.add_parser(name, parents=[common, write], help=f"{what} the whole run, or one stage with --stage")
        p.add_argument("--stage", help=f"the stage to {what} (default: the whole run)")
    ops.add_parser("advance", parents=[common, write], help="finish the active stage now")
    weight = ops.add_parser("set-weight", parents=[common, write], help="set a domain's weight in a stage")
    weight.add_argument("stage")
    weight.add_argument("domain")
    weight.add_argument("weight", type=float)
    target = ops.add_parser(
        "set-entropy-target", parents=[common, write], help="set a domain's entropy target in a stage"
    )
    target.add_argument("stage")
    target.add_argument("domain")
    target.add_argument("target", help='entropy in nats, or "none" to remove the target')
    audit = ops.add_parser("audit", parents=[common], help="the schedule's change log")
    audit.add_argument("--since", type=int, default=0, help="only versions after this one")
    metrics = ops.add_parser("metrics", parents=[common], help="per-domain step metrics")
    metrics.add_argument("--since", type=int, default=0, help="only steps after this one")

    serve = sub.add_parser(
        "serve",
        help="serve the control plane for the runs in a folder (uvicorn)",
        description="Serve the REST control plane over every run folder under --runs-dir. Tokens "
        "come from $COUNTERPOINT_TOKENS_FILE or $COUNTERPOINT_OPERATOR_TOKEN / "
        "$COUNTERPOINT_VIEWER_TOKEN. SIGTERM or Ctrl-C stops the server gracefully (exit 143 or 130).",
        epilog=exit_codes.epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--runs-dir", default="runs", help="folder holding the run folders (default: %(default)s)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--ray-serve",
        metavar="RAY_ADDRESS",
        help="host the app with Ray Serve on this Ray cluster ('auto' from a cluster node, "
        "'local' for a single-node dev cluster) instead of plain uvicorn",
    )
    serve.add_argument("--ray-address", help="Ray Jobs API (http://HOST:8265) that POST /v1/runs submits runs to")
    serve.add_argument("--ray-token-file", help="the Ray cluster's auth token (or RAY_AUTH_TOKEN[_PATH])")
    serve.add_argument("--ray-no-auth", action="store_true", help="no Ray token (loopback Ray addresses only)")
    serve.add_argument("--no-auth", action="store_true", help="no tokens; only allowed on a loopback address")


def main_for(args: argparse.Namespace, make_submitter: MakeSubmitter | None = None) -> int:
    """Run a `schedule` or `serve` command; the exit status (`counterpoint.exit_codes`: on an
    error, the one of its HTTP status, with the API's message on one line).
    `make_submitter` serves `serve --ray-address`; without it that flag is refused (exit 2)."""
    if args.command == "serve":
        return _serve(args, make_submitter)
    token = args.token or os.environ.get(TOKEN_ENV)
    try:
        with ControlPlaneClient(args.url, token) as client:
            return _schedule(client, args)
    except ApiError as err:
        print(f"counterpoint: {_error_line(err, token)}", file=sys.stderr)
        return err.exit_code


def _error_line(err: ApiError, token: str | None) -> str:
    """The API's message on one line, with what to do about it where the API cannot know."""
    line = " ".join(str(err).split())
    if isinstance(err, Unreachable):
        return f"{line}; is `counterpoint serve` running there? (--url or ${URL_ENV})"
    if err.status == 401:
        fix = f"set ${TOKEN_ENV} (or pass --token)" if not token else f"check ${TOKEN_ENV} or --token"
        return f"{line}; {fix}"
    if err.status == 403:
        return f"{line}; changes need an operator token"
    return line


def _schedule(client: ControlPlaneClient, args: argparse.Namespace) -> int:
    cmd = args.schedule_command
    if cmd == "runs":
        return _print(args, client.runs(), _format_runs)
    run = args.run or _only_run(client)
    write = {"base_version": getattr(args, "base_version", None), "reason": getattr(args, "reason", "")}
    if cmd == "show":
        return _print(args, client.schedule(run, args.schedule_version), _format_schedule)
    if cmd == "status":
        return _print(args, client.status(run), lambda s: _format_runs({"runs": [s]}))
    if cmd == "audit":
        return _print(args, client.audit(run, args.since), _format_audit)
    if cmd == "metrics":
        return _print(args, client.metrics(run, args.since), _format_metrics)
    if cmd == "reorder":
        view = client.reorder(run, args.stages, **write)
    elif cmd in ("pause", "resume"):
        view = getattr(client, cmd)(run, args.stage, **write)
    elif cmd == "advance":
        view = client.advance(run, **write)
    elif cmd == "set-weight":
        view = client.set_domain(run, args.stage, args.domain, weight=args.weight, **write)
    else:  # set-entropy-target
        clear = args.target.lower() == "none"
        try:
            value = None if clear else float(args.target)
        except ValueError:
            raise ApiError(None, f'entropy target must be a number or "none", got {args.target!r}') from None
        view = client.set_domain(
            run, args.stage, args.domain, entropy_target=value, clear_entropy_target=clear, **write
        )
    return _print(args, view, _format_schedule)


def _only_run(client: ControlPlaneClient) -> str:
    ids = [r["run_id"] for r in client.runs()["runs"]]
    if not ids:
        raise ApiError(None, f"no runs are served at {client.url}", exit_code=exit_codes.NOT_FOUND)
    if len(ids) > 1:
        raise ApiError(None, f"several runs are served; pass --run ({', '.join(ids)})")
    return ids[0]


def _print(args: argparse.Namespace, data: dict, fmt) -> int:
    print(json.dumps(data, indent=2) if args.json else fmt(data))
    return 0


def _format_runs(data: dict) -> str:
    lines = []
    for r in data["runs"]:
        applied = r["applied_version"] if r["applied_version"] is not None else "-"
        lines.append(
            f"{r['run_id']}  {r['status']}  step {r['step'] if r['step'] is not None else '-'}  "
            f"stage {r['stage'] or '-'}  version {r['latest_version']} (applied {applied})"
        )
    for r in data.get("unavailable", []):
        lines.append(f"{r['run_id']}  unavailable: {r['detail']}")
    return "\n".join(lines) or "no runs"


def _rule(rule: dict) -> str:
    if rule["type"] == "steps":
        return f"after {rule['steps']} steps"
    if rule["type"] == "plateau":
        return f"{rule['domain']} {rule['metric']} plateau (window {rule['window']}, min_delta {rule['min_delta']:g})"
    if rule["type"] == "entropy":
        return f"{rule['domain']} {rule['metric']} {rule['direction']} {rule['threshold']:g}"
    return "manual"


def _format_schedule(view: dict) -> str:
    applied = view["applied_version"] if view["applied_version"] is not None else "-"
    flags = (" PAUSED" if view["paused"] else "") + (" FINISHED" if view["finished"] else "")
    lines = [
        f"run {view['run_id']}  version {view['version']} (latest {view['latest_version']}, applied {applied}){flags}"
    ]
    progress = {p["name"]: p for p in view["progress"]}
    for i, stage in enumerate(view["stages"], 1):
        p = progress.get(stage["name"], {})
        domains = ", ".join(
            f"{d} {s['weight']:g}" + (f" (H target {s['entropy_target']:g})" if s["entropy_target"] is not None else "")
            for d, s in stage["domains"].items()
        )
        steps = f"{p['steps']} steps" if p.get("steps") is not None else ""
        lines.append(
            f"  {i}. {stage['name']} [{stage['kind']}] {p.get('status', '?')}{' PAUSED' if stage['paused'] else ''}"
            f"  {steps}  advance: {_rule(stage['advance'])}  domains: {domains}"
        )
    return "\n".join(lines)


def _format_audit(data: dict) -> str:
    return (
        "\n".join(
            f"v{e['version']}  {e['time']}  {e['author']}  {e['action']}  step {e['step']}"
            + (f"  {json.dumps(e['detail'])}" if e["detail"] else "")
            + (f"  -- {e['reason']}" if e["reason"] else "")
            for e in data["entries"]
        )
        or "no entries"
    )


def _format_metrics(data: dict) -> str:
    lines = []
    for r in data["records"]:
        parts = [
            f"{d}: "
            + " ".join(
                f"{k} {v:.4g}"
                for k, v in m.items()
                if isinstance(v, float | int)
                and not isinstance(v, bool)
                and k in ("reward_mean", "accuracy", "entropy_mean")
            )
            for d, m in r["domains"].items()
        ]
        lines.append(f"step {r['step']} (v{r['schedule_version']}, {r['stage']})  " + " | ".join(parts))
    return "\n".join(lines) or "no metrics"


def _jobs_submitter(args: argparse.Namespace, make_submitter: MakeSubmitter | None) -> Submit | None:
    """POST /v1/runs's way to a cluster: the Ray Jobs API at --ray-address (None without it)."""
    if not args.ray_address:
        return None
    if make_submitter is None:
        raise RuntimeError("--ray-address: this command was started without a way to submit Ray jobs")
    return make_submitter(args.ray_address, token_file=args.ray_token_file, no_auth=args.ray_no_auth)


def _serve(args: argparse.Namespace, make_submitter: MakeSubmitter | None) -> int:
    import uvicorn

    from counterpoint.services.app import create_app
    from counterpoint.services.auth import Auth, AuthConfigError
    from counterpoint.services.backend import LocalBackend

    try:
        auth = Auth.disabled_mode() if args.no_auth else Auth.from_env()
        submit = _jobs_submitter(args, make_submitter)
        app = create_app(LocalBackend(args.runs_dir), auth, host=args.host, submit=submit)
    except (AuthConfigError, ValueError, RuntimeError) as err:
        print(f"counterpoint serve: {err}", file=sys.stderr)
        return getattr(err, "code", exit_codes.USAGE)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")  # the audit lines of each change
    if args.ray_serve:
        return _serve_on_ray(app, args)
    # uvicorn.run would swallow Ctrl-C (exit 0); its Server stops gracefully on SIGINT and SIGTERM,
    # then raises the signal again under our handlers: KeyboardInterrupt here, Terminated (143) above.
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info"))
    try:
        server.run()
    except KeyboardInterrupt:
        return exit_codes.INTERRUPTED
    return exit_codes.OK


def _serve_on_ray(app, args: argparse.Namespace) -> int:
    """The same app as a Ray Serve deployment. Serve's HTTP port does not check Ray's token, so
    the app's own bearer-token auth is what guards it, exactly as under uvicorn."""
    import ray

    sigterm = signal.getsignal(signal.SIGTERM)  # ray.init puts in its own, which exits without cleanup
    if args.ray_serve == "local":
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a single-node dev cluster on this host
        ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1", num_cpus=2)
    else:
        ray.init(address=args.ray_serve)
    if callable(sigterm):
        signal.signal(signal.SIGTERM, sigterm)
    try:
        return _run_on_serve(app, args)
    except KeyboardInterrupt:
        return exit_codes.INTERRUPTED
    finally:
        ray.shutdown()  # a local cluster stops with its server; a joined one is only disconnected


def _run_on_serve(app, args: argparse.Namespace) -> int:
    from ray import serve

    serve.start(http_options={"host": args.host, "port": args.port})

    @serve.deployment(name="counterpoint-control-plane", num_replicas=1, ray_actor_options={"num_cpus": 0.5})
    @serve.ingress(app)
    class ControlPlane:
        pass

    serve.run(ControlPlane.bind(), name="counterpoint-control-plane", route_prefix="/", blocking=True)
    return exit_codes.OK
