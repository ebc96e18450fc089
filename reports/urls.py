from django.urls import path

from . import views

app_name = "reports"

# The department's reports (reports/views.py), under /reports/.
urlpatterns = [
    path("", views.report, name="report"),
    path("<slug:chart>.csv", views.report_csv, name="csv"),
]
