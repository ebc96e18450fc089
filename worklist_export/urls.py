from django.urls import path

from . import views

app_name = "worklist_export"

urlpatterns = [
    path("orders/<int:pk>/file/", views.order_file, name="order_file"),
    path("orders/<int:pk>/dump/", views.order_dump, name="order_dump"),
    path("problems/", views.problems, name="problems"),
    path("problems/<int:pk>/retry/", views.problem_retry, name="problem_retry"),
]
