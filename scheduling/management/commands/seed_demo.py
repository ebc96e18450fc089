"""Fill an empty RIS with demo rooms, procedures, patients, bookings and three users.

Users: `admin` (superuser), `frontdesk` (Front desk role), `tech` (Technologist role) and `lead`
(Department lead: the Reports page), all with the same demo password.

Besides today's and tomorrow's bookings, four weeks of past exams (HISTORY_DAYS) so the Reports page has
something to draw: completed with their arrival, start and completion times, some cancelled, some
no-shows. They are written as a history import would write them (the booking rules refuse the past):
no order events, nothing for the worklist, since none of them is on one.

Idempotent: rows are looked up by their natural keys (AE title, code, MRN, username) and a booking is
made only when the patient has no order for that procedure on that day, so running it twice changes
nothing. Bookings go through services.order_book, at free slots from selectors.room_free_slots.
"""

from __future__ import annotations

import random
from datetime import date, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from scheduling import roles, selectors, services
from scheduling.models import (
    CharacterSet,
    Language,
    OpeningHours,
    Order,
    OrderStatus,
    Patient,
    Procedure,
    Room,
)
from scheduling.selectors import day_bounds

OPENS, CLOSES = time(7), time(20)

ROOMS = [
    # name, modality, AE title, station name, location, worklist character set
    ("CT 1", "CT", "CT01", "CT01", "Building A", CharacterSet.UTF8),
    ("MR 1", "MR", "MR01", "MR01", "Building A", CharacterSet.UTF8),
    ("US 1", "US", "US01", "US01", "Building B", CharacterSet.UTF8),
    # An older X-ray console that only shows Latin-1: it gets the romanised names.
    ("DX 1", "DX", "DX01", "DX01", "Building B", CharacterSet.LATIN1),
]

FASTING = "Fast 6 hours before the exam. Water is allowed."
CONTRAST = "Fast 4 hours before. Bring recent creatinine result. Tell staff about any contrast allergy."
MR_SAFETY = "Remove all metal. Tell staff about pacemakers, implants or claustrophobia."
FULL_BLADDER = "Drink 1 litre of water 1 hour before; do not empty the bladder."
UNDRESS_CHEST = "Remove jewellery and clothing above the waist."

PROCEDURES = [
    # code value, code meaning, modality, minutes, body part, preparation
    ("CTHEADWO", "CT Head without contrast", "CT", 15, "HEAD", ""),
    ("CTHEADW", "CT Head with contrast", "CT", 20, "HEAD", CONTRAST),
    ("CTCHESTW", "CT Chest with contrast", "CT", 20, "CHEST", CONTRAST),
    ("CTCHESTLD", "CT Chest low dose screening", "CT", 15, "CHEST", ""),
    ("CTABDPELW", "CT Abdomen and pelvis with contrast", "CT", 30, "ABDOMEN", CONTRAST),
    ("CTKUBWO", "CT KUB without contrast", "CT", 15, "ABDOMEN", ""),
    ("MRBRAINWO", "MR Brain without contrast", "MR", 30, "HEAD", MR_SAFETY),
    ("MRBRAINW", "MR Brain with and without contrast", "MR", 45, "HEAD", MR_SAFETY),
    ("MRLSPINE", "MR Lumbar spine without contrast", "MR", 30, "LSPINE", MR_SAFETY),
    ("MRCSPINE", "MR Cervical spine without contrast", "MR", 30, "CSPINE", MR_SAFETY),
    ("MRKNEE", "MR Knee without contrast", "MR", 30, "KNEE", MR_SAFETY),
    ("USABD", "US Abdomen", "US", 30, "ABDOMEN", FASTING),
    ("USPELVIS", "US Pelvis", "US", 30, "PELVIS", FULL_BLADDER),
    ("USTHYROID", "US Thyroid", "US", 15, "NECK", ""),
    ("USBREAST", "US Breast both sides", "US", 30, "BREAST", ""),
    ("DXCHESTPA", "DX Chest PA", "DX", 15, "CHEST", UNDRESS_CHEST),
    ("DXCHESTPALAT", "DX Chest PA and lateral", "DX", 15, "CHEST", ""),
    ("DXKNEE", "DX Knee AP and lateral", "DX", 15, "KNEE", ""),
    ("DXLSPINE", "DX Lumbar spine AP and lateral", "DX", 15, "LSPINE", ""),
    ("DXHAND", "DX Hand PA and oblique", "DX", 15, "HAND", ""),
]

