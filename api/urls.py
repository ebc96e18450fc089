from django.contrib.auth.decorators import login_not_required
from django.urls import include, path

from . import catalog, events, orders, patients, problems, views, worklist

app_name = "api"

v1 = [
    *catalog.urlpatterns,
    *patients.urlpatterns,
    *orders.urlpatterns,
    *worklist.urlpatterns,
    *events.urlpatterns,
]

urlpatterns = [
    path("schema/", views.Schema.as_view(), name="schema"),
    path("docs/", views.SchemaDocs.as_view(), name="docs"),
    path("problems/<slug:slug>", login_not_required(problems.problem_type_page), name="problem_type"),
    path("v1/", include(v1)),
]
