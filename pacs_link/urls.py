from django.urls import path

from . import views

app_name = "pacs_link"

# The PACS pages (pacs_link/views.py), under /pacs/.
urlpatterns = [
    path("unmatched/", views.unmatched_list, name="unmatched_list"),
    path("studies/<int:pk>/", views.study_resolve, name="study_resolve"),
    path("studies/<int:pk>/link/", views.study_link, name="study_link"),
    path("studies/<int:pk>/not-ours/", views.study_not_ours, name="study_not_ours"),
    path("series/<int:pk>/", views.series_viewer, name="series_viewer"),
    path("series/<int:pk>/thumbnail.jpg", views.series_thumbnail, name="series_thumbnail"),
    # The viewer builds these from its series' address and the instance ids it was given.
    path(
        "series/<int:pk>/instances/<str:instance>/image.png",
        views.instance_image,
        {"ext": "png"},
        name="instance_png",
    ),
    path(
        "series/<int:pk>/instances/<str:instance>/image.jpg",
        views.instance_image,
        {"ext": "jpg"},
        name="instance_jpg",
    ),
    path("series/<int:pk>/instances/<str:instance>/info.json", views.instance_info, name="instance_info"),
    path("series/<int:pk>/instances/<str:instance>/values", views.instance_values, name="instance_values"),
]
