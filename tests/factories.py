"""factory_boy factories for the test suite: realistic rooms open every day, Thai and Latin names."""

from datetime import date, datetime, time, timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from pydicom.uid import generate_uid

from scheduling.models import OpeningHours, Order, Patient, Procedure, Room
from scheduling.roles import ADMIN, roles_ensure


class UserFactory(factory.django.DjangoModelFactory):
    """A user with no role unless `roles=[FRONT_DESK, ...]` is given (see scheduling.roles)."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"clerk{n}")
    password = factory.django.Password("pw-for-tests-1")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if not create or not extracted:
            return
        # A transactional test flushes the tables, groups included: make sure the roles exist.
        roles_ensure()
        self.groups.add(*Group.objects.filter(name__in=extracted))
        if ADMIN in extracted:
            self.is_staff = True
            self.save(update_fields=["is_staff"])


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    mrn = factory.Sequence(lambda n: f"HN{n:06d}")
    issuer = "RIS"
    family_name = "Jaidee"
    given_name = factory.Sequence(lambda n: f"Somchai{n}")
    birth_date = date(1980, 5, 17)
    sex = "M"


class ThaiPatientFactory(PatientFactory):
    family_name = "ใจดี"
    given_name = "สมชาย"
    romanized_family_name = "Jaidee"
    romanized_given_name = "Somchai"


class RoomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Room
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"CT room {n}")
    modality = "CT"
    ae_title = factory.Sequence(lambda n: f"CT{n:02d}")
    station_name = factory.Sequence(lambda n: f"CTSTATION{n}")
    location = "Building A"

    @factory.post_generation
    def hours(self, create, extracted, **kwargs):
        """Open 08:00-17:00 every day unless `hours=[(weekday, opens, closes), ...]` is given."""
        if not create:
            return
        spans = extracted if extracted is not None else [(d, time(8), time(17)) for d in range(7)]
        for weekday, opens, closes in spans:
            OpeningHours.objects.create(room=self, weekday=weekday, opens=opens, closes=closes)


class ProcedureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Procedure

    code_value = factory.Sequence(lambda n: f"CT{n:04d}")
    coding_scheme = "RIS"
    code_meaning = factory.Sequence(lambda n: f"CT Brain without contrast {n}")
    modality = "CT"
    default_duration = 30
    body_part = "HEAD"


class OrderFactory(factory.django.DjangoModelFactory):
    """An order written straight to the database (no booking rules, no worklist task).

    For tests of the export itself; tests of the workflow book through scheduling.services.
    """

    class Meta:
        model = Order

    accession_number = factory.Sequence(lambda n: f"T{n:08d}")
    requested_procedure_id = factory.SelfAttribute("accession_number")
    sps_id = factory.LazyAttribute(lambda o: f"{o.accession_number}S1")
    study_instance_uid = factory.LazyFunction(lambda: generate_uid(prefix=None))
    patient = factory.SubFactory(PatientFactory)
    procedure = factory.SubFactory(ProcedureFactory)
    room = factory.SubFactory(RoomFactory)
    scheduled_start = factory.LazyFunction(
        lambda: timezone.make_aware(datetime.combine(timezone.localdate() + timedelta(days=1), time(9, 0)))
    )
    duration_minutes = 30
    scheduled_end = factory.LazyAttribute(lambda o: o.scheduled_start + timedelta(minutes=o.duration_minutes))
    booked_by = factory.SubFactory(UserFactory)
