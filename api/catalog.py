"""The catalog (procedures) and the rooms, read-only: what a client books with."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from scheduling.models import Procedure, Room

from .views import ApiView, problem_responses


class ProcedureSerializer(serializers.ModelSerializer):
    class Meta:
        model = Procedure
        fields = [
            "id",
            "code_value",
            "coding_scheme",
            "code_meaning",
            "modality",
            "default_duration",
            "body_part",
            "preparation",
            "active",
        ]


class RoomSerializer(serializers.ModelSerializer):
    class Meta:
        model = Room
        fields = ["id", "name", "modality", "ae_title", "station_name", "location", "active"]


class ProcedureList(ApiView):
    @extend_schema(
        responses={200: ProcedureSerializer(many=True), **problem_responses()},
        summary="The procedure catalog",
    )
    def get(self, request):
        procedures = Procedure.objects.order_by("modality", "code_meaning", "id")
        return Response(ProcedureSerializer(procedures, many=True).data)


class RoomList(ApiView):
    @extend_schema(
        responses={200: RoomSerializer(many=True), **problem_responses()},
        summary="The rooms (scheduled stations)",
    )
    def get(self, request):
        return Response(RoomSerializer(Room.objects.order_by("name"), many=True).data)


urlpatterns = [
    path("procedures", ProcedureList.as_view(), name="procedure_list"),
    path("rooms", RoomList.as_view(), name="room_list"),
]
