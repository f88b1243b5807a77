"""Fusion picks, per metric, what its definition picks: the first of the best values (a value over
no value, then the better quality), cadence only from trunks and footpod."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.estimators.breathing import steps_per_breath_metric
from monitor.fusion import _QUALITY_RANK, _fuse_cadence, fuse, stride_length
from monitor.metrics import METRIC_NAMES, MetricName, MetricValue

Answer = dict[MetricName, MetricValue]

metric_values = st.builds(
    MetricValue,
    st.one_of(st.none(), st.sampled_from([0.0, 30.0, 170.0, 175.0, 181.0, 3.2])),
    st.sampled_from(list(_QUALITY_RANK)),
)
answers = st.dictionaries(st.sampled_from(METRIC_NAMES), metric_values, max_size=8)
footpods = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"cadence_spm": metric_values, "speed_mps": metric_values, "stride_length_m": metric_values}
    ),
)


def _plain_fuse(
    footpod: Mapping[MetricName, MetricValue] | None, trunks: list[Answer], others: list[Answer]
) -> Answer:
    def best(values: list[MetricValue]) -> MetricValue:
        return min(values, key=lambda v: (v.value is None, _QUALITY_RANK[v.quality]))

    candidates: dict[MetricName, list[MetricValue]] = {}
    for source in [*trunks, *others]:
        for name, value in source.items():
            candidates.setdefault(name, []).append(value)
    out: Answer = {n: best(vs) for n, vs in candidates.items() if n != "cadence_spm"}
    imus = [t["cadence_spm"] for t in trunks if "cadence_spm" in t]
    pod = None if footpod is None else footpod.get("cadence_spm")
    out["cadence_spm"] = _fuse_cadence(pod, best(imus) if imus else None)
    if footpod is not None:
        out["speed_mps"] = footpod["speed_mps"]
    out["stride_length_m"] = stride_length(out.get("speed_mps"), out["cadence_spm"])
    if "breathing_rate_bpm" in out:
        out["steps_per_breath"] = steps_per_breath_metric(
            out["cadence_spm"], out["breathing_rate_bpm"]
        )
    return {name: out.get(name, MetricValue.missing()) for name in METRIC_NAMES}


@settings(max_examples=500, deadline=None)
@given(footpods, st.lists(answers, max_size=3), st.lists(answers, max_size=3))
def test_fuse_keeps_the_first_of_the_best(
    footpod: Answer | None, trunks: list[Answer], others: list[Answer]
) -> None:
    fused = fuse(footpod, iter(trunks), others)
    expected = _plain_fuse(footpod, trunks, others)
    assert list(fused) == list(METRIC_NAMES)
    assert all(fused[name] is expected[name] or fused[name] == expected[name] for name in fused)
