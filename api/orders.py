"""(filled by the orders resource)"""

urlpatterns: list = []
