"""The ``runmon`` command line (DESIGN §3.6).

Exit codes: 0 success, 1 a runtime failure (broker, network), 2 bad input (a recording line that
stops the reader, an invalid scenario or rule file, a bad argument).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from monitor.errors import ConfigError, InvalidIdentifier, MonitorError
from rules.errors import RulesError
from sensors.errors import SensorsError
from simulators.errors import SimulatorError

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2

DEFAULT_DEMO_SCENARIO = "stride_shorten"


def _fail(code: int, message: str) -> NoReturn:
    print(f"runmon: error: {message}", file=sys.stderr)
    raise SystemExit(code)


# -- simulate --------------------------------------------------------------------------------


def _cmd_simulate(args: argparse.Namespace) -> int:
    from simulators.scenario import load_scenario
    from simulators.session import effective_duration_s, write_recording

    scenario = load_scenario(args.scenario)
    duration_s = effective_duration_s(scenario, args.duration)
    count = write_recording(scenario, args.out, duration_s=duration_s, seed=args.seed)
    print(
        f"wrote {args.out}: scenario {scenario.name!r}, {duration_s:.0f} s, "
        f"seed {args.seed}, {count} records"
    )
    return EXIT_OK


# -- analyze ---------------------------------------------------------------------------------


def _cmd_analyze(args: argparse.Namespace) -> int:
    from monitor.analyze import analyze_recording, write_analysis
    from monitor.history import History
    from rules.config import load_rule_config

    rules = load_rule_config(args.rules) if args.rules else None
    if args.history is None:
        analysis = analyze_recording(args.recording, rules=rules)
    else:
        with History(args.history) as history:
            analysis = analyze_recording(args.recording, rules=rules, history=history)
    write_analysis(analysis, args.json)
    codes = ", ".join(f"{c.code}@{c.t_s:.0f}s" for c in analysis.cues) or "none"
    print(
        f"analyzed {args.recording}: {analysis.duration_s:.1f} s, {len(analysis.rows)} rows, "
        f"cues: {codes}, bad lines: {analysis.errors} -> {args.json}"
    )
    return EXIT_OK


# -- demo / listen ---------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo import DemoOptions, run_demo

    options = DemoOptions(
        scenario=args.scenario,
        duration_s=args.duration,
        speedup=args.speedup,
        seed=args.seed,
        broker_url=args.broker,
        root=args.root,
        instance=args.instance,
    )
    return asyncio.run(run_demo(options))


def _cmd_listen(args: argparse.Namespace) -> int:
    from monitor.listen import listen_command

    return asyncio.run(
        listen_command(
            broker_url=args.broker,
            runner=args.runner,
            root=args.root,
            as_json=args.json,
            count=args.count,
            timeout_s=args.timeout,
        )
    )


# -- pain / control --------------------------------------------------------------------------


def _cmd_pain(args: argparse.Namespace) -> int:
    from monitor.inbound import PainMessage

    message = PainMessage(level=args.level, location=args.location, radiating=args.radiating)
    return asyncio.run(_publish_app_message(args, "pain", message.model_dump(mode="json")))


def _cmd_control(args: argparse.Namespace) -> int:
    from monitor.inbound import ControlMessage

    message = ControlMessage(action=args.action, minutes=args.minutes)
    payload = message.model_dump(mode="json", exclude_none=True)
    return asyncio.run(_publish_app_message(args, "control", payload))


async def _publish_app_message(args: argparse.Namespace, kind: str, payload: dict[str, Any]) -> int:
    """Publish as a runner's app would: QoS 1, and the broker's PUBACK checked."""
    from monitor.mqtt.client import MqttLink, parse_broker_url
    from monitor.mqtt.topics import Topics

    topics = Topics(args.root)
    topic = topics.pain(args.runner) if kind == "pain" else topics.control(args.runner)
    async with MqttLink(parse_broker_url(args.broker)) as link:
        await link.publish(topic, payload, qos=1, content_type="application/json")
    print(f"published {kind} for runner {args.runner!r}: {json.dumps(payload)}")
    return EXIT_OK


# -- parser ----------------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runmon",
        description="Real-time running-form coach: BLE wearables in, spoken cues out over MQTT. "
        "runmon coaches form; it does not diagnose.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="write a recording of a simulated runner")
    p.add_argument("--scenario", required=True, help="scenario name or TOML file")
    p.add_argument("--out", required=True, type=Path, help="recording to write (.jsonl)")
    p.add_argument("--duration", type=_positive_float, help="cap at S seconds of run time")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("analyze", help="replay a recording into per-second metrics and cues")
    p.add_argument("recording", type=Path, help="recording (.jsonl)")
    p.add_argument("--json", required=True, type=Path, help="analysis JSON to write")
    p.add_argument("--rules", type=Path, help="rule configuration (TOML)")
    p.add_argument(
        "--history", type=Path, help="runner history (SQLite): use and update baselines, pain"
    )
    p.set_defaults(func=_cmd_analyze)

    p = sub.add_parser("demo", help="embedded broker + simulated runner + service, live")
    p.add_argument("--scenario", default=DEFAULT_DEMO_SCENARIO, help="scenario name or file")
    p.add_argument(
        "--duration", type=_positive_float, default=600.0, help="simulated seconds (600)"
    )
    p.add_argument("--speedup", type=_positive_float, default=20.0, help="x real time (20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--broker", help="use this broker (mqtt://host:port) instead of embedding one")
    p.add_argument("--root", default="runmon/v1", help="MQTT topic root (runmon/v1)")
    p.add_argument("--instance", default="demo", help="service instance id (demo)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("listen", help="print one runner's cues as a headphone app would")
    p.add_argument("--broker", required=True, help="broker URL, e.g. mqtt://127.0.0.1:1883")
    p.add_argument("--runner", required=True, help="runner id")
    p.add_argument("--root", default="runmon/v1", help="MQTT topic root (runmon/v1)")
    p.add_argument("--json", action="store_true", help="print each cue payload as JSON")
    p.add_argument("--count", type=int, help="exit after this many cues")
    p.add_argument("--timeout", type=_positive_float, help="exit after this many seconds")
    p.set_defaults(func=_cmd_listen)

    p = sub.add_parser("pain", help="report pain for a runner, as the runner's app would")
    _app_options(p)
    p.add_argument("--level", type=int, required=True, choices=range(11), metavar="0-10")
    p.add_argument(
        "--location",
        default="low_back",
        choices=["low_back", "mid_back", "upper_back", "hip", "leg", "other"],
    )
    p.add_argument("--radiating", action="store_true", help="the pain runs down the legs")
    p.set_defaults(func=_cmd_pain)

    p = sub.add_parser("control", help="start, stop, mute, unmute or snooze a runner's coach")
    _app_options(p)
    p.add_argument("action", choices=["start", "stop", "mute", "unmute", "snooze"])
    p.add_argument("--minutes", type=_positive_float, help="how long to snooze")
    p.set_defaults(func=_cmd_control)
    return parser


def _app_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="broker URL")
    p.add_argument("--runner", required=True, help="runner id")
    p.add_argument("--root", default="runmon/v1", help="MQTT topic root (runmon/v1)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except (SensorsError, SimulatorError, RulesError) as exc:
        _fail(EXIT_BAD_INPUT, str(exc))
    except (ConfigError, InvalidIdentifier) as exc:
        _fail(EXIT_BAD_INPUT, str(exc))
    except MonitorError as exc:
        _fail(EXIT_RUNTIME, str(exc))
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
