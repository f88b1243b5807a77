"""The ``runmon`` command line (DESIGN §3.6).

Exit codes: 0 success, 1 a runtime failure (broker, network, a Bluetooth adapter or transport
that cannot be used), 2 bad input (a recording line that stops the reader, an invalid scenario,
rule or runner file, a bad argument).

``record`` and ``run`` stop cleanly on Ctrl-C or SIGTERM (sensors disconnected, the recording
flushed, the service's report and ``offline`` published); a second signal stops at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from monitor.errors import ConfigError, InvalidIdentifier, MonitorError
from rules.errors import RulesError
from sensors.errors import SensorsError
from simulators.errors import SimulatorError

if TYPE_CHECKING:
    from sensors.ble.client import SensorStatus
    from simulators.scenario import Scenario

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
    from simulators.session import effective_duration_s, write_recording, write_truth

    scenario = load_scenario(args.scenario)
    duration_s = effective_duration_s(scenario, args.duration)
    if args.serve:
        return _serve_scenario(args, scenario, duration_s)
    count = write_recording(scenario, args.out, duration_s=duration_s, seed=args.seed)
    print(
        f"wrote {args.out}: scenario {scenario.name!r}, {duration_s:.0f} s, "
        f"seed {args.seed}, {count} records"
    )
    if args.truth is not None:
        rows = write_truth(scenario, args.truth, duration_s=duration_s, seed=args.seed)
        print(f"wrote {args.truth}: ground truth, {rows} rows")
    return EXIT_OK


def _serve_scenario(args: argparse.Namespace, scenario: Scenario, duration_s: float) -> int:
    """``simulate --serve``: the scenario's sensors as virtual peripherals over TCP HCI."""
    from monitor.config import config_for_header, dump_runner_config
    from sensors.ble import HciServer
    from simulators.peripherals.gatt_server import StreamStats
    from simulators.serve_scenario import (
        ScenarioServer,
        plan_sensors,
        serve_over_tcp,
        served_counts,
    )
    from simulators.session import recording_header, simulated_records

    header = recording_header(scenario)
    plan = plan_sensors(header, simulated_records(scenario, duration_s, args.seed))

    def ready(hci: HciServer, _server: ScenarioServer) -> None:
        spec = hci.transport_spec
        print(
            f"serving scenario {scenario.name!r}: {len(plan.sensors)} virtual sensors, "
            f"{duration_s:.0f} s at {args.speedup:g}x, seed {args.seed}; "
            f"--ble-transport {spec}"
        )
        for sensor in plan.sensors:
            print(f"  {sensor.id:<8} {sensor.spec.profile:<14} {sensor.name:<22} {sensor.address}")
        if args.config_out is not None:
            names = {sensor.id: sensor.name for sensor in plan.sensors}
            comment = (
                f"The sensors of scenario {scenario.name!r}, as runmon simulate --serve runs them."
            )
            args.config_out.write_text(
                dump_runner_config(config_for_header(header, names), comment)
            )
            print(f"runner config for these sensors: {args.config_out}")
        config = args.config_out or "RUNNER.toml"
        print("in another terminal:")
        print(f"  .venv/bin/runmon scan --ble-transport {spec}")
        print(f"  .venv/bin/runmon record --config {config} --ble-transport {spec} --out run.jsonl")
        print("the run starts when a central first subscribes to a sensor; Ctrl-C stops")
        sys.stdout.flush()

    def done(stats: dict[tuple[str, str], StreamStats]) -> None:
        sent, dropped = served_counts(stats)
        print(
            f"scenario served: {sent} notifications sent, {dropped} not delivered; "
            "the sensors stay up until Ctrl-C",
            flush=True,
        )

    async def serve() -> None:
        await _until_signalled(
            serve_over_tcp(
                plan,
                speedup=args.speedup,
                host=args.host,
                port=args.port,
                on_ready=ready,
                on_done=done,
            )
        )
        print("stopped serving", flush=True)

    asyncio.run(serve())
    return EXIT_OK


# -- analyze ---------------------------------------------------------------------------------


