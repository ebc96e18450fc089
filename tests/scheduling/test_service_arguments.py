"""The services say what they accept in their signatures: keyword-only, typed, one per field."""

import inspect
import typing

import pytest

from scheduling import services


@pytest.mark.parametrize(
    "service, fields, extra",
    [
        (services.patient_register, services.PATIENT_FIELDS, {"confirm_duplicate", "user"}),
        (
            services.patient_update,
            services.PATIENT_FIELDS,
            {"patient", "user", "expected_version", "if_version"},
        ),
        (
            services.order_update_details,
            services.ORDER_DETAIL_FIELDS,
            {"order", "user", "expected_version", "if_version"},
        ),
    ],
)
def test_each_field_is_a_typed_keyword_only_argument(service, fields, extra):
    parameters = inspect.signature(service).parameters
    hints = typing.get_type_hints(service)
    assert set(parameters) == {*fields, *extra}
    for name, parameter in parameters.items():
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert name in hints, f"{service.__name__}({name}) has no type hint"


def test_an_unknown_field_is_refused_by_python_not_silently_set(patient):
    with pytest.raises(TypeError):
        services.patient_update(patient=patient, favourite_colour="blue")
