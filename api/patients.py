"""Patients: search, register, read and change them, held to the rules of the front desk.

The search is the patient list's (selectors.patient_search_first: an MRN prefix, a name fragment in any
script, a birth date), capped like the pages. Registering and changing go through the services the
forms use, so the same duplicate warning stops a second record of one person (a 409 the client confirms
with confirm_duplicate, as the clerk ticks "register anyway"), a taken MRN is refused at "mrn" and a
taken national ID at "national_id", and a value a scanner could not take is refused at its field in
the forms' words. A change names the version it was made on (If-Match) and is refused (412) when the
record changed since. A record merged into another says so (merged_into).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from access_audit.models import AccessAction
from access_audit.services import access_record
from scheduling import selectors, services
from scheduling.forms import PatientForm, PatientSearchForm
from scheduling.models import Language, Patient, PregnancyStatus, Sex

from .idempotency import idempotent
from .models import Scope
from .views import (
    IDEMPOTENCY_KEY,
    IF_MATCH,
    ApiView,
    etag_header,
    if_match_version,
    location_header,
    problem_responses,
    single_query_values,
    with_etag,
)

SEARCH_LIMIT_DEFAULT = 25
SEARCH_LIMIT_MAX = 100
# Longer than any MRN and name together. Each term of a search is one more filter over six name
# columns: a query of thousands of words is not a search, and on SQLite it runs out of parameters.
SEARCH_QUERY_MAX = 200

# The patient form's fields, for their messages: a value the API cannot read is said as the form says
# it to a clerk ("Enter a valid date."), in the caller's language.
_FORM_FIELDS = PatientForm.base_fields


def _form_messages(name: str, **keys: str) -> dict:
    """DRF's message keys -> the messages of the same meaning on the patient form's field `name`.

    An empty MRN or family name is "required", as the form says, not merely "blank".
    """
    return {drf_key: _FORM_FIELDS[name].error_messages[form_key] for drf_key, form_key in keys.items()}


def _text(**kwargs) -> serializers.CharField:
    # No max_length here: the model's validators refuse a value too long (or with a character a
    # scanner cannot take) in the words of the patient form, at the field (422).
    return serializers.CharField(required=False, allow_blank=True, **kwargs)


class FormChoiceField(serializers.ChoiceField):
    """A choice of the patient form, an unknown value refused in the form's words."""

    def __init__(self, *, form_field: str, **kwargs) -> None:
        self.form_message = _FORM_FIELDS[form_field].error_messages["invalid_choice"]
        super().__init__(required=False, allow_blank=True, **kwargs)

    def fail(self, key: str, **kwargs):
        if key == "invalid_choice":
            raise serializers.ValidationError(self.form_message % {"value": kwargs["input"]}, code=key)
        return super().fail(key, **kwargs)