def _cmd_analyze(args: argparse.Namespace) -> int:
    import os

    from monitor.analyze import STDOUT, analyze_to_json
    from monitor.history import History
    from rules.config import load_rule_config

    rules = load_rule_config(args.rules) if args.rules else None
    to_stdout = str(args.json) == STDOUT
    # Rows stream into the document as they are made: memory does not grow with the recording.
    try:
        if args.history is None:
            result = analyze_to_json(args.recording, args.json, rules=rules)
        else:
            with History(args.history) as history:
                result = analyze_to_json(args.recording, args.json, rules=rules, history=history)
    except BrokenPipeError:
        # The reader of ``--json -`` went away (``| head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_RUNTIME
    codes = ", ".join(f"{c.code}@{c.t_s:.0f}s" for c in result.cues) or "none"
    print(
        f"analyzed {args.recording}: {result.duration_s:.1f} s, {result.row_count} rows, "
        f"cues: {codes}, bad lines: {result.errors} -> {'stdout' if to_stdout else args.json}",
        file=sys.stderr if to_stdout else sys.stdout,
    )
    return EXIT_OK


# -- BLE: scan / record / run -----------------------------------------------------------------


T = TypeVar("T")


async def _until_signalled(work: Coroutine[Any, Any, T]) -> T | None:
    """Run ``work`` until it ends or SIGINT/SIGTERM cancels it (None then)."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        if task.cancelled():
            return None
        raise
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def _stop_on_signals(stop: asyncio.Event) -> Callable[[], None]:
    """SIGINT/SIGTERM set ``stop`` (a clean stop); a second one cancels the main task."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal() -> None:
        if stop.is_set() and main is not None:
            main.cancel()
        stop.set()

    for signum in signals:
        loop.add_signal_handler(signum, on_signal)

    def restore() -> None:
        for signum in signals:
            loop.remove_signal_handler(signum)

    return restore


def _cmd_scan(args: argparse.Namespace) -> int:
    from sensors.ble.scan import format_result, scan

    results = asyncio.run(scan(args.timeout, args.ble_transport, every_device=args.all))
    if not results:
        print(f"no sensors found in {args.timeout:g} s", file=sys.stderr)
    print(f"{'PROFILE':<14} {'NAME':<20} {'ADDRESS':<17} {'RSSI':>8}")
    for result in results:
        print(format_result(result))
    return EXIT_OK


def _print_status(status: SensorStatus) -> None:
    from monitor.ble_feed import describe_status

    print(describe_status(status), file=sys.stderr, flush=True)


def _cmd_record(args: argparse.Namespace) -> int:
    from monitor.ble_feed import record
    from monitor.config import load_runner_config

    config = load_runner_config(args.config)

    async def run() -> int:
        stop = asyncio.Event()
        restore = _stop_on_signals(stop)
        until = f"for {args.duration:g} s" if args.duration else "until Ctrl-C"
        print(
            f"recording runner {config.runner_id!r} ({', '.join(config.sensors)}) "
            f"to {args.out} {until}",
            file=sys.stderr,
            flush=True,
        )
        try:
            summary = await record(
                config,
                args.out,
                transport=args.ble_transport,
                duration_s=args.duration,
                stop=stop,
                on_status=_print_status,
            )
        finally:
            restore()
        counts = ", ".join(
            f"{sensor} {summary.notifications.get(sensor, 0)}" for sensor in config.sensors
        )
        print(
            f"wrote {summary.path}: {summary.duration_s:.1f} s, {summary.records} records "
            f"(notifications: {counts})"
        )
        silent = [sensor for sensor in config.sensors if not summary.connects.get(sensor)]
        if silent:
            print(f"never connected: {', '.join(silent)}", file=sys.stderr)
        if summary.error is not None:
            print(f"runmon: error: recording ended early: {summary.error}", file=sys.stderr)
            return EXIT_RUNTIME
        return EXIT_OK

    return asyncio.run(run())


