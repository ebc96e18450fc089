from django.urls import path

from . import views

app_name = "hl7_link"

# The Interface page's addresses (hl7_link/views.py), under /interface/.
urlpatterns = [
    path("", views.message_list, name="message_list"),
    path("messages/<int:pk>/", views.message_detail, name="message_detail"),
    path("messages/<int:pk>/reprocess/", views.message_reprocess, name="message_reprocess"),
    path("outbound/", views.outbound, name="outbound"),
    path("receivers/<int:pk>/retry/", views.receiver_retry, name="receiver_retry"),
]
