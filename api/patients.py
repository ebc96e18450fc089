"""(filled by the patients resource)"""

urlpatterns: list = []