def _cmd_run(args: argparse.Namespace) -> int:
    from monitor.ble_feed import describe_status, run_live
    from monitor.config import load_runner_config
    from monitor.mqtt.client import parse_broker_url
    from monitor.mqtt.topics import Topics
    from rules.config import load_rule_config

    configs = [load_runner_config(path) for path in args.config]
    rules = load_rule_config(args.rules) if args.rules else None
    address = parse_broker_url(args.broker)
    several = len(configs) > 1

    def on_status(runner: str, status: SensorStatus) -> None:
        prefix = f"{runner}/" if several else ""
        print(prefix + describe_status(status), file=sys.stderr, flush=True)

    async def run() -> int:
        stop = asyncio.Event()
        restore = _stop_on_signals(stop)
        runners = ", ".join(c.runner_id for c in configs)
        print(f"runmon run: runners {runners} on {address.url}; Ctrl-C stops", flush=True)
        try:
            results = await run_live(
                configs,
                address,
                transport=args.ble_transport,
                topics=Topics(args.root),
                instance=args.instance,
                rules=rules,
                stop=stop,
                on_status=on_status,
            )
        finally:
            restore()
        for result in results:
            codes = ", ".join(f"{c.code}@{c.t_s:.0f}s" for c in result.cues) or "none"
            print(f"{result.runner}: {result.rows} rows, cues: {codes}, bad input: {result.errors}")
        return EXIT_OK

    return asyncio.run(run())


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

    p = sub.add_parser(
        "simulate", help="a simulated runner: write a recording, or serve virtual BLE sensors"
    )
    p.add_argument("--scenario", required=True, help="scenario name or TOML file")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--out", type=Path, help="recording to write (.jsonl)")
    what.add_argument(
        "--serve",
        action="store_true",
        help="serve the scenario's sensors as virtual BLE peripherals (bumble, over TCP)",
    )
    p.add_argument("--truth", type=Path, help="with --out: ground truth to write (.json)")
    p.add_argument("--duration", type=_positive_float, help="cap at S seconds of run time")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--speedup", type=_positive_float, default=1.0, help="with --serve: x real time (1)"
    )
    p.add_argument("--host", default="127.0.0.1", help="with --serve: address to listen on")
    p.add_argument("--port", type=int, default=0, help="with --serve: TCP port (0: any free)")
    p.add_argument(
        "--config-out", type=Path, help="with --serve: write a runner config for the sensors"
    )
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("scan", help="list nearby sensors: profile, name, address, RSSI")
    _ble_options(p)
    p.add_argument("--timeout", type=_positive_float, default=5.0, help="seconds to scan (5)")
    p.add_argument("--all", action="store_true", help="list every device, not only sensors")
    p.set_defaults(func=_cmd_scan)

    p = sub.add_parser("record", help="record a runner's sensors into a recording (.jsonl)")
    p.add_argument("--config", required=True, type=Path, help="runner configuration (TOML)")
    p.add_argument("--out", required=True, type=Path, help="recording to write (.jsonl)")
    _ble_options(p)
    p.add_argument(
        "--duration", type=_positive_float, help="stop after S seconds (default: Ctrl-C)"
    )
    p.set_defaults(func=_cmd_record)

    p = sub.add_parser("run", help="the live service on real (or served) sensors")
    p.add_argument(
        "--config",
        required=True,
        type=Path,
        action="append",
        help="runner configuration (TOML); repeat for several runners",
    )
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="broker URL")
    _ble_options(p)
    p.add_argument("--rules", type=Path, help="rule configuration (TOML)")
    p.add_argument("--root", default="runmon/v1", help="MQTT topic root (runmon/v1)")
    p.add_argument("--instance", default="local", help="service instance id (local)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("analyze", help="replay a recording into per-second metrics and cues")
    p.add_argument("recording", type=Path, help="recording (.jsonl)")
    p.add_argument(
        "--json", required=True, type=Path, help="analysis JSON to write ('-': standard output)"
    )
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


def _ble_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ble-transport",
        metavar="SPEC",
        help="bumble HCI transport (tcp-client:HOST:PORT from `simulate --serve`, usb:0, ...);"
        " default: the system's Bluetooth",
    )


def _app_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="broker URL")
    p.add_argument("--runner", required=True, help="runner id")
    p.add_argument("--root", default="runmon/v1", help="MQTT topic root (runmon/v1)")


def _sensors_exit_code(exc: SensorsError) -> int:
    """Bluetooth failures are runtime failures; everything else of sensors/ is bad input.

    Looked up lazily: importing the BLE stack (bumble) costs a third of a second that
    ``analyze`` and friends need not pay, and an error of an unimported module cannot occur.
    """
    ble_errors = sys.modules.get("sensors.ble.errors")
    if ble_errors is not None and isinstance(exc, ble_errors.BleError):
        return EXIT_RUNTIME
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except SensorsError as exc:
        _fail(_sensors_exit_code(exc), str(exc))
    except (SimulatorError, RulesError) as exc:
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
