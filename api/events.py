"""(filled by the events resource)"""

urlpatterns: list = []