class PatientFieldsSerializer(serializers.Serializer):
    """The fields of a patient record (services.PATIENT_FIELDS), parsed from JSON.

    Only the types are checked here (a 400); what a value may be is the services' to say (a 422,
    worded as on the patient form).
    """

    mrn = serializers.CharField(
        error_messages=_form_messages("mrn", required="required", blank="required"),
        help_text="The patient ID (MRN, HN).",
    )
    issuer = serializers.CharField(
        required=False,
        error_messages=_form_messages("issuer", blank="required"),
        help_text="The issuer of the patient ID; the site's own when left out.",
    )
    national_id = _text(
        help_text=(
            "The Thai national ID: 13 digits, the last a check digit. Unique among the records not "
            "merged into another (422 at national_id when another patient has it)."
        )
    )
    passport_number = _text(
        help_text=(
            "A foreigner's passport number, capital letters A-Z and digits, with passport_country. "
            "Unique per country among the records in use (422 at passport_number when taken)."
        )
    )
    passport_country = _text(help_text="The country that issued the passport: ISO 3166 alpha-3 (GBR, MMR).")
    name_prefix = _text(help_text="นาย, นาง, นางสาว, เด็กชาย, เด็กหญิง, Mr, Mrs, Ms, Miss, or another title.")
    given_name = _text()
    middle_name = _text()
    family_name = serializers.CharField(
        error_messages=_form_messages("family_name", required="required", blank="required")
    )
    name_suffix = _text()
    romanized_given_name = _text(help_text="Latin letters, for stations that cannot show Thai.")
    romanized_middle_name = _text()
    romanized_family_name = _text()
    birth_date = serializers.DateField(
        input_formats=["iso-8601"],
        error_messages=_form_messages("birth_date", required="required", invalid="invalid"),
        help_text="YYYY-MM-DD.",
    )
    sex = FormChoiceField(choices=Sex.choices, form_field="sex")
    phone = _text()
    address = _text()
    weight_kg = serializers.DecimalField(
        max_digits=None,
        decimal_places=None,
        coerce_to_string=False,
        required=False,
        allow_null=True,
        error_messages=_form_messages("weight_kg", invalid="invalid"),
        help_text="Kilograms, one decimal place.",
    )
    allergies = _text()
    medical_alerts = _text()
    pregnancy_status = FormChoiceField(
        choices=PregnancyStatus.choices,
        form_field="pregnancy_status",
        help_text="DICOM Pregnancy Status: 1 not pregnant, 2 possibly, 3 definitely, 4 unknown.",
    )
    preferred_language = FormChoiceField(
        choices=Language.choices,
        form_field="preferred_language",
        help_text="The language of the patient's appointment slip: th (the default) or en.",
    )


class PatientRegistrationSerializer(PatientFieldsSerializer):
    confirm_duplicate = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Register although a patient with this name and birth date exists (a 409 named them).",
    )


class PatientLinksSerializer(serializers.Serializer):
    self = serializers.CharField()
    orders = serializers.CharField(help_text="The patient's orders.")


class PatientSerializer(serializers.ModelSerializer):
    display_name = serializers.CharField(read_only=True, help_text="The name as the front desk reads it.")
    # Declared for their blank value: a read-only field of a ModelSerializer is not given it, and the
    # schema would then refuse the "" of a patient whose sex is not recorded.
    sex = serializers.ChoiceField(choices=Sex.choices, allow_blank=True, read_only=True)
    pregnancy_status = serializers.ChoiceField(
        choices=PregnancyStatus.choices, allow_blank=True, read_only=True
    )
    weight_kg = serializers.DecimalField(
        max_digits=5, decimal_places=1, coerce_to_string=False, allow_null=True, read_only=True
    )
    merged_into = serializers.PrimaryKeyRelatedField(
        read_only=True,
        allow_null=True,
        help_text=(
            "The id of the record this one was merged into (the hospital system's merge, HL7 ADT^A40): "
            "its orders are there now. Null for a record in use."
        ),
    )
    links = serializers.SerializerMethodField()

    class Meta:
        model = Patient
        fields = [
            "id",
            *services.PATIENT_FIELDS,
            "merged_into",
            "display_name",
            "version",
            "created_at",
            "updated_at",
            "links",
        ]
        read_only_fields = fields

    @extend_schema_field(PatientLinksSerializer)
    def get_links(self, patient: Patient) -> dict[str, str]:
        return {
            "self": reverse("api:patient_detail", args=[patient.pk]),
            "orders": f"{reverse('api:order_list')}?{urlencode({'patient': patient.pk})}",
        }


class PatientSearchSerializer(serializers.Serializer):
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=SEARCH_QUERY_MAX,
        help_text=(
            "An MRN (its start) or a name, native (Thai) or romanised; several words must all match. "
            "One or two letters match the start of a name's word."
        ),
    )
    birth_date = serializers.DateField(
        required=False,
        input_formats=["iso-8601"],
        error_messages={"invalid": PatientSearchForm.base_fields["birth_date"].error_messages["invalid"]},
        help_text="YYYY-MM-DD.",
    )
    limit = serializers.IntegerField(
        required=False,
        default=SEARCH_LIMIT_DEFAULT,
        min_value=1,
        max_value=SEARCH_LIMIT_MAX,
        help_text="At most this many patients, by name.",
    )

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("q", "").strip() and attrs.get("birth_date") is None:
            raise serializers.ValidationError(_("Give an MRN or a name (q), a birth date, or both."))
        return attrs


