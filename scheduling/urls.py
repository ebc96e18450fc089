from django.urls import path

from . import views

app_name = "scheduling"

urlpatterns = [
    path("", views.schedule, name="schedule"),
    path("patients/", views.patient_list, name="patient_list"),
    path("patients/autocomplete/", views.patient_autocomplete, name="patient_autocomplete"),
    path("patients/new/", views.patient_create, name="patient_create"),
    path("patients/<int:pk>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:pk>/edit/", views.patient_update, name="patient_update"),
    path("orders/", views.order_list, name="order_list"),
    path("orders/new/", views.order_create, name="order_create"),
    path("orders/slots/", views.slots, name="slots"),
    path("orders/to-schedule/", views.to_schedule, name="to_schedule"),
    path("orders/to-call-back/", views.to_call_back, name="to_call_back"),
    path("orders/<int:pk>/", views.order_detail, name="order_detail"),
    path("orders/<int:pk>/slip/", views.order_slip, name="order_slip"),
    path("orders/<int:pk>/edit/", views.order_update, name="order_update"),
    path("orders/<int:pk>/reschedule/", views.order_reschedule, name="order_reschedule"),
    path("orders/<int:pk>/schedule/", views.order_schedule, name="order_schedule"),
    path("orders/<int:pk>/arrive/", views.order_arrive, name="order_arrive"),
    path("orders/<int:pk>/start/", views.order_start, name="order_start"),
    path("orders/<int:pk>/complete/", views.order_complete, name="order_complete"),
    path("orders/<int:pk>/cancel/", views.order_cancel, name="order_cancel"),
    path("orders/<int:pk>/no-show/", views.order_no_show, name="order_no_show"),
    path("orders/<int:pk>/called-back/", views.order_called_back, name="order_called_back"),
]
