"""The characteristic -> decoder registry, and the one contract every registered decoder keeps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors import uuids
from sensors.errors import DecodeError
from sensors.gatt import (
    DECODERS,
    Decoder,
    decode_battery_level,
    decode_breath_block,
    decode_heart_rate_measurement,
    decode_imu_block,
    decode_imu_config,
    decode_pmd_control_point,
    decode_pmd_data,
    decode_rsc_feature,
    decode_rsc_measurement,
    decoder_for,
)
from sensors.profiles import PROFILE_CHARACTERISTICS

FAST = settings(max_examples=300, deadline=None)

EXPECTED: dict[str, Decoder] = {
    uuids.RSC_MEASUREMENT: decode_rsc_measurement,
    uuids.RSC_FEATURE: decode_rsc_feature,
    uuids.HEART_RATE_MEASUREMENT: decode_heart_rate_measurement,
    uuids.BATTERY_LEVEL: decode_battery_level,
    uuids.RUNMON_IMU_DATA: decode_imu_block,
    uuids.RUNMON_IMU_CONFIG: decode_imu_config,
    uuids.RUNMON_BREATH_DATA: decode_breath_block,
    uuids.PMD_DATA: decode_pmd_data,
    uuids.PMD_CONTROL_POINT: decode_pmd_control_point,
}


@pytest.mark.parametrize(("char_uuid", "decoder"), EXPECTED.items())
def test_decoder_for(char_uuid: str, decoder: Decoder) -> None:
    assert decoder_for(char_uuid) is decoder
    assert decoder_for(char_uuid.upper()) is decoder


def test_registry_is_exactly_the_expected_table() -> None:
    assert dict(DECODERS) == EXPECTED
    assert all(key == key.lower() for key in DECODERS)


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        DECODERS[uuids.PMD_DATA] = decode_battery_level  # type: ignore[index]  # deliberately


@pytest.mark.parametrize(
    "char_uuid",
    [uuids.sig_uuid(0x2A38), "2a53", "not-a-uuid", ""],
)
def test_unknown_characteristics_have_no_decoder(char_uuid: str) -> None:
    assert decoder_for(char_uuid) is None


def test_every_profile_characteristic_has_a_decoder() -> None:
    for chars in PROFILE_CHARACTERISTICS.values():
        for char_uuid in chars:
            assert decoder_for(char_uuid) is not None, char_uuid


@FAST
@given(st.sampled_from(sorted(DECODERS)), st.binary(max_size=300))
def test_every_decoder_returns_or_raises_decode_error(char_uuid: str, payload: bytes) -> None:
    try:
        DECODERS[char_uuid](payload)
    except DecodeError as error:
        problem = error
    else:
        return
    assert problem.payload == payload
    assert problem.reason