class PatientSearchResultSerializer(serializers.Serializer):
    results = PatientSerializer(many=True)
    more = serializers.BooleanField(
        help_text="More patients match than `results` holds (then not necessarily the first by name): "
        "narrow the search."
    )


LOCATION = location_header("The new patient.")


def _answer(patient: Patient, *, code: int = status.HTTP_200_OK, headers: dict | None = None) -> Response:
    return with_etag(Response(PatientSerializer(patient).data, status=code, headers=headers), patient.version)


class PatientList(ApiView):
    scopes = {"POST": Scope.BOOK}

    @extend_schema(
        operation_id="patient_search",
        summary="Search patients",
        description="By MRN (its start), name in any script, birth date: at least one of q and birth_date.",
        parameters=[PatientSearchSerializer],
        responses={200: PatientSearchResultSerializer, **problem_responses(400)},
    )
    def get(self, request: Request) -> Response:
        query = PatientSearchSerializer(data=single_query_values(request, PatientSearchSerializer))
        query.is_valid(raise_exception=True)
        found = selectors.patient_search_first(
            query=query.validated_data.get("q", ""),
            birth_date=query.validated_data.get("birth_date"),
            limit=query.validated_data["limit"],
        )
        return Response({"results": PatientSerializer(found.patients, many=True).data, "more": found.more})

    @extend_schema(
        operation_id="patient_register",
        summary="Register a patient",
        description=(
            "409 confirmation-required when a patient with the same name and birth date exists (the "
            "detail names their MRNs): send again with confirm_duplicate true if this is another person. "
            "422 when the MRN is taken, or a value is refused at its field."
        ),
        parameters=[IDEMPOTENCY_KEY, etag_header(201), LOCATION],
        request=PatientRegistrationSerializer,
        responses={201: PatientSerializer, **problem_responses(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        given = PatientRegistrationSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        patient = services.patient_register(user=request.user, **given.validated_data)
        location = reverse("api:patient_detail", args=[patient.pk])
        return _answer(patient, code=status.HTTP_201_CREATED, headers={"Location": location})


class PatientDetail(ApiView):
    scopes = {"PATCH": Scope.BOOK}

    @extend_schema(
        operation_id="patient_read",
        summary="Read a patient",
        description="Recorded in the patient's access log, as a look at the patient page is.",
        parameters=[etag_header(200)],
        responses={200: PatientSerializer, **problem_responses(404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        patient = get_object_or_404(Patient, pk=pk)
        access_record(request=request, action=AccessAction.PATIENT_VIEWED, patient=patient)
        return _answer(patient)

    @extend_schema(
        operation_id="patient_update",
        summary="Change a patient",
        description=(
            "The fields sent change; the others stay. The active orders' worklist items are written "
            "again with the new values. With If-Match, refused (412) if the record changed since."
        ),
        parameters=[IF_MATCH, etag_header(200, 412)],
        request=PatientFieldsSerializer,
        responses={200: PatientSerializer, **problem_responses(400, 404, 412, 422)},
    )
    def patch(self, request: Request, pk: int) -> Response:
        patient = get_object_or_404(Patient, pk=pk)
        version = if_match_version(request)
        given = PatientFieldsSerializer(data=request.data, partial=True)
        given.is_valid(raise_exception=True)
        if not given.validated_data:
            raise serializers.ValidationError(_("Send at least one of the patient's fields to change."))
        patient = services.patient_update(
            patient=patient, user=request.user, if_version=version, **given.validated_data
        )
        return _answer(patient)


urlpatterns = [
    path("patients", PatientList.as_view(), name="patient_list"),
    path("patients/<int:pk>", PatientDetail.as_view(), name="patient_detail"),
]
