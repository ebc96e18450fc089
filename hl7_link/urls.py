from django.urls import path

app_name = "hl7_link"

# The Interface page's addresses (hl7_link/views.py).
urlpatterns: list = []
