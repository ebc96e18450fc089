"""(filled by the worklist resource)"""

urlpatterns: list = []