# The Thai text of each preparation above (PROCEDURES keeps one column, the English text: bench/scale.py
# reads that list from this file's source).
PREPARATION_TH = {
    FASTING: "งดอาหาร 6 ชั่วโมงก่อนตรวจ ดื่มน้ำเปล่าได้",
    CONTRAST: ("งดอาหาร 4 ชั่วโมงก่อนตรวจ นำผลตรวจค่าครีอะตินินครั้งล่าสุดมาด้วย แจ้งเจ้าหน้าที่หากเคยแพ้สารทึบรังสี"),
    MR_SAFETY: "ถอดโลหะทุกชนิดออก แจ้งเจ้าหน้าที่หากมีเครื่องกระตุ้นหัวใจ อุปกรณ์ฝังในร่างกาย หรือกลัวที่แคบ",
    FULL_BLADDER: "ดื่มน้ำ 1 ลิตร 1 ชั่วโมงก่อนตรวจ และกลั้นปัสสาวะไว้ ไม่ต้องถ่ายปัสสาวะ",
    UNDRESS_CHEST: "ถอดเครื่องประดับและเสื้อผ้าท่อนบนออก",
}

PATIENTS = [
    # MRN, family, given, romanised family, romanised given, birth date, sex
    ("HN6900001", "ใจดี", "สมชาย", "Jaidee", "Somchai", date(1972, 3, 14), "M"),
    ("HN6900002", "ศรีสุข", "สมหญิง", "Srisuk", "Somying", date(1985, 11, 2), "F"),
    ("HN6900003", "วงศ์สวัสดิ์", "ประเสริฐ", "Wongsawat", "Prasert", date(1958, 7, 30), "M"),
    ("HN6900004", "แสงทอง", "มาลี", "Saengthong", "Malee", date(1990, 1, 19), "F"),
    ("HN6900005", "บุญมา", "อนันต์", "Boonma", "Anan", date(1966, 9, 5), "M"),
    ("HN6900006", "รัตนพงษ์", "วิไลวรรณ", "Rattanapong", "Wilaiwan", date(2001, 4, 23), "F"),
    ("HN6900007", "Smith", "John", "", "", date(1979, 6, 8), "M"),
    ("HN6900008", "Brown", "Emily", "", "", date(1994, 12, 1), "F"),
    ("HN6900009", "Müller", "Anna", "", "", date(1963, 2, 17), "F"),
    ("HN6900010", "Tanaka", "Hiroshi", "", "", date(1950, 10, 11), "M"),
]

BOOKINGS = [
    # MRN, procedure code, days from today, which free slot of the day (spreads the demo over the day)
    ("HN6900001", "CTHEADWO", 0, 2),
    ("HN6900002", "USABD", 0, 1),
    ("HN6900003", "CTCHESTW", 0, 8),
    ("HN6900004", "USPELVIS", 0, 6),
    ("HN6900007", "DXCHESTPA", 0, 0),
    ("HN6900008", "MRKNEE", 0, 3),
    ("HN6900005", "MRLSPINE", 1, 0),
    ("HN6900006", "USTHYROID", 1, 4),
    ("HN6900009", "CTABDPELW", 1, 6),
    ("HN6900010", "DXKNEE", 1, 2),
    ("HN6900001", "MRBRAINWO", 1, 10),
    ("HN6900002", "DXCHESTPA", 1, 12),
]

# A few identifiers to search the demo by: Thai national IDs, and foreigners' passports.
NATIONAL_IDS = {"HN6900001": "1101700203450", "HN6900002": "3500100123457"}
PASSPORTS = {"HN6900007": ("GBR", "533380006"), "HN6900010": ("JPN", "TK1234567")}

