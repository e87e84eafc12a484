"""The field agent app's task pages (filled in by the task module)."""

urlpatterns: list = []
