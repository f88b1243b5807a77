"""The ``runmon`` command line as a user runs it: real subprocesses, real files, real broker."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from monitor.mqtt.client import BrokerAddress
from monitor.mqtt.topics import Topics

RUNMON = str(Path(sys.executable).with_name("runmon"))


def run(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RUNMON, *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )


def test_simulate_then_analyze_writes_the_design_json(tmp_path: Path) -> None:
    rec, out = tmp_path / "run.jsonl", tmp_path / "run.json"
    sim = run("simulate", "--scenario", "stride_shorten", "--out", str(rec), "--seed", "4")
    assert sim.returncode == 0, sim.stderr
    assert "wrote" in sim.stdout
    ana = run("analyze", str(rec), "--json", str(out))
    assert ana.returncode == 0, ana.stderr
    doc = json.loads(out.read_text())
    assert set(doc) == {"runner", "duration_s", "series", "cues", "summary"}
    assert "stride_shorten" in [c["code"] for c in doc["cues"]]
    assert doc["series"][0]["t_s"] == 1
    assert "stride_shorten@" in ana.stdout


def test_simulate_duration_caps_the_run(tmp_path: Path) -> None:
    rec = tmp_path / "short.jsonl"
    assert (
        run("simulate", "--scenario", "steady", "--out", str(rec), "--duration", "30").returncode
        == 0
    )
    last = json.loads(rec.read_text().splitlines()[-1])
    assert 28 <= last["t"] <= 30


def test_analyze_stops_on_a_bad_line_with_exit_2_and_the_line_number(tmp_path: Path) -> None:
    rec = tmp_path / "run.jsonl"
    run("simulate", "--scenario", "steady", "--out", str(rec), "--duration", "60")
    lines = rec.read_text().splitlines(keepends=True)
    lines.insert(5, "this is not json\n")
    rec.write_text("".join(lines))
    result = run("analyze", str(rec), "--json", str(tmp_path / "out.json"))
    assert result.returncode == 2
    assert f"{rec}:6:" in result.stderr
    assert not (tmp_path / "out.json").exists()


def test_bad_rules_file_and_unknown_scenario_exit_2_naming_the_problem(tmp_path: Path) -> None:
    rec = tmp_path / "run.jsonl"
    run("simulate", "--scenario", "steady", "--out", str(rec), "--duration", "20")
    rules = tmp_path / "rules.toml"
    rules.write_text("[scheduling]\nform_min_gap_s = 'soon'\n")
    result = run("analyze", str(rec), "--json", str(tmp_path / "o.json"), "--rules", str(rules))
    assert result.returncode == 2
    assert "scheduling.form_min_gap_s" in result.stderr
    unknown = run("simulate", "--scenario", "marathon_on_mars", "--out", str(tmp_path / "x.jsonl"))
    assert unknown.returncode == 2
    assert "unknown scenario 'marathon_on_mars'" in unknown.stderr
    assert "stride_shorten" in unknown.stderr


def test_demo_on_its_embedded_broker_shows_the_cue_arriving() -> None:
    result = run("demo", "--duration", "600", "--speedup", "300", timeout_s=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broker: mqtt://127.0.0.1:" in result.stdout
    assert "runmon listen --broker mqtt://127.0.0.1:" in result.stdout
    assert "CUE stride_shorten" in result.stdout
    received = re.search(r"cues received over MQTT: (\d+) of (\d+)", result.stdout)
    assert received is not None
    assert received.group(1) == received.group(2)


def test_listen_prints_the_cue_a_demo_publishes(
    mqtt_address: BrokerAddress, topics: Topics
) -> None:
    listener = subprocess.Popen(
        [
            RUNMON,
            "listen",
            "--broker",
            mqtt_address.url,
            "--root",
            topics.root,
            "--runner",
            "r1",
            "--count",
            "3",
            "--timeout",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stderr is not None
        assert "listening for runner 'r1'" in listener.stderr.readline()  # subscribed
        demo = run(
            "demo",
            "--broker",
            mqtt_address.url,
            "--root",
            topics.root,
            "--speedup",
            "300",
            timeout_s=60,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        out, _ = listener.communicate(timeout=30)
    finally:
        if listener.poll() is None:
            listener.kill()
    assert listener.returncode == 0
    assert "r1 stride_shorten (priority 2): Shorten your stride" in out


def test_simulate_truth_has_the_shape_of_the_analysis(tmp_path: Path) -> None:
    rec, truth, out = tmp_path / "r.jsonl", tmp_path / "t.json", tmp_path / "a.json"
    sim = run(
        "simulate",
        "--scenario",
        "steady",
        "--out",
        str(rec),
        "--truth",
        str(truth),
        "--duration",
        "120",
        "--seed",
        "3",
    )
    assert sim.returncode == 0, sim.stderr
    assert run("analyze", str(rec), "--json", str(out)).returncode == 0
    truth_rows = json.loads(truth.read_text())["series"]
    analysis_rows = json.loads(out.read_text())["series"]
    # Truth runs to the scenario's end; the analysis to the recording's last notification.
    assert [r["t_s"] for r in analysis_rows] == [r["t_s"] for r in truth_rows][: len(analysis_rows)]
    assert len(truth_rows) - len(analysis_rows) <= 1
    metrics = set(analysis_rows[0]) - {"t_s", "phase", "quality"}
    assert set(truth_rows[0]) - {"t_s"} == metrics
    # Running at 100 s: both see the same cadence.
    assert abs(truth_rows[99]["cadence_spm"] - analysis_rows[99]["cadence_spm"]) < 1.0