DEFAULT_PASSWORD = "demo-pass-2026"
# The past exams of the demo: four weeks back from yesterday, marked by their reason.
HISTORY_DAYS = 28
# Days from booking to the exam in the demo history, as a department's queues differ: X-ray mostly the
# same day, ultrasound within the week, CT in one or two, MR in two to five (the Reports' waiting times).
LEAD_DAYS = {
    "DX": (0, 0, 0, 0, 1, 1, 2),
    "US": (0, 1, 2, 3, 3, 5, 7, 10),
    "CT": (1, 2, 3, 5, 7, 7, 10, 14, 21),
    "MR": (3, 7, 10, 14, 14, 21, 28, 35),
    "": (0, 1, 2, 3, 5, 7, 10, 14, 21),
}
HISTORY_REASON = "Demo history"


class Command(BaseCommand):
    help = "Load demo rooms, procedures, patients, today's and tomorrow's bookings, and demo users."

    def add_arguments(self, parser):
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help="Password of the demo users.")
        parser.add_argument(
            "--force", action="store_true", help="Run even with DEBUG off (never on a real department)."
        )

    def handle(self, *args, password: str, force: bool, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates users with a known password and fake patients, so it only runs with "
                "DJANGO_DEBUG on. Use --force if this really is a demo machine."
            )
        with transaction.atomic():
            admin_user = self._users(password)
            rooms = self._rooms()
            procedures = self._procedures()
            patients = self._patients()
        booked, skipped = self._bookings(admin_user, rooms, procedures, patients)
        with transaction.atomic():
            self._history(admin_user, rooms, procedures, patients)

        self.stdout.write(
            f"Rooms: {Room.objects.count()}, procedures: {Procedure.objects.count()}, "
            f"patients: {Patient.objects.count()}, orders: {Order.objects.count()} "
            f"({booked} booked now, {skipped} without a free future slot)."
        )
        self.stdout.write(
            self.style.SUCCESS(f"Log in as 'admin', 'frontdesk', 'tech' or 'lead' with password: {password}")
        )

    def _users(self, password: str):
        roles.roles_ensure()  # the groups, should the database predate one (or be made without migrations)
        User = get_user_model()
        admin_user, _ = User.objects.get_or_create(username="admin")
        admin_user.is_staff = admin_user.is_superuser = True
        admin_user.set_password(password)
        admin_user.save()

        # The roles work on the front-desk pages only: not staff, no admin access.
        for username, role in (
            ("frontdesk", roles.FRONT_DESK),
            ("tech", roles.TECHNOLOGIST),
            ("lead", roles.DEPARTMENT_LEAD),
        ):
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = False
            user.set_password(password)
            user.save()
            user.user_permissions.clear()
            user.groups.set([Group.objects.get(name=role)])
        return admin_user

    def _rooms(self) -> dict[str, Room]:
        rooms = {}
        for name, modality, ae_title, station, location, charset in ROOMS:
            room, _ = Room.objects.update_or_create(
                ae_title=ae_title,
                defaults={
                    "name": name,
                    "modality": modality,
                    "station_name": station,
                    "location": location,
                    "worklist_charset": charset,
                    "active": True,
                },
            )
            for weekday in range(7):
                OpeningHours.objects.update_or_create(
                    room=room, weekday=weekday, defaults={"opens": OPENS, "closes": CLOSES}
                )
            rooms[modality] = room
        return rooms

    def _procedures(self) -> dict[str, Procedure]:
        procedures = {}
        for code, meaning, modality, minutes, body_part, preparation in PROCEDURES:
            procedures[code], _ = Procedure.objects.update_or_create(
                coding_scheme="RIS",
                code_value=code,
                defaults={
                    "code_meaning": meaning,
                    "modality": modality,
                    "default_duration": minutes,
                    "body_part": body_part,
                    "instructions_en": preparation,
                    "instructions_th": PREPARATION_TH.get(preparation, ""),
                    "active": True,
                },
            )
        return procedures

    def _patients(self) -> dict[str, Patient]:
        patients = {}
        issuer = settings.RIS_ISSUER_OF_PATIENT_ID
        for mrn, family, given, rom_family, rom_given, birth_date, sex in PATIENTS:
            patient = Patient.objects.filter(issuer=issuer, mrn=mrn).first()
            if patient is None:
                patient = services.patient_register(
                    confirm_duplicate=True,
                    mrn=mrn,
                    issuer=issuer,
                    family_name=family,
                    given_name=given,
                    romanized_family_name=rom_family,
                    romanized_given_name=rom_given,
                    birth_date=birth_date,
                    sex=sex,
                    national_id=NATIONAL_IDS.get(mrn, ""),
                    passport_country=PASSPORTS.get(mrn, ("", ""))[0],
                    passport_number=PASSPORTS.get(mrn, ("", ""))[1],
                    # The patients registered without a Thai name get their slip in English.
                    preferred_language=Language.THAI if rom_family else Language.ENGLISH,
                )
            patients[mrn] = patient
        return patients

    def _history(self, user, rooms, procedures, patients) -> int:
        """HISTORY_DAYS of past exams in every room, the same on every run (a seeded generator)."""
        if Order.objects.filter(reason=HISTORY_REASON).exists():
            return 0
        today = timezone.localdate()
        chance = random.Random(2026)
        by_modality: dict[str, list[Procedure]] = {}
        for procedure in procedures.values():
            by_modality.setdefault(procedure.modality, []).append(procedure)
        made = []
        for back in range(HISTORY_DAYS, 0, -1):
            day = today - timedelta(days=back)
            for modality, room in rooms.items():
                span = room.open_span(day)
                if span is None or modality not in by_modality:
                    continue
                at, closes = span
                # Busier on weekdays; a gap between exams now and then.
                for _ in range(chance.randint(4, 9) if day.weekday() < 5 else chance.randint(1, 3)):
                    procedure = chance.choice(by_modality[modality])
                    at += timedelta(minutes=chance.choice((0, 0, 15, 30, 60)))
                    end = at + timedelta(minutes=procedure.default_duration)
                    if end > closes:
                        break
                    made.append(self._past_order(chance, user, room, procedure, patients, day, at, end))
                    at = end
        return len(made)

    def _past_order(self, chance, user, room, procedure, patients, day, start, end) -> Order:
        roll = chance.random()
        status = (
            OrderStatus.CANCELLED
            if roll < 0.07
            else OrderStatus.NO_SHOW
            if roll < 0.12
            else OrderStatus.COMPLETED
        )
        accession = services.accession_next(day=day)
        order = Order(
            accession_number=accession,
            requested_procedure_id=accession,
            sps_id=f"{accession}S1",
            study_instance_uid=services.study_uid_new(),
            patient=chance.choice(list(patients.values())),
            procedure=procedure,
            room=room,
            scheduled_start=start,
            duration_minutes=procedure.default_duration,
            scheduled_end=end,
            reason=HISTORY_REASON,
            status=status,
            cancel_reason="Patient asked to move it" if status == OrderStatus.CANCELLED else "",
            booked_by=user,
            booked_at=start
            - timedelta(
                days=chance.choice(LEAD_DAYS.get(procedure.modality, LEAD_DAYS[""])),
                hours=chance.randint(1, 6),
            ),
        )
        if status == OrderStatus.COMPLETED:
            order.arrived_at = start - timedelta(minutes=chance.randint(-5, 20))
            order.started_at = max(order.arrived_at, start) + timedelta(minutes=chance.randint(0, 25))
            order.completed_at = order.started_at + timedelta(
                minutes=procedure.default_duration + chance.randint(-5, 15)
            )
        order.save()
        return order

    def _bookings(self, user, rooms, procedures, patients) -> tuple[int, int]:
        today = timezone.localdate()
        booked = skipped = 0
        for mrn, code, days_ahead, slot_index in BOOKINGS:
            patient, procedure = patients[mrn], procedures[code]
            day = today + timedelta(days=days_ahead)
            day_start, day_end = day_bounds(day)
            if (
                Order.objects.filter(patient=patient, procedure=procedure)
                .filter(scheduled_start__gte=day_start, scheduled_start__lt=day_end)
                .exclude(status=OrderStatus.CANCELLED)
                .exists()
            ):
                continue
            room = rooms[procedure.modality]
            free = selectors.room_free_slots(room=room, day=day, duration_minutes=procedure.default_duration)
            if not free:
                skipped += 1  # late in the day: today's remaining slots have passed
                continue
            try:
                services.order_book(
                    patient=patient,
                    procedure=procedure,
                    room=room,
                    start=free[min(slot_index, len(free) - 1)],
                    user=user,
                    reason="Demo booking",
                )
            except ValidationError as error:
                skipped += 1
                self.stderr.write(f"Not booked {code} for {mrn}: {' '.join(error.messages)}")
                continue
            booked += 1
        return booked, skipped
