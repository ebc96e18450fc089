from django.urls import path

from . import views

app_name = "mwl_server"

urlpatterns = [
    path("query/", views.query, name="query"),
]
